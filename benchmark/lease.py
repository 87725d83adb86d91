"""Who owns a cell: a lease in its run folder, so that no two processes ever train one cell.

A lease is a numbered file, ``lease/000001.json``, ``lease/000002.json``, ... The newest number
is the current one. A process takes a cell by creating the next number with ``os.link`` (atomic,
and reliable on NFS, unlike ``O_EXCL`` on old clients and unlike POSIX locks after a node dies),
so of two processes racing for one number exactly one wins. It may do so only when the current
lease is released or its owner is dead, which is decided in this order:

1. a SLURM job taking a lease that names its own job id with a lower ``SLURM_RESTART_COUNT`` is
   that job's next incarnation (after a requeue SLURM runs one incarnation at a time): the old
   owner is dead;
2. an owner on this host is alive while its process (pid and start time, so a reused pid does not
   count) is, and is not a zombie (exited, not yet reaped);
3. an owner that is a SLURM job elsewhere is alive while ``squeue`` shows that job running;
4. otherwise, while its heartbeat (rewritten every ``HEARTBEAT_SECONDS`` by a thread of the
   owner) is younger than ``LEASE_TTL_SECONDS``.

A live owner that finds a newer lease than its own (taken over after its heartbeat stalled past
the TTL) exits at once, before it writes anything more into the run folder.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import BenchmarkError

log = logging.getLogger(__name__)

LEASE_DIR = "lease"
HEARTBEAT_SECONDS = float(os.environ.get("GTB_LEASE_HEARTBEAT", 15))
LEASE_TTL_SECONDS = float(os.environ.get("GTB_LEASE_TTL", 300))
LOST_LEASE_EXIT_CODE = 75

# SLURM job states in which the job's processes may be running (squeue's long names).
SLURM_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED", "RESIZING"}
# States in which the job is still in the queue: running, or waiting to (again, after a requeue).
SLURM_QUEUED = SLURM_RUNNING | {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD"}


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); None if it is gone.

    A zombie counts as gone: it runs no code, and stays until its parent reaps it. A local worker
    whose parent was SIGKILLed exits on its own (benchmark.executors) but is reparented to PID 1,
    and a container's or VM's init need not reap orphans (seen: one that never did), so its /proc
    entry, start time included, can outlive it indefinitely.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # exited (zombie) or being torn down
        return None
    return int(fields[19])


def slurm_job_id() -> str | None:
    """This process's SLURM job id, ``ARRAYJOB_TASK`` for an array task, or None outside SLURM."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def this_owner(**extra) -> dict:
    """The identity a lease records: host, pid and its start time, SLURM job, a unique token."""
    return {
        "token": uuid.uuid4().hex,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_start": process_start_time(os.getpid()),
        "slurm_job": slurm_job_id(),
        "slurm_restart": _restarts(),
        **extra,
    }


def lease_files(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / LEASE_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(".json") and p.name[:6].isdigit())


def current_lease(run_dir: Path) -> dict | None:
    """The newest lease of a run folder as a dict (with its ``generation``), or None if never taken.

    A lease file that cannot be parsed (a reader catching a half-written heartbeat on a file
    system without atomic rename) counts as held and fresh: the safe reading.
    """
    files = lease_files(run_dir)
    if not files:
        return None
    newest = files[-1]
    try:
        data = json.loads(newest.read_text())
    except (OSError, ValueError):
        data = {"owner": {}, "heartbeat": time.time(), "released": False, "unreadable": True}
    data["generation"] = int(newest.name[:6])
    return data


def owner_alive(owner: dict, heartbeat: float, queue_states: Callable[[list[str]], dict | None] | None = None) -> bool:
    """Whether a lease's owner may still be running (see the module docstring for the order of checks).

    Args:
        owner: the lease's ``owner`` record.
        heartbeat: the lease's last heartbeat time.
        queue_states: ``squeue`` lookup (job ids -> state), None where SLURM cannot be asked.
    """
    if owner.get("slurm_job") and owner["slurm_job"] == slurm_job_id() and owner.get("slurm_restart", 0) < _restarts():
        return False  # this job's earlier incarnation: SLURM ended it before starting this one
    if owner.get("host") == socket.gethostname() and owner.get("pid"):
        start = process_start_time(int(owner["pid"]))
        return start is not None and (owner.get("pid_start") is None or start == owner["pid_start"])
    if owner.get("slurm_job") and queue_states is not None:
        states = queue_states([owner["slurm_job"]])
        if states is not None:
            return states.get(owner["slurm_job"]) in SLURM_RUNNING
    return time.time() - heartbeat < LEASE_TTL_SECONDS


