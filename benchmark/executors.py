"""Executors: how a suite's independent cells are spread over the machine.

The local executor runs cells in this process one after another, or in ``jobs`` worker
processes: one per visible GPU, or several CPU workers with one intra-op thread each (small
networks gain little from threads, and 2 single-threaded workers finish a CPU suite about twice
as fast as one process with 2 threads). Everything cells share (pretrained sources, prepared
images, the feature extractor) is built once in the parent first, so workers only read caches.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from tqdm.auto import tqdm

from benchmark.config import SuiteConfig
from benchmark.runner import Cell, SuiteContext, expand_cells, register_cells, run_cell
from benchmark.status import SlurmQueue, cell_state
from benchmark.store import ResultsStore

log = logging.getLogger(__name__)


def worker_devices(device: str, jobs: int) -> list[str]:
    """The device of each worker: cuda:0..n-1 round-robin for "cuda", else ``device`` for all."""
    if device == "cuda" and torch.cuda.device_count() > 1:
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(jobs)]
    return [device] * jobs


def limit_cpu_threads(threads: int) -> None:
    """Cap torch's intra-op threads and numpy's BLAS threads (the CPU metrics use it) in this process."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)


def cpu_threads_per_worker(jobs: int) -> int:
    """Intra-op threads for each of ``jobs`` CPU workers: ``$OMP_NUM_THREADS`` when set, else the cores shared out.

    One thread per worker when cells run side by side: small networks gain little from threads,
    and spinning OpenMP threads stall badly when processes share cores.
    """
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, (os.cpu_count() or 1) // jobs)


def default_jobs(device: str) -> int:
    """One worker per visible GPU; on a CPU, one per core."""
    if device.startswith("cuda"):
        return torch.cuda.device_count() if device == "cuda" else 1
    return os.cpu_count() or 1


def warm_caches(ctx: SuiteContext, cells: list[Cell]) -> None:
    """Build what cells share, once: sources (pretraining toy ones), images, the feature extractor."""
    for name in sorted({name for cell in cells for name in cell.source_names}):
        ctx.source(name)
    for target in {c.target.name: c.target for c in cells}.values():
        ctx.images(target, target.split)
        ctx.images(target, target.eval_split or target.split)
    ctx.extractor()


_WORKER_DEVICE: str | None = None


def _init_worker(devices, threads: int) -> None:
    """Each worker takes one device from the queue for its lifetime, so two never share a GPU."""
    global _WORKER_DEVICE
    _WORKER_DEVICE = devices.get()
    limit_cpu_threads(threads)
    _exit_with_parent(os.getppid())


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent was killed (SIGKILL leaves no chance to clean up) stops at once, so a
    rerun that resumes its cell never races a stray worker still writing the same run folder.

    On Linux the kernel sends the worker SIGKILL when its parent dies (``PR_SET_PDEATHSIG``, set
    from the worker itself, then a check that the parent did not die before it was set). The signal
    follows the parent *thread*: the pool spawns every worker from ``submit`` in the main thread,
    since no ``max_tasks_per_child`` makes its manager thread spawn replacements. A thread polling
    ``getppid`` is the fallback elsewhere; used alone, it once let both workers outlive a killed
    parent by over 10 s on the 2-core CI machine (cause not found), and the kernel's signal does
    not wait for a Python thread to be scheduled.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        set_death_signal = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):  # not Linux
        set_death_signal = False
    if os.getppid() != parent:
        os._exit(1)
    if not set_death_signal:
        threading.Thread(target=_poll_parent, args=(parent,), daemon=True).start()


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _poll_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


_WORKER_CONTEXT: tuple[tuple, SuiteContext] | None = None


