"""Time and peak memory of the metrics against their references, on random 2048-d features.

For each N (real and generated sets of N rows each, float32 like Inception features) this runs
FID, KID, KMMD and PRDC from `benchmark.metrics`, and the references: the prdc package's
`compute_prdc` and clean-fid's `frechet_distance` (after np.mean / np.cov, as clean-fid does)
and `kernel_distance`. KMMD has no reference. It prints seconds, peak memory, the speed-up and
memory ratio (reference / ours, from the same run) and the relative difference of the values.

Each measurement runs in a fresh Python process, after a warm-up on 64 rows, so thread pools,
caches and memory high-water marks do not leak between them. Peak host memory is that process's
`resource` high-water RSS minus its RSS just before the call (it covers numpy, torch and sklearn
allocations, which tracemalloc would partly miss); on CUDA the device peak is
`torch.cuda.max_memory_allocated`. A reference whose estimated memory exceeds the RAM available
now is skipped with the reason printed (the prdc package keeps N x N distances and argpartition
indices: about 16 N^2 bytes, 40 GB at N = 50k).

Usage:
    python benchmarks/metrics_speed.py                          # N = 5k, 10k, 50k on the CPU
    python benchmarks/metrics_speed.py --sizes 5000 10000      # a shorter run
    python benchmarks/metrics_speed.py --device cuda --metrics prdc fid
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import GIB, current_rss_bytes, gib  # noqa: E402

DIM = 2048
SIZES = (5_000, 10_000, 50_000)
METRICS = ("fid", "kid", "kmmd", "prdc")
DTYPES = ("float32", "float64")
WARM_UP_ROWS = 64
HEADER = ("metric", "  ours s", " ours peak", "   ref s", "  ref peak", " speed-up", " memory", "rel. diff")


def make_features(n: int, seed: int, dim: int = DIM, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Non-negative features like pooled Inception activations (float32 by default); the fakes slightly off."""
    rng = np.random.default_rng(seed)
    real = rng.random((n, dim), dtype=np.float32).astype(dtype)
    fake = (rng.random((n, dim), dtype=np.float32) * np.float32(1.05)).astype(dtype)
    return real, fake


def reference_memory_bytes(metric: str, n: int) -> int:
    """Rough peak of the reference implementation, to skip what cannot fit."""
    if metric == "prdc":
        return 16 * n * n  # float32 distances + int64 argpartition indices + its working copy
    if metric == "fid":
        return 2 * 8 * n * DIM + 16 * 8 * DIM * DIM  # np.cov's float64 copy; sqrtm's complex work
    return 64 * 2**20 * 8  # kernel_distance works on 1000-row subsets


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) * 1024


# --- one measurement, in a worker process --------------------------------------------------------


def cleanfid_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """clean-fid's frechet_distance, with scipy's sqrtm adapted to the `disp=False` it passes.

    scipy 1.18 removed `disp`; the shim returns the (root, error) pair clean-fid expects, so the
    rest is clean-fid's own arithmetic on any scipy.
    """
    import cleanfid.fid
    import scipy.linalg

    def sqrtm(matrix, disp=True):
        root = scipy.linalg.sqrtm(matrix)
        if disp:
            return root
        return root, np.linalg.norm(root @ root - matrix, "fro") / np.linalg.norm(matrix, "fro")

    original = cleanfid.fid.linalg
    cleanfid.fid.linalg = SimpleNamespace(sqrtm=sqrtm)
    try:
        return cleanfid.fid.frechet_distance(mu1, sigma1, mu2, sigma2)
    finally:
        cleanfid.fid.linalg = original


def metric_call(metric: str, implementation: str, device: str):
    """A function (real, fake) -> value for one metric and implementation."""
    if implementation == "ours":
        from benchmark import metrics

        calls = {
            "fid": lambda real, fake: metrics.frechet_distance(real, fake, device=device),
            "kid": lambda real, fake: metrics.kid(real, fake, device=device),
            "kmmd": lambda real, fake: metrics.kmmd(real, fake, device=device),
            "prdc": lambda real, fake: metrics.prdc(real, fake, k=5, device=device),
        }
        return calls[metric]

    import cleanfid.fid
    import prdc

    def fid(real, fake):
        stats = [(np.mean(x, axis=0), np.cov(x, rowvar=False)) for x in (real, fake)]
        return cleanfid_frechet(*stats[0], *stats[1])

    def kid(real, fake):
        np.random.seed(0)  # clean-fid samples subsets from the global RNG; ours uses seed=0
        return cleanfid.fid.kernel_distance(real, fake)

    def prdc_package(real, fake):
        with contextlib.redirect_stdout(sys.stderr):  # compute_prdc prints the set sizes
            return prdc.compute_prdc(real, fake, nearest_k=5)

    return {"fid": fid, "kid": kid, "prdc": prdc_package}[metric]


