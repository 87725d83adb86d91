"""The SLURM executor on a real one-node cluster (tests/slurm_cluster.py): arrays, requeue, cancel, kill.

Each test submits through the real command line, as a user would, and reads the outcome from the
run folders and from ``status``; the numbers are compared with local runs of the same cells.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import tiny_suite, write_suite
from tests.test_cli import ROOT, run_cli

pytestmark = pytest.mark.slurm

SMOKE = ["--suite", "toy", "--budget", "smoke", "--methods", "transfergan", "--seeds", "0", "--no-progress"]


def cli_env(cache_dir, **extra) -> dict:
    return {**os.environ, "GTB_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1", **extra}


def run_cmd(*args, cache_dir, timeout=600, **extra_env) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "run_benchmark.py"), *map(str, args)]
    env = cli_env(cache_dir, **extra_env)
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def start_cli(*args, cache_dir, **extra_env) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "run_benchmark.py"), *map(str, args)]
    env = cli_env(cache_dir, **extra_env)
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def beside(tmp_path, cache_dir):
    """Start a command that runs while the test goes on: ``beside(*args) -> (process, log path)``.

    Its output goes to a file (a pipe nobody reads could fill and stall it); one still running
    when the test ends (it failed first) is killed.
    """
    started = []

    def start(*args) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"beside-{len(started)}.log"
        cmd = [sys.executable, str(ROOT / "run_benchmark.py"), *map(str, args)]
        with open(log, "w") as f:
            started.append(subprocess.Popen(cmd, env=cli_env(cache_dir), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT))
        return started[-1], log

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(condition, timeout: float, what: str, cluster=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{cluster.logs()}" if cluster else ""))


def run_dirs(out: Path) -> dict[str, Path]:
    """cell id -> run folder."""
    return {read(p / "cell.json")["cell_id"]: p for p in out.glob("runs/*/*") if read(p / "cell.json")}


def read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def final_metrics(out: Path) -> dict[str, dict]:
    finals = {}
    for cell, run in run_dirs(out).items():
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert len({r["step"] for r in rows}) == len(rows), f"{cell}: an evaluation step written twice"
        finals[cell] = (tuple(r["step"] for r in rows), rows[-1]["metrics"])
    return finals


def finish_releasing_requeued_jobs(proc: subprocess.Popen, cluster, timeout: float) -> tuple[str, str]:
    """Wait for ``proc``, starting requeued jobs at once: SLURM holds a requeued job for two
    minutes (its begin time), which only makes the test slower."""
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        for job in cluster.held_after_requeue():
            cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)
        time.sleep(1)
    return proc.communicate(timeout=max(1, deadline - time.time()))


def status_lines(out: Path, cache_dir, suite: str | None = None) -> dict[str, str]:
    """cell id -> its line in ``status`` (of one suite: cell ids repeat across suites)."""
    result = run_cli("status", "--out", out, *(["--suite", suite] if suite else []), cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    return {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}


def test_toy_smoke_array_finishes_after_the_submitter_is_killed_and_equals_a_local_run(
    slurm_cluster, tmp_path, cache_dir, beside
):
    """Must-show: the toy suite at --budget smoke as a job array; the submitting process is killed
    right after submission, every job still finishes, status shows them, the tables equal a local run's."""
    # Two local workers get cores // 2 threads each (benchmark.executors); each SLURM job as many.
    # The local reference runs beside the SLURM jobs: on two cores, each side fills the other's waits.
    threads = max(1, (os.cpu_count() or 1) // 2)
    local, local_log = beside(*SMOKE, "--device", "cpu", "--jobs", "2", "--out", tmp_path / "local")

    out = tmp_path / "slurm"
    args = [*SMOKE, "--executor", "slurm", "--slurm-gpus", "0", "--slurm-cpus", threads, "--out", out]
    submitter = start_cli(*args, cache_dir=cache_dir)
    submitted = wait_for(lambda: [read(p) for p in out.glob("runs/*/*/slurm.json")], 120, "slurm.json", slurm_cluster)
    wait_for(lambda: len(list(out.glob("runs/*/*/slurm.json"))) == 3, 30, "three slurm.json")
    submitter.send_signal(signal.SIGKILL)
    submitter.wait()

    jobs = sorted(read(p)["job_id"] for p in out.glob("runs/*/*/slurm.json"))
    array = jobs[0].split("_")[0]
    assert jobs == [f"{array}_{i}" for i in range(3)], jobs  # one array, one task per cell
    assert submitted[0]["cache_job_id"] != array
    wait_for(lambda: all(read(p / "status.json").get("state") == "finished" for p in run_dirs(out).values()),
             300, "every cell to finish", slurm_cluster)  # fmt: skip
    lines = status_lines(out, cache_dir)
    assert len(lines) == 3
    for line in lines.values():
        assert "finished  step 4/4" in line and f"[job {array}_" in line, line

    report = run_cli("report", "--out", out, cache_dir=cache_dir)
    assert report.returncode == 0, report.stderr
    assert local.wait(timeout=300) == 0, local_log.read_text()
    for name in ("results.csv", "results_summary.csv"):
        slurm_table = pd.read_csv(out / "tables" / "toy" / name)
        local_table = pd.read_csv(tmp_path / "local" / "tables" / "toy" / name)
        assert len(slurm_table) > 0
        pd.testing.assert_frame_equal(slurm_table, local_table)  # bit-identical: same seeds and threads
    assert final_metrics(out) == final_metrics(tmp_path / "local")


def test_requeue_and_checkpoint_signal_resume_scancel_resumes_on_rerun_a_killed_job_fails_with_its_log(
    slurm_cluster, tmp_path, cache_dir, beside
):
    """Four cells at once, each job interrupted mid-training another way: ``scontrol requeue``; the
    checkpoint signal submitit acts on at preemption and before the time limit (USR2); ``scancel``;
    SIGKILL (as an out-of-memory kill)."""
    raw = tiny_suite(
        name="preempt",
        methods=["transfergan"],
        seeds=[0, 1, 2, 3],
        targets=[{"name": "digit7", "dataset": "mnist5k", "classes": [7], "shots": [5], "eval_split": "test"}],
        train={"steps": 100, "batch_size": 4, "eval_every": 50, "checkpoint_every": 5, "log_every": 10,
               "hflip": False, "r1_every": 2},
    )  # fmt: skip
    suite = write_suite(tmp_path / "preempt.yaml", raw)
    common = ["--suite", suite, "--no-progress", "--no-report"]
    threads = max(1, (os.cpu_count() or 1) // 2)  # what each of two local workers gets
    # Uninterrupted runs of the three cells that resume (the killed one stays failed), beside the SLURM jobs.
    clean, clean_log = beside(*common, "--seeds", "0,1,3", "--device", "cpu", "--jobs", 2, "--out", tmp_path / "clean")

    out = tmp_path / "slurm"
    args = [*common, "--executor", "slurm", "--slurm-gpus", "0", "--slurm-cpus", threads, "--out", out]
    env = {"GTB_LEASE_HEARTBEAT": "0.5", "GTB_SLURM_POLL": "1"}
    submitter = start_cli(*args, cache_dir=cache_dir, **env)

    requeued, cancelled, killed, signalled = (f"digit7-5shot-transfergan-s{seed}" for seed in range(4))
    actions = {
        requeued: lambda owner: slurm_cluster.run("scontrol", "requeue", owner["slurm_job"]),
        cancelled: lambda owner: slurm_cluster.run("scancel", owner["slurm_job"]),
        killed: lambda owner: os.kill(owner["pid"], signal.SIGKILL),  # dies without a word, like an OOM kill
        # submitit's checkpoint signal, sent at preemption and before the time limit (its own test hook):
        signalled: lambda owner: slurm_cluster.run("scancel", "--signal", "USR2", owner["slurm_job"]),
    }
    owners = {}

    def interrupt_each_once_it_has_a_checkpoint():
        for cell, run in run_dirs(out).items():
            running = read(run / "status.json").get("state") == "running"
            if cell not in owners and running and (run / "checkpoints" / "last.pt").exists():
                owners[cell] = read(run / "lease" / "000001.json")["owner"]
                actions[cell](owners[cell])
        return len(owners) == 4

    wait_for(interrupt_each_once_it_has_a_checkpoint, 300, "four cells training with a checkpoint", slurm_cluster)
    runs = run_dirs(out)

    stdout, stderr = finish_releasing_requeued_jobs(submitter, slurm_cluster, timeout=400)
    assert submitter.returncode == 1, stderr  # not everything finished
    assert "finished 2, failed 1, not finished 1" in stdout, stdout + stderr

    lines = status_lines(out, cache_dir)
    for cell in (requeued, signalled):
        assert "finished  step 100/100" in lines[cell], lines[cell]
        assert "resumed from step" in (runs[cell] / "log.txt").read_text()
        assert json.loads((runs[cell] / "lease" / "000002.json").read_text())["owner"]["slurm_restart"] == 1
    submitit_log = Path(read(runs[signalled] / "slurm.json")["stdout"]).read_text()
    assert "Calling checkpoint method" in submitit_log and "Requeued job" in submitit_log, submitit_log

    assert "pending   interrupted at step" in lines[cancelled] and "SIGTERM" in lines[cancelled], lines[cancelled]
    assert "failed    SLURM job" in lines[killed], lines[killed]
    slurm_log = lines[killed].split("log: ")[1]
    assert Path(slurm_log).is_file() and slurm_log.endswith("_log.err"), slurm_log

    rerun = run_cmd(*args, cache_dir=cache_dir, timeout=300, **env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    # Only the cancelled cell: the killed one stays failed (--retry-failed would rerun it).
    assert "submitted 1 cells" in rerun.stdout and "finished 1, failed 0, not finished 0" in rerun.stdout, rerun.stdout
    assert "failed    SLURM job" in status_lines(out, cache_dir)[killed]
    assert "resumed from step" in (runs[cancelled] / "log.txt").read_text()
    assert clean.wait(timeout=300) == 0, clean_log.read_text()
    expected = final_metrics(tmp_path / "clean")
    got = final_metrics(out)
    for cell in (requeued, signalled, cancelled):
        assert got[cell] == expected[cell], cell  # the same metrics as an uninterrupted run
    assert got[requeued][0] == (0, 50, 100)


def test_two_suite_commands_at_once_never_train_a_cell_twice(slurm_cluster, tmp_path, cache_dir):
    raw = tiny_suite(name="twice", methods=["transfergan"], seeds=[0, 1], targets=tiny_suite()["targets"][:1])
    suite = write_suite(tmp_path / "twice.yaml", raw)
    out = tmp_path / "out"
    args = ["--suite", suite, "--no-progress", "--no-report", "--executor", "slurm", "--slurm-gpus", "0",
            "--slurm-cpus", "1", "--out", out, "--detach"]  # fmt: skip
    first, second = start_cli(*args, cache_dir=cache_dir), start_cli(*args, cache_dir=cache_dir)
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    wait_for(lambda: all(read(r / "status.json").get("state") == "finished" for r in run_dirs(out).values())
             and len(run_dirs(out)) == 2, 300, "every cell to finish", slurm_cluster)  # fmt: skip
    wait_for(lambda: not slurm_cluster.jobs(), 120, "every job to leave the queue", slurm_cluster)
    assert_trained_once(out, n_cells=2)
    assert all(len(final_metrics(out)[cell][0]) == 3 for cell in run_dirs(out))


def assert_trained_once(out: Path, n_cells: int) -> None:
    """One start per cell: in its log and in its status (a process that takes the lease after the
    cell finished only finds it done); one row per evaluation step."""
    runs = run_dirs(out)
    assert len(runs) == n_cells
    for cell, run in runs.items():
        assert (run / "log.txt").read_text().count(f"cell {cell} -> ") == 1, cell
        assert read(run / "status.json")["attempts"] == 1, cell
        assert read(run / "lease" / "000001.json")["released"], cell
