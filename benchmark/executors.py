"""Executors: how a suite's independent cells are spread over the machine.

The local executor runs cells in this process one after another, or in ``jobs`` worker
processes: one per visible GPU, or several CPU workers with one intra-op thread each (small
networks gain little from threads, and 2 single-threaded workers finish a CPU suite about twice
as fast as one process with 2 threads). Everything cells share (pretrained sources, prepared
images, the feature extractor) is built once in the parent first, so workers only read caches.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from tqdm.auto import tqdm

from benchmark.config import SuiteConfig
from benchmark.runner import Cell, SuiteContext, expand_cells, run_cell
from benchmark.store import ResultsStore

log = logging.getLogger(__name__)


def worker_devices(device: str, jobs: int) -> list[str]:
    """The device of each worker: cuda:0..n-1 round-robin for "cuda", else ``device`` for all."""
    if device == "cuda" and torch.cuda.device_count() > 1:
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(jobs)]
    return [device] * jobs


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
    torch.set_num_threads(threads)


def _run_in_worker(cell: Cell, out: str, cache_dir: str) -> str:
    ctx = SuiteContext(cell.suite, ResultsStore(out), Path(cache_dir), _WORKER_DEVICE, progress=False)
    return run_cell(cell, ctx)


def run_local(
    suite: SuiteConfig,
    store: ResultsStore,
    cache_dir: str | Path,
    device: str = "cpu",
    jobs: int = 1,
    progress: bool = True,
    retry_failed: bool = False,
) -> dict[str, int]:
    """Run every pending cell of a suite; returns counts by status (finished, failed, skipped)."""
    cache_dir = Path(cache_dir)
    cells = expand_cells(suite)
    counts = {"finished": 0, "failed": 0, "skipped": 0}
    pending = []
    for cell in cells:
        status = store.status(cell.key)
        if status == "finished" or (status == "failed" and not retry_failed):
            counts["skipped"] += 1
        else:
            pending.append(cell)
    if not pending:
        return counts
    ctx = SuiteContext(suite, store, cache_dir, device, progress)
    warm_caches(ctx, pending)
    jobs = max(1, min(jobs, len(pending)))
    bar = tqdm(total=len(pending), desc=f"suite {suite.name}", disable=not progress, dynamic_ncols=True)
    if jobs == 1:
        for cell in pending:
            counts[run_cell(cell, ctx)] += 1
            bar.update(1)
    else:
        spawn = mp.get_context("spawn")
        devices = spawn.Queue()
        for d in worker_devices(device, jobs):
            devices.put(d)
        threads = max(1, (os.cpu_count() or 1) // jobs) if device == "cpu" else torch.get_num_threads()
        with ProcessPoolExecutor(jobs, mp_context=spawn, initializer=_init_worker, initargs=(devices, threads)) as pool:
            futures = {pool.submit(_run_in_worker, cell, str(store.out), str(cache_dir)): cell for cell in pending}
            for future in as_completed(futures):
                counts[future.result()] += 1
                bar.set_postfix_str(futures[future].cell_id, refresh=False)
                bar.update(1)
    bar.close()
    return counts
