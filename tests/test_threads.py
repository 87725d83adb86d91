"""CPU threads per worker: the user's $OMP_NUM_THREADS wins over the cores shared out among workers."""

import os

import pytest

from benchmark.executors import cpu_threads_per_worker


@pytest.mark.parametrize("jobs", [1, 2, 64])
def test_omp_num_threads_is_honoured_for_any_number_of_workers(monkeypatch, jobs):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads_per_worker(jobs) == 3


@pytest.mark.parametrize("value", [None, "", "0", "two", "-1"])
def test_without_a_valid_omp_num_threads_the_cores_are_shared_out(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", value)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert [cpu_threads_per_worker(jobs) for jobs in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
