"""``status`` and the run folders as the record, on the local executor: every state, and two suite
commands at once on one output folder."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmark.config import load_suite
from benchmark.lease import CellLease
from benchmark.runfolder import RunFolder
from benchmark.runner import expand_cells
from benchmark.status import cell_state, format_status
from benchmark.store import ResultsStore
from tests.conftest import tiny_suite, write_suite
from tests.test_cli import ROOT, run_cli
from tests.test_slurm import assert_trained_once, final_metrics, read, run_dirs, status_lines

DIGIT7 = [{"name": "digit7", "dataset": "mnist5k", "classes": [7], "shots": [5], "eval_split": "test"}]


class EmptyQueue:
    """``squeue`` installed and answering, with none of the asked jobs in the queue."""

    def __call__(self, job_ids):
        return self.states(job_ids)

    def states(self, job_ids):
        return {}


def test_a_cell_whose_owner_died_mid_training_resumes_unless_its_slurm_job_vanished(tmp_path):
    """Nothing written since "running" and its owner gone: a local process resumes on the next
    suite command (even where squeue works); a SLURM job that left the queue is failed."""
    for slurm_job, expected in ((None, "pending"), ("41_2", "failed")):
        folder = RunFolder(tmp_path / f"cell-{slurm_job}")
        folder.register({"cell_id": "digit7-5shot-transfergan-s0", "total_steps": 10})
        lease = CellLease.acquire(folder.path, heartbeat=False, slurm_job=slurm_job)
        record = json.loads(lease.path.read_text())
        record["owner"]["pid_start"] -= 1  # another process under this pid: the owner is dead
        lease.path.write_text(json.dumps({**record, "step": 5}))
        folder.write_status("running", owner=record["owner"], total=10)
        state = cell_state(folder, EmptyQueue())
        assert state.state == expected, (slurm_job, state)
    assert state.reason == "SLURM job 41_2 ended at step 5 without finishing or saying why (killed?)"
    pending = cell_state(RunFolder(tmp_path / "cell-None"), EmptyQueue())
    assert pending.reason == "interrupted at step 5 (its process died); resumes from its last checkpoint"


class FakeQueue(EmptyQueue):
    """``squeue`` answering with fixed states."""

    def __init__(self, states):
        self.known = states

    def states(self, job_ids):
        return {j: self.known[j] for j in job_ids if j in self.known}


def test_status_shows_a_queued_and_a_running_slurm_job(tmp_path):
    """Array task 7_0 waits in the queue; 7_1 trains on another node, whose lease only squeue can vouch for."""
    queue = FakeQueue({"7_0": "PENDING", "7_1": "RUNNING"})
    folders = []
    for task, cell in enumerate(("digit7-5shot-freezed-s0", "digit7-5shot-transfergan-s0")):
        folder = RunFolder(tmp_path / cell)
        folder.register({"suite": "toy", "cell_id": cell, "total_steps": 10})
        folder.write_slurm({"job_id": f"7_{task}", "submitted": time.time(), "stderr": f"/logs/7_{task}.err"})
        folders.append(folder)
    lease = CellLease.acquire(folders[1].path, heartbeat=False, slurm_job="7_1")
    record = json.loads(lease.path.read_text())
    record["owner"].update(host="gpu-node-7", pid=4242)
    lease.path.write_text(json.dumps({**record, "step": 4, "total": 10}))
    folders[1].write_status("running", owner=record["owner"], total=10)
    states = [cell_state(folder, queue) for folder in folders]
    assert [s.state for s in states] == ["queued", "running"]
    lines = format_status(states).splitlines()
    assert lines[0] == "suite toy: 2 cells (1 queued, 1 running)"
    assert lines[1].split() == ["digit7-5shot-freezed-s0", "queued", "pending", "[job", "7_0]"]
    assert lines[2].split() == [
        "digit7-5shot-transfergan-s0", "running", "step", "4/10", "on", "gpu-node-7", "pid", "4242", "[job", "7_1]"
    ]  # fmt: skip
    del queue.known["7_1"]  # the node's job left the queue: nobody trains the cell any more
    assert cell_state(folders[1], queue).state == "failed"


def test_status_shows_finished_failed_running_and_pending_cells(tmp_path, cache_dir):
    out = tmp_path / "out"
    quick = write_suite(tmp_path / "quick.yaml", tiny_suite(name="quick", methods=["transfergan"], seeds=[0, 1],
                                                            targets=DIGIT7))  # fmt: skip
    broken = [c for c in expand_cells(load_suite(str(quick))) if c.seed == 1][0]
    checkpoint = ResultsStore(out).run_dir(broken.key) / "checkpoints" / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    # A readable checkpoint of other networks: the cell crashes when it loads it (an unreadable one is set
    # aside and the cell starts again, see test_trainer).
    state = {"version": 1, "step": 2, "train_seconds": 0.0, "method": {"no_such_weight": torch.zeros(1)},
             "optimizers": {}, "rng": {}, "queue": []}  # fmt: skip
    torch.save(state, checkpoint)
    result = run_cli("--suite", quick, "--out", out, "--jobs", "2", "--no-progress", "--no-report", cache_dir=cache_dir)
    assert result.returncode == 1 and "finished 1, failed 1" in result.stdout, result.stdout + result.stderr

    train = {"steps": 100000, "batch_size": 4, "eval_every": 50000, "log_every": 10, "hflip": False}
    long = write_suite(tmp_path / "long.yaml", tiny_suite(name="long", methods=["transfergan"], seeds=[0, 1],
                                                          targets=DIGIT7, train=train))  # fmt: skip
    env = {**os.environ, "GTB_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1", "GTB_LEASE_HEARTBEAT": "0.3"}
    cmd = [sys.executable, str(ROOT / "run_benchmark.py"), "--suite", str(long), "--out", str(out), "--jobs", "1",
           "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            lines = status_lines(out, cache_dir, "long") if (out / "runs" / "long").is_dir() else {}
            running = lines.get("digit7-5shot-transfergan-s0", "")
            if re.search(r"running +step [1-9]\d*/100000", running):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"no running cell with progress: {lines}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    status = run_cli("status", "--out", out, cache_dir=cache_dir)
    assert status.returncode == 0, status.stderr
    assert "suite quick: 2 cells (1 finished, 1 failed)" in status.stdout
    assert "suite long: 2 cells (2 pending)" in status.stdout
    assert f"on {os.uname().nodename} pid {proc.pid}" in running
    sections = status_sections(status.stdout)
    quick_lines, long_lines = sections["quick"], sections["long"]
    assert "finished  step 4/4" in quick_lines["digit7-5shot-transfergan-s0"]
    failed = quick_lines["digit7-5shot-transfergan-s1"]
    assert re.search(r"failed +\w+Error: .*log: .*/log.txt", failed), failed
    assert "Traceback" in Path(failed.split("log: ")[1]).read_text()
    killed = long_lines["digit7-5shot-transfergan-s0"]
    assert re.search(r"pending +interrupted at step \d+ \(its process died\); resumes", killed), killed
    assert "pending   not started" in long_lines["digit7-5shot-transfergan-s1"]

    with sqlite3.connect(out / "results.sqlite") as db:  # status rebuilt the index from the run folders
        rows = dict(db.execute("SELECT cell_id || ' ' || suite, status FROM cells").fetchall())
    assert sorted(rows.values()) == ["failed", "finished", "pending", "pending"]


def status_sections(text: str) -> dict[str, dict[str, str]]:
    """``status`` output as suite -> cell id -> its line (cell ids repeat across suites)."""
    sections: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("suite "):
            cells = sections.setdefault(line.split()[1].rstrip(":"), {})
        elif line.startswith("  "):
            cells[line.split()[0]] = line
    return sections


def test_two_local_suite_commands_at_once_never_train_a_cell_twice(tmp_path, cache_dir):
    suite = write_suite(tmp_path / "twice.yaml", tiny_suite(name="twice", methods=["transfergan"], seeds=[0, 1],
                                                            targets=DIGIT7))  # fmt: skip
    out = tmp_path / "out"
    env = {**os.environ, "GTB_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "run_benchmark.py"), "--suite", str(suite), "--out", str(out), "--jobs", "1",
           "--no-progress", "--no-report"]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    trained = [int(re.search(r"finished (\d+)", stdout).group(1)) for stdout, _ in outputs]
    assert sum(trained) == 2, outputs  # every cell trained by exactly one of the two
    assert_trained_once(out, n_cells=2)
    assert all(steps == (0, 2, 4) for steps, _ in final_metrics(out).values())
    assert all(read(run / "status.json")["state"] == "finished" for run in run_dirs(out).values())
    assert "(2 finished)" in run_cli("status", "--out", out, cache_dir=cache_dir).stdout
