"""Pieces the performance scripts share: device sync, timing, memory high-water marks, profiles.

Each script in benchmarks/ adds the repository root to ``sys.path`` itself, so this module is
imported as ``benchmarks.common`` from a script and from the tests alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

GIB = 2**30


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so a clock reading covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable, device: torch.device | str):
    """(fn(), seconds) with the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - start


def current_rss_bytes() -> int:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def gib(size: float | None) -> str:
    return "-" if size is None else f"{size / GIB:.2f} GiB"


def start_profiler(device: torch.device | str) -> torch.profiler.profile:
    """A running torch.profiler over the CPU (and CUDA, on a GPU); stop it with ``save_top_ops``."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.device(device).type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    profiler = torch.profiler.profile(activities=activities)
    profiler.start()
    return profiler


def save_top_ops(profiler: torch.profiler.profile, device: torch.device | str, path: Path, rows: int = 30) -> Path:
    """Stop ``profiler`` and write its top ops by device time (CPU time on a CPU) as a text table."""
    synchronize(device)
    profiler.stop()
    sort_by = "cuda_time_total" if torch.device(device).type == "cuda" else "cpu_time_total"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profiler.key_averages().table(sort_by=sort_by, row_limit=rows) + "\n")
    return path


def profile_call(fn: Callable, device: torch.device | str, path: Path) -> Path:
    """Run ``fn`` once under torch.profiler and save its top ops to ``path``."""
    profiler = start_profiler(device)
    fn()
    return save_top_ops(profiler, device, path)
