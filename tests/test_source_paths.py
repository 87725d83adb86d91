"""Checkpoint paths of a suite with several real sources: NAME=PATH, a source's own variable, the plain path."""

from __future__ import annotations

import pytest

from benchmark.config import SourceConfig, source_paths
from benchmark.errors import BenchmarkError

SOURCES = {
    "ffhq": SourceConfig("ffhq", "rosinality-stylegan2"),
    "church": SourceConfig("church", "rosinality-stylegan2", "$GTB_TEST_CHURCH"),
    "toy": SourceConfig("toy", "toy-pretrain"),
}


def _paths(given, monkeypatch, **env) -> dict:
    monkeypatch.delenv("GTB_SOURCE_CKPT", raising=False)
    monkeypatch.delenv("GTB_TEST_CHURCH", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {name: spec.path for name, spec in source_paths(SOURCES, given).items()}


def test_a_plain_path_fills_the_sources_without_their_own(monkeypatch):
    assert _paths("f.pt", monkeypatch) == {"ffhq": "f.pt", "church": "$GTB_TEST_CHURCH", "toy": None}
    assert _paths(None, monkeypatch, GTB_SOURCE_CKPT="e.pt")["ffhq"] == "e.pt"


def test_a_source_reads_its_variable_or_its_name(monkeypatch):
    assert _paths(["f.pt"], monkeypatch, GTB_TEST_CHURCH="c.pt")["church"] == "c.pt"
    assert _paths(["church=x.pt", "ffhq=y.pt"], monkeypatch, GTB_TEST_CHURCH="c.pt") == {
        "ffhq": "y.pt", "church": "x.pt", "toy": None,
    }  # fmt: skip


def test_two_plain_paths_are_refused_in_one_line(monkeypatch):
    with pytest.raises(BenchmarkError, match="NAME=PATH"):
        _paths(["a.pt", "b.pt"], monkeypatch)


def test_an_empty_path_is_no_path(monkeypatch):
    """`export GTB_SOURCE_CKPT=` leaves the source without a file (the preflight then says how to give one),
    not reading the current folder; `--source-ckpt ffhq=` is refused in one line."""
    assert _paths(None, monkeypatch, GTB_SOURCE_CKPT="")["ffhq"] is None
    with pytest.raises(BenchmarkError, match=r"--source-ckpt ffhq=: no path after '='; give ffhq=PATH"):
        _paths(["ffhq="], monkeypatch)
