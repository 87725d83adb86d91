"""Each cell's state, read from its run folder (and, for SLURM jobs, from ``squeue``).

The states a user sees, and what a suite command does with them:

    pending    not started, or interrupted (Ctrl-C, SIGKILL, scancel, a requeue whose job left the
               queue): the next suite command runs it, resuming from its last checkpoint
    queued     a SLURM job for it is waiting in the queue (or starting): not submitted again
    running    a live process holds its lease: step/total from the lease's heartbeat
    finished   done; never rerun
    failed     diverged or crashed (the reason and the log to read), or its SLURM job ended
               without a word (killed by SIGKILL, out of memory, a node failure): rerun only with
               --retry-failed

Without ``sacct`` (clusters without slurmdbd) submitit cannot tell a job's state, so nothing
here asks it: the run folders are the record, ``squeue`` only says which jobs are still queued.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmark.lease import SLURM_QUEUED, SLURM_RUNNING, current_lease, held_by_live_owner
from benchmark.runfolder import LOG_FILE, RunFolder, run_folders

USER_STATES = ("pending", "queued", "running", "finished", "failed")


class SlurmQueue:
    """``squeue`` job states, asked once per instance for every job id named (one call, cached).

    ``states(ids)`` returns {job id: state} for the ids still known to SLURM (array tasks as
    ``ARRAYJOB_TASK``), or None where ``squeue`` is missing or fails: then nobody can say.
    """

    def __init__(self):
        self._cache: dict[str, str] = {}
        self._asked: set[str] = set()
        self._unavailable = shutil.which("squeue") is None

    def __call__(self, job_ids: Iterable[str]) -> dict[str, str] | None:
        return self.states(job_ids)

    def states(self, job_ids: Iterable[str]) -> dict[str, str] | None:
        if self._unavailable:
            return None
        job_ids = [j for j in job_ids if j]
        wanted = {j.split("_")[0] for j in job_ids} - self._asked
        if wanted:
            try:
                out = subprocess.run(
                    ["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(sorted(wanted))],
                    capture_output=True, text=True, timeout=60,
                )  # fmt: skip
            except (OSError, subprocess.TimeoutExpired):
                self._unavailable = True
                return None
            # squeue exits 1 with "Invalid job id specified" once every named job has left the queue.
            if out.returncode != 0 and "Invalid job id" not in out.stderr:
                self._unavailable = True
                return None
            for line in out.stdout.splitlines():
                job, _, state = line.strip().partition("|")
                self._cache[job] = state
            self._asked |= wanted
        return {j: self._cache[j] for j in job_ids if j in self._cache}


@dataclass
class CellState:
    """What ``status`` prints about one cell.

    Args:
        folder: the run folder.
        identity: cell.json.
        state: one of USER_STATES.
        step, total: training progress (the last heartbeat, or the step where it stopped).
        job: the SLURM job id, if one was submitted for it.
        reason: why it failed, or what a pending/queued cell is waiting for.
        log: the log to read (the cell's log.txt, or the SLURM job's log when the job died).
        status: status.json as written by the owner (None if it never started).
        owner: the live lease holder of a running cell (host, pid, SLURM job).
    """

    folder: RunFolder
    identity: dict
    state: str
    step: int | None = None
    total: int | None = None
    job: str | None = None
    reason: str | None = None
    log: str | None = None
    status: dict | None = None
    owner: dict | None = None

    @property
    def cell_id(self) -> str:
        return self.identity["cell_id"]

    @property
    def active(self) -> bool:
        """Running or queued: a suite command neither runs nor submits it again."""
        return self.state in ("running", "queued")


def cell_state(folder: RunFolder, queue: SlurmQueue | None = None) -> CellState:
    """Derive a cell's state from its files (see the module docstring).

    The lease is read before status.json: an owner writes its final status before it releases
    the lease, so a released lease is always followed by a status that says how the cell ended.
    """
    identity = folder.identity() or {"cell_id": folder.path.name}
    lease = current_lease(folder.path)
    status = folder.status()
    slurm = folder.slurm() or {}
    status_owner = (status or {}).get("owner") or {}
    total = identity.get("total_steps")
    # The newer of the job that last ran the cell and the job last submitted for it.
    resubmitted = slurm.get("submitted", 0) > (status or {}).get("updated", 0)
    job = (slurm.get("job_id") if resubmitted else None) or status_owner.get("slurm_job") or slurm.get("job_id")
    slurm_log = (status or {}).get("slurm_log") or slurm.get("stderr")
    cell = CellState(folder, identity, "pending", total=total, job=job, status=status, log=slurm_log)
    state = (status or {}).get("state")
    if state == "finished":
        cell.state, cell.step, cell.log = "finished", (status.get("step") or total), str(folder.path / LOG_FILE)
        return cell
    if state == "failed":
        cell.state, cell.reason = "failed", status.get("error")
        cell.step, cell.log = status.get("step"), status.get("slurm_log") or str(folder.path / LOG_FILE)
        return cell

    if held_by_live_owner(lease, queue):
        owner = lease.get("owner") or {}
        cell.state, cell.step, cell.owner = "running", lease.get("step"), owner
        cell.total = lease.get("total") or total
        cell.job = owner.get("slurm_job") or job
        return cell
    held = lease is not None and not lease.get("released")
    stopped_at = lease.get("step") if held and lease.get("step") is not None else (status or {}).get("step")
    cell.step = stopped_at
    queued = _queued_state(job, queue)
    if queued is not None:
        cell.job = job
        cell.state = "queued"
        cell.reason = queued.lower() + (f", resumes after step {stopped_at}" if stopped_at else "")
        return cell
    if (
        state == "running"
        and job is not None
        and status_owner.get("slurm_job") == job
        and queue is not None
        and queue.states([job]) is not None
    ):
        # Its job left the queue while the cell ran, and nothing was written: killed without a
        # signal it could act on (SIGKILL, out of memory, a node failure). Only a SLURM job: a
        # local process that died the same way has no job to blame and resumes (below).
        cell.state = "failed"
        cell.reason = f"SLURM job {job} ended at step {stopped_at} without finishing or saying why (killed?)"
        return cell
    if state in ("running", "interrupted"):
        why = status.get("reason") or "its process died"
        cell.reason = f"interrupted at step {stopped_at} ({why}); resumes from its last checkpoint"
    elif slurm:
        cell.reason = f"job {job} left the queue before it started; see {slurm_log}"
    return cell


def _queued_state(job: str | None, queue: SlurmQueue | None) -> str | None:
    """The job's squeue state while it is waiting or starting (the cell has no live owner yet)."""
    if not job or queue is None:
        return None
    states = queue.states([job])
    if not states:
        return None
    state = states.get(job)
    if state in SLURM_QUEUED:
        return "starting" if state in SLURM_RUNNING else state
    return None