def _restarts() -> int:
    return int(os.environ.get("SLURM_RESTART_COUNT", 0))


def held_by_live_owner(lease: dict | None, queue_states=None) -> bool:
    """Whether a lease read by ``current_lease`` is unreleased and its owner may still be running."""
    if lease is None or lease.get("released"):
        return False
    return bool(lease.get("unreadable")) or owner_alive(
        lease.get("owner") or {}, float(lease.get("heartbeat", 0)), queue_states
    )


def lease_is_held(run_dir: Path, queue_states=None) -> dict | None:
    """The current lease if it is held by a live owner, else None."""
    lease = current_lease(run_dir)
    return lease if held_by_live_owner(lease, queue_states) else None


@dataclass
class CellLease:
    """A held lease. Take one with :meth:`acquire`; ``release()`` when the cell is done.

    Args:
        run_dir: the cell's run folder.
        generation: the lease file's number.
        owner: this process's identity (see ``this_owner``).
        progress: called by the heartbeat for (step, total) to show in ``status``.
    """

    run_dir: Path
    generation: int
    owner: dict
    progress: Callable[[], tuple[int | None, int | None]] | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def path(self) -> Path:
        return lease_path(self.run_dir, self.generation)

    @classmethod
    def acquire(cls, run_dir: str | Path, queue_states=None, heartbeat: bool = True, **owner_extra) -> CellLease | None:
        """Take the cell if nobody alive holds it; None if someone does."""
        run_dir = Path(run_dir)
        (run_dir / LEASE_DIR).mkdir(parents=True, exist_ok=True)
        owner = this_owner(**owner_extra)
        for _ in range(5):
            current = current_lease(run_dir)
            if held_by_live_owner(current, queue_states):
                return None
            generation = (current["generation"] if current else 0) + 1
            record = {"owner": owner, "heartbeat": time.time(), "taken": time.time(), "released": False}
            if current is not None:
                record["took_over"] = {"generation": current["generation"], "owner": current.get("owner")}
            if _create_exclusive(lease_path(run_dir, generation), record):
                lease = cls(run_dir, generation, owner)
                if heartbeat:
                    lease._start_heartbeat()
                return lease
        return None  # lost five races in a row: someone else is taking it right now

    def _record(self, **fields) -> dict:
        step, total = self.progress() if self.progress else (None, None)
        return {"owner": self.owner, "heartbeat": time.time(), "step": step, "total": total, **fields}

    def beat(self) -> None:
        """Rewrite the heartbeat; exit the process if another owner has taken the cell meanwhile."""
        with self._lock:
            if self._stop.is_set():
                return
            newest = lease_files(self.run_dir)
            if newest and int(newest[-1].name[:6]) != self.generation:
                log.error("lease of %s lost to a newer owner; stopping this process", self.run_dir)
                os._exit(LOST_LEASE_EXIT_CODE)
            _write_atomic(self.path, self._record(released=False))

    def _start_heartbeat(self) -> None:
        def loop():
            while not self._stop.wait(HEARTBEAT_SECONDS):
                try:
                    self.beat()
                except (OSError, BenchmarkError) as err:  # a file-system hiccup, a full disk: the next beat tries again
                    log.warning("lease heartbeat of %s failed: %s", self.run_dir, err)

        self._thread = threading.Thread(target=loop, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def release(self, **fields) -> None:
        """Stop the heartbeat and mark the lease released (the file stays: it is the cell's owner history)."""
        with self._lock:
            self._stop.set()
            _write_atomic(self.path, self._record(released=True, released_at=time.time(), **fields))
        if self._thread is not None:
            self._thread.join(timeout=5)


def lease_path(run_dir: Path, generation: int) -> Path:
    return Path(run_dir) / LEASE_DIR / f"{generation:06d}.json"


def _create_exclusive(path: Path, record: dict) -> bool:
    """Write ``record`` to ``path`` only if no such file exists: write a temporary file, then link it."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(record))
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def _write_atomic(path: Path, record: dict) -> None:
    from benchmark.io import write_json

    write_json(record, path)
