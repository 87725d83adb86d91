"""SLURM options without a cluster: where they come from, and what the dry run prints."""

from __future__ import annotations

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