def measure(
    metric: str, implementation: str, n: int, device: str, seed: int, dim: int = DIM, dtype: str = "float32"
) -> dict:
    import torch

    call = metric_call(metric, implementation, device)
    cuda = device.startswith("cuda") and implementation == "ours"
    # Warm up ours (CUDA context, kernels). The CPU references have nothing to warm, and their
    # warm-up would cost as much as a measurement: FID's sqrtm is 2048 x 2048 whatever the rows.
    if implementation == "ours":
        call(*make_features(WARM_UP_ROWS, seed + 1, dim, dtype))
    real, fake = make_features(n, seed, dim, dtype)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline = current_rss_bytes()
    start = time.perf_counter()
    value = call(real, fake)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak_host = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline)
    return {
        "seconds": seconds,
        "peak_host": peak_host,
        "peak_device": torch.cuda.max_memory_allocated() if cuda else None,
        "value": {key: float(v) for key, v in value.items()} if isinstance(value, dict) else float(value),
    }


# --- the driver ----------------------------------------------------------------------------------


def run_worker(metric: str, implementation: str, n: int, device: str, seed: int, dtype: str = "float32") -> dict:
    command = [sys.executable, __file__, "--worker", metric, implementation, str(n)]
    command += ["--device", device, "--seed", str(seed), "--dtype", dtype]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{metric} {implementation} N={n} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def relative_difference(ours, reference) -> float:
    if isinstance(ours, dict):
        return max(relative_difference(ours[key], reference[key]) for key in reference)
    return abs(ours - reference) / max(abs(reference), 1e-300)


def print_row(metric: str, ours: dict, reference: dict | None, skipped: str | None) -> None:
    ours_peak = ours["peak_device"] if ours["peak_device"] is not None else ours["peak_host"]
    cells = [f"{metric:<6}", f"{ours['seconds']:>8.2f}", f"{gib(ours_peak):>10}"]
    if reference is None:
        cells += [f"{'-':>8}", f"{'-':>10}", f"{'-':>8}", f"{'-':>7}", f"{'-':>9}"]
    else:
        cells += [
            f"{reference['seconds']:>8.2f}",
            f"{gib(reference['peak_host']):>10}",
            f"{reference['seconds'] / ours['seconds']:>7.1f}x",
            f"{reference['peak_host'] / max(ours_peak, 1):>6.1f}x",
            f"{relative_difference(ours['value'], reference['value']):>9.1e}",
        ]
    print("  ".join(cells) + (f"   reference skipped: {skipped}" if skipped else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="rows per set (N)")
    parser.add_argument("--metrics", nargs="+", choices=METRICS, default=list(METRICS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:index] for our metrics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="feature dtype (float64: exact references)")
    worker_fields = ("METRIC", "IMPLEMENTATION", "N")
    parser.add_argument("--worker", nargs=3, metavar=worker_fields, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        metric, implementation, n = args.worker
        print(json.dumps(measure(metric, implementation, int(n), args.device, args.seed, dtype=args.dtype)))
        return

    print(f"D = {DIM}, {args.dtype} features; ours on {args.device}, references on the CPU")
    print(f"host: {os.cpu_count()} CPU cores, {available_bytes() / GIB:.1f} GiB RAM available")
    print("peak = extra memory during the call (ours on CUDA: device memory); ratios are reference / ours")
    for n in args.sizes:
        print(f"\nN = {n:,} real and {n:,} generated")
        print("  ".join(HEADER), flush=True)
        for metric in args.metrics:
            ours = run_worker(metric, "ours", n, args.device, args.seed, args.dtype)
            reference, skipped = None, None
            if metric != "kmmd":
                needed, available = reference_memory_bytes(metric, n), available_bytes()
                if needed > available:
                    skipped = f"needs about {needed / GIB:.0f} GiB, {available / GIB:.0f} GiB available"
                else:
                    reference = run_worker(metric, "reference", n, args.device, args.seed, args.dtype)
            print_row(metric, ours, reference, skipped)


if __name__ == "__main__":
    main()