def cell_states(out: str | Path, suite: str | None = None, queue: SlurmQueue | None = None) -> list[CellState]:
    """The state of every cell under ``out`` (of one suite)."""
    queue = queue if queue is not None else SlurmQueue()
    folders = run_folders(out, suite)
    jobs = []
    for folder in folders:
        slurm, status = folder.slurm() or {}, folder.status() or {}
        jobs += [slurm.get("job_id"), status.get("owner", {}).get("slurm_job")]
    queue.states([j for j in jobs if j])  # one squeue call for all of them
    return [cell_state(folder, queue) for folder in folders]


def format_status(states: list[CellState], now: float | None = None) -> str:
    """One line per cell under a header per suite, then the counts."""
    now = now or time.time()
    lines = []
    by_suite: dict[str, list[CellState]] = {}
    for s in states:
        by_suite.setdefault(s.identity.get("suite", "?"), []).append(s)
    for suite, cells in by_suite.items():
        counts = {name: sum(c.state == name for c in cells) for name in USER_STATES}
        summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
        lines.append(f"suite {suite}: {len(cells)} cells ({summary})")
        width = max(len(c.cell_id) for c in cells)
        for c in cells:
            lines.append(f"  {c.cell_id:<{width}}  {_describe(c)}")
    return "\n".join(lines)


def _describe(c: CellState) -> str:
    job = f"  [job {c.job}]" if c.job else ""
    if c.state == "running":
        owner = c.owner or {}
        where = f" on {owner.get('host')} pid {owner.get('pid')}" if owner.get("pid") else ""
        return f"running   step {_step(c.step)}/{_step(c.total)}{where}{job}"
    if c.state == "finished":
        return f"finished  step {_step(c.step)}/{_step(c.total)}{job}"
    if c.state == "failed":
        return f"failed    {c.reason}{job}  log: {c.log}"
    if c.state == "queued":
        return f"queued    {c.reason}{job}"
    return f"pending   {c.reason or 'not started'}{job}"


def _step(value) -> str:
    return "?" if value is None else str(value)
