"""Cell leases: one live owner at a time, taken over from a dead one, never from a live one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark import lease as lease_module
from benchmark.lease import CellLease, current_lease, lease_files, lease_is_held

ROOT = Path(__file__).resolve().parent.parent


def test_one_owner_at_a_time_then_released(tmp_path):
    first = CellLease.acquire(tmp_path, heartbeat=False)
    assert first is not None and first.generation == 1
    assert CellLease.acquire(tmp_path, heartbeat=False) is None  # this process is alive: held
    first.release()
    second = CellLease.acquire(tmp_path, heartbeat=False)
    assert second is not None and second.generation == 2
    assert [p.name for p in lease_files(tmp_path)] == ["000001.json", "000002.json"]


def test_a_dead_owner_is_taken_over_a_live_one_is_not(tmp_path):
    code = (
        "import sys, time; from benchmark.lease import CellLease\n"
        "CellLease.acquire(sys.argv[1]); print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert lease_is_held(tmp_path)["owner"]["pid"] == holder.pid
        assert CellLease.acquire(tmp_path, heartbeat=False) is None
    finally:
        holder.kill()
        holder.wait()
    assert lease_is_held(tmp_path) is None  # SIGKILLed: no release written, but its pid is gone
    taken = CellLease.acquire(tmp_path, heartbeat=False)
    assert taken is not None and taken.generation == 2
    assert json.loads(taken.path.read_text())["took_over"]["owner"]["pid"] == holder.pid


def test_a_zombie_owner_does_not_keep_a_lease(tmp_path):
    """An exited owner nobody has reaped (an orphan under an init that does not reap) keeps its
    /proc entry and start time; it still counts as gone."""
    code = "import sys; from benchmark.lease import CellLease; CellLease.acquire(sys.argv[1], heartbeat=False)"
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT)
    try:
        stat = Path(f"/proc/{holder.pid}/stat")
        deadline = time.time() + 60
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":  # exited, and not reaped: we do not wait()
            assert time.time() < deadline, "the lease holder did not exit"
            time.sleep(0.05)
        assert current_lease(tmp_path)["owner"]["pid"] == holder.pid and not current_lease(tmp_path)["released"]
        assert lease_is_held(tmp_path) is None
        assert CellLease.acquire(tmp_path, heartbeat=False).generation == 2
    finally:
        holder.wait()


def test_a_reused_pid_does_not_keep_a_lease(tmp_path):
    held = CellLease.acquire(tmp_path, heartbeat=False)
    record = json.loads(held.path.read_text())
    record["owner"]["pid_start"] -= 1  # the same pid, started at another time: another process
    held.path.write_text(json.dumps(record))
    assert lease_is_held(tmp_path) is None


def test_a_remote_owner_lives_while_squeue_says_so_else_by_heartbeat(tmp_path, monkeypatch):
    held = CellLease.acquire(tmp_path, heartbeat=False)
    record = json.loads(held.path.read_text())
    record["owner"].update(host="elsewhere", slurm_job="77_3")
    held.path.write_text(json.dumps(record))
    assert lease_is_held(tmp_path, queue_states=lambda ids: {"77_3": "RUNNING"}) is not None
    assert lease_is_held(tmp_path, queue_states=lambda ids: {}) is None  # left the queue
    assert lease_is_held(tmp_path, queue_states=lambda ids: {"77_3": "PENDING"}) is None  # requeued: not running
    assert lease_is_held(tmp_path, queue_states=lambda ids: None) is not None  # no squeue: a fresh heartbeat
    monkeypatch.setattr(lease_module, "LEASE_TTL_SECONDS", 0.0)
    assert lease_is_held(tmp_path, queue_states=lambda ids: None) is None  # and a stale one


def test_a_requeued_job_takes_over_its_own_earlier_incarnation(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")
    held = CellLease.acquire(tmp_path, heartbeat=False)
    record = json.loads(held.path.read_text())
    record["owner"]["host"] = "node-that-ran-it-before"
    held.path.write_text(json.dumps(record))
    running = lambda ids: {"12_4": "RUNNING"}  # noqa: E731  (squeue sees the new incarnation)
    assert CellLease.acquire(tmp_path, queue_states=running, heartbeat=False) is None
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    again = CellLease.acquire(tmp_path, queue_states=running, heartbeat=False)
    assert again is not None and again.owner["slurm_restart"] == 1


def test_heartbeat_records_progress_and_a_lost_lease_stops_the_owner(tmp_path, monkeypatch):
    held = CellLease.acquire(tmp_path, heartbeat=False)
    held.progress = lambda: (7, 10)
    held.beat()
    assert (current_lease(tmp_path)["step"], current_lease(tmp_path)["total"]) == (7, 10)
    (tmp_path / "lease" / "000002.json").write_text("{}")  # someone took it over
    exits = []
    monkeypatch.setattr(lease_module.os, "_exit", exits.append)
    held.beat()
    assert exits == [lease_module.LOST_LEASE_EXIT_CODE]


def test_racing_processes_get_one_lease(tmp_path):
    code = (
        "import sys, time; from benchmark.lease import CellLease\n"
        "time.sleep(max(0, float(sys.argv[2]) - time.time()))\n"
        "lease = CellLease.acquire(sys.argv[1], heartbeat=False)\n"
        "print('won' if lease else 'lost', flush=True); time.sleep(3)\n"
    )
    start = time.time() + 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), str(start)], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )  # fmt: skip
        for _ in range(4)
    ]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["lost", "lost", "lost", "won"]
    assert len(lease_files(tmp_path)) == 1


@pytest.mark.parametrize(("text", "minutes"), [(90, 90), ("90", 90), ("2:00:00", 120), ("1-00:00:00", 1440),
                                               ("0:30", 1), ("1-2", 1560)])  # fmt: skip
def test_slurm_time_formats(text, minutes):
    from benchmark.slurm import parse_minutes

    assert parse_minutes(text) == minutes