def _context(suite: SuiteConfig, out: str, cache_dir: str) -> SuiteContext:
    """The worker's one SuiteContext, so its cells share the loaded source, images and networks (as with jobs=1)."""
    global _WORKER_CONTEXT
    key = (suite.name, out, cache_dir)
    if _WORKER_CONTEXT is None or _WORKER_CONTEXT[0] != key:
        context = SuiteContext(suite, ResultsStore(out), Path(cache_dir), _WORKER_DEVICE, progress=False)
        _WORKER_CONTEXT = (key, context)
    return _WORKER_CONTEXT[1]


def _source_in_worker(suite: SuiteConfig, name: str, out: str, cache_dir: str) -> None:
    _context(suite, out, cache_dir).source(name)


def _cell_in_worker(cell: Cell, out: str, cache_dir: str, retry_failed: bool) -> str:
    return run_cell(cell, _context(cell.suite, out, cache_dir), retry_failed)


def pending_cells(cells: list[Cell], store: ResultsStore, retry_failed: bool) -> tuple[list[Cell], int]:
    """Cells that still need to run, and how many others are running or queued elsewhere.

    A cell runs when it is neither finished, nor failed (unless failures are retried), nor held
    by a live process or a queued SLURM job (benchmark.status): a second suite command on the
    same output folder leaves those to their owners.
    """
    pending, active = [], 0
    queue = SlurmQueue()
    for cell in cells:
        folder = store.folder(cell.key)
        state = cell_state(folder, queue).state if folder.identity() is not None else "pending"
        if state == "pending" or (state == "failed" and retry_failed):
            pending.append(cell)
        elif state in ("running", "queued"):
            active += 1
    return pending, active


def run_local(
    suite: SuiteConfig,
    store: ResultsStore,
    cache_dir: str | Path,
    device: str = "cpu",
    jobs: int = 1,
    progress: bool = True,
    retry_failed: bool = False,
) -> dict[str, int]:
    """Run every pending cell of a suite; returns counts by outcome.

    finished, failed: trained here; skipped: done before; busy: trained by another process (a
    second suite command on the same folder, or a SLURM job) now.
    """
    cache_dir = Path(cache_dir)
    cells = expand_cells(suite)
    pending, active = pending_cells(cells, store, retry_failed)
    counts = {"finished": 0, "failed": 0, "skipped": len(cells) - len(pending) - active, "busy": active}
    if not pending:
        return counts
    register_cells(pending, store)
    jobs = max(1, min(jobs, len(pending)))
    ctx = SuiteContext(suite, store, cache_dir, device, progress)
    if jobs == 1:
        warm_caches(ctx, pending)
        bar = tqdm(total=len(pending), desc=f"suite {suite.name}", disable=not progress, dynamic_ncols=True)
        for cell in pending:
            counts[run_cell(cell, ctx, retry_failed)] += 1
            bar.update(1)
        bar.close()
        return counts

    spawn = mp.get_context("spawn")
    devices = spawn.Queue()
    for d in worker_devices(device, jobs):
        devices.put(d)
    threads = cpu_threads_per_worker(jobs) if device == "cpu" else torch.get_num_threads()
    args = (str(store.out), str(cache_dir))
    with ProcessPoolExecutor(jobs, mp_context=spawn, initializer=_init_worker, initargs=(devices, threads)) as pool:
        # Sources first, side by side (pretraining a toy source is the longest shared step); then the
        # cheap shared work here, so workers only read caches.
        sources = sorted({name for cell in pending for name in cell.source_names})
        source_bar = tqdm(total=len(sources), desc="sources (pretrained once, cached)", disable=not progress)
        for future in as_completed([pool.submit(_source_in_worker, suite, name, *args) for name in sources]):
            future.result()
            source_bar.update(1)
        source_bar.close()
        warm_caches(ctx, pending)
        bar = tqdm(total=len(pending), desc=f"suite {suite.name}", disable=not progress, dynamic_ncols=True)
        futures = {pool.submit(_cell_in_worker, cell, *args, retry_failed): cell for cell in pending}
        for future in as_completed(futures):
            counts[future.result()] += 1
            bar.set_postfix_str(futures[future].cell_id, refresh=False)
            bar.update(1)
        bar.close()
    return counts
