"""SLURM options without a cluster: where they come from, and what the dry run prints."""

from __future__ import annotations

import os

import pytest

from benchmark.errors import BenchmarkError
from benchmark.slurm import parse_extra, resolve_executor
from tests.conftest import tiny_suite, write_suite
from tests.test_cli import run_cli


def test_command_line_beats_suite_beats_user_config(tmp_path, monkeypatch):
    user = tmp_path / "config.yaml"
    user.write_text("executor: {name: slurm, partition: cpu, account: lab, time: '1:00:00', extra: {mail-type: END}}\n")
    monkeypatch.setenv("GTB_CONFIG", str(user))
    name, options = resolve_executor({"partition": "gpu", "time": 90, "extra": {"comment": "x"}}, {"cpus": 2})
    assert name == "slurm"  # from the user's file
    assert (options.partition, options.account, options.time, options.cpus) == ("gpu", "lab", 90, 2)
    assert options.extra == {"mail-type": "END", "comment": "x"}
    name, options = resolve_executor("local", {"name": "slurm", "partition": "big", "extra": {}})
    assert (name, options.partition) == ("slurm", "big")
    monkeypatch.setenv("GTB_CONFIG", str(tmp_path / "absent.yaml"))
    assert resolve_executor(None, {})[0] == "local"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"name": "kubernetes"}, "executor 'kubernetes' unknown; valid: local, slurm"),
        ({"partitoin": "gpu"}, "unknown key(s) partitoin; valid: name, partition"),
        ({"time": "soon"}, "time 'soon' is not minutes"),
        ({"cpus": 0}, "cpus must be a positive integer"),
    ],
)
def test_bad_executor_settings_are_one_line_errors(section, message, monkeypatch, tmp_path):
    monkeypatch.setenv("GTB_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(BenchmarkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_executor(section, {})


def test_slurm_extra_pairs():
    assert parse_extra(["mail-type=END", "--exclusive=user"]) == {"mail-type": "END", "exclusive": "user"}
    with pytest.raises(BenchmarkError, match="expected key=value"):
        parse_extra(["exclusive"])


def test_dry_run_prints_the_arrays_sbatch_lines_and_an_estimate(tmp_path, cache_dir):
    raw = tiny_suite(executor={"name": "slurm", "partition": "gpu", "parallelism": 2, "images_per_second": 0.01})
    suite = write_suite(tmp_path / "tiny.yaml", raw)
    out = tmp_path / "out"
    result = run_cli("--suite", suite, "--dry-run", "--out", out, "--slurm-account", "lab", "--slurm-time", "2:00:00",
                     "--slurm-extra", "mail-type=END", "--slurm-mem", "16", cache_dir=cache_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in ("#SBATCH --array=0-5%2", "#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --time=120",
                     "#SBATCH --gpus-per-node=1", "#SBATCH --mem=16GB", "#SBATCH --mail-type=END",
                     "#SBATCH --signal=USR2@120", "#SBATCH --dependency=afterok:CACHE_JOB_ID"):  # fmt: skip
        assert expected in lines, expected
    assert "# 6 cells on cuda:" in lines  # the compute nodes' GPUs, not this machine's
    # 6 cells x 4 steps x batch 4 / 0.01 images per second = 9,600 s = 2.67 h, at one GPU per job
    assert "= 2.67 job-hours" in result.stdout and "2.67 GPU-hours at 1 GPU(s) per job" in result.stdout
    assert not out.exists()  # a dry run writes nothing


def _fake_slurm(folder, scontrol: str = "", sacctmgr: str = "", squeue: str = ""):
    """scontrol, sacctmgr, squeue and scancel stand-ins that print the given text; scancel records its arguments."""
    folder.mkdir(exist_ok=True)
    for name, text in (("scontrol", scontrol), ("sacctmgr", sacctmgr), ("squeue", squeue)):
        (folder / name).write_text(f"#!/bin/sh\nprintf '{text}'\n")
    (folder / "scancel").write_text(f'#!/bin/sh\necho "$@" >> {folder / "scancelled"}\n')
    for path in folder.iterdir():
        path.chmod(0o755)
    return folder


def test_cells_beyond_max_array_size_are_split_into_arrays_and_too_many_jobs_are_refused_at_the_dry_run(
    tmp_path, cache_dir, monkeypatch, capsys
):
    from tests.test_cli_inputs import in_process, one_line_error

    raw = tiny_suite(executor={"name": "slurm", "parallelism": 2, "images_per_second": 1})
    suite = write_suite(tmp_path / "tiny.yaml", raw)
    fake = _fake_slurm(tmp_path / "bin", scontrol="MaxArraySize            = 4\\nMaxJobCount = 10000\\n")
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setenv("GTB_CACHE_DIR", str(cache_dir))
    result = in_process(capsys, "--suite", suite, "--dry-run", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (
        "# SLURM: a cache job, then 2 arrays of 4 + 2 jobs (one per pending cell; the cluster's MaxArraySize is 4)"
        in (result.stdout)
    )
    for expected in ("#SBATCH --array=0-3%2", "#SBATCH --array=0-1%2", "#SBATCH --dependency=afterok:CACHE_JOB_ID",
                     "#SBATCH --dependency=afterok:CACHE_JOB_ID,afterany:ARRAY_1_JOB_ID"):  # fmt: skip
        assert expected in lines, expected

    _fake_slurm(fake, scontrol="MaxArraySize = 1001\\n", sacctmgr="6\\n", squeue="17\\n18_3\\n")
    line = one_line_error(in_process(capsys, "--suite", suite, "--dry-run", "--out", tmp_path / "out"))
    assert "6 pending cells need 7 SLURM jobs" in line and "lets you have 6 queued or running (MaxSubmitJobs)" in line
    assert "2 are: nothing was submitted; submit at most 3 cells at a time" in line


def test_a_submission_that_fails_midway_cancels_what_it_queued(tmp_path, cache_dir, monkeypatch):
    """The second array is refused after the cache job and the first array were queued: both are cancelled."""
    import contextlib
    from types import SimpleNamespace

    from benchmark import slurm
    from benchmark.config import load_suite
    from benchmark.store import ResultsStore

    class FailedJobError(RuntimeError):
        pass

    class Executor:
        def __init__(self):
            self.next_id, self.batches, self.in_batch = 100, 0, None

        def update_parameters(self, **params):
            self.params = params

        def _job(self, job_id):
            return SimpleNamespace(job_id=job_id, paths=SimpleNamespace(stdout="o", stderr="e"))

        def submit(self, fn):
            if self.in_batch is None:
                self.next_id += 1
                return self._job(str(self.next_id))
            self.in_batch.append(self._job(f"{self.next_id + 1}_{len(self.in_batch)}"))
            return self.in_batch[-1]

        @contextlib.contextmanager
        def batch(self):
            self.in_batch, self.batches = [], self.batches + 1
            yield
            self.in_batch = None
            if self.batches == 2:
                raise FailedJobError("sbatch: error: QOSMaxSubmitJobPerUserLimit")
            self.next_id += 1

    fake = _fake_slurm(tmp_path / "bin", scontrol="MaxArraySize = 4\\n")
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setattr(slurm, "_executor", lambda folder, options: Executor())
    suite = load_suite(write_suite(tmp_path / "tiny.yaml", tiny_suite()))
    with pytest.raises(BenchmarkError) as err:
        slurm.submit(suite, ResultsStore(tmp_path / "out"), cache_dir, "cpu", slurm.SlurmOptions(), False)
    assert str(err.value) == (
        "sbatch refused the jobs: sbatch: error: QOSMaxSubmitJobPerUserLimit; the job(s) this command had queued "
        "(101, 102) were cancelled, none is left behind"
    )
    assert (fake / "scancelled").read_text().split() == ["101", "102"]
