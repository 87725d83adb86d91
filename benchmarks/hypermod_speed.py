"""Throughput and peak memory of Hyper-Modulation's generator: weights per class (ours) vs per sample.

The modulated kernels depend only on the class, so ``HyperModGenerator`` sorts a batch by class
and builds one weight set per class present; the official code (hecoding/Hyper-Modulation
model/hyper_mod.py ``conv1to1``) builds one per sample and runs a grouped conv, which the
generator keeps as ``per_sample=True``. This script times a generator training step (forward,
a mean-square loss on the images, backward into the hypernetwork and task network, as in the G
phase) for both, on the real rosinality widths (512 channels up to 32 px, halving above) with
random weights, and prints images/s, peak memory and the ratios from the same run.

Each implementation runs in a fresh Python process after ``--warmup`` untimed steps, so memory
high-water marks do not leak between them. Peak memory is ``torch.cuda.max_memory_allocated``
during the timed steps on CUDA (the hypernetwork's parameters and gradients included: about
2.2 GB at 256 px) and, on the CPU, the process's high-water RSS minus its RSS once the model is
built (so gradients, activations and modulated weights, not the parameters). The gradients of
the hypernetwork (printed) are the same for both and set the peak when activations are small
(low resolution); the per-sample weights add batch x (sum over convs of out x in x k x k) floats
kept for the backward pass, against classes-in-batch x that for ours. Labels are drawn
uniformly from ``--classes`` classes with the same seed for both implementations.

Usage:
    python benchmarks/hypermod_speed.py                                   # 256 px, batch 10, CUDA if present
    python benchmarks/hypermod_speed.py --resolution 32 --batch 8 --steps 3   # small enough for a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import GIB, current_rss_bytes  # noqa: E402

IMPLEMENTATIONS = ("per-class", "per-sample")


def measure(args) -> dict:
    """Time ``args.steps`` generator training steps of one implementation; returns a JSON-able dict."""
    import torch

    from benchmark.nets import BackboneConfig, StyledGenerator
    from methods.hypernet import HyperModGenerator

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    config = BackboneConfig(resolution=args.resolution, image_channels=3)
    per_sample = args.implementation == "per-sample"
    G = HyperModGenerator(StyledGenerator(config), n_classes=args.classes, per_sample=per_sample)
    G.task.split_classes()
    G.to(device)
    g = torch.Generator().manual_seed(args.seed)
    batches = [
        (
            torch.randn(args.batch, config.style_dim, generator=g),
            torch.randint(args.classes, (args.batch,), generator=g),
        )
        for _ in range(args.warmup + args.steps)
    ]

    def step(z, labels):
        images = G(z.to(device), labels.to(device))
        images.square().mean().backward()
        for p in G.parameters():
            p.grad = None

    cuda = device.type == "cuda"
    baseline = current_rss_bytes()  # the model is built: what follows is what the steps need
    for z, labels in batches[: args.warmup]:
        step(z, labels)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for z, labels in batches[args.warmup :]:
        step(z, labels)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    host_peak = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline)
    timed_labels = [labels for _, labels in batches[args.warmup :]]
    return {
        "images_per_second": args.batch * args.steps / seconds,
        "peak_bytes": torch.cuda.max_memory_allocated() if cuda else host_peak,
        "peak_kind": "device" if cuda else "host RSS",
        "classes_per_batch": sum(len(labels.unique()) for labels in timed_labels) / len(timed_labels),
        "trainable_parameters": sum(p.numel() for p in G.parameters() if p.requires_grad),
    }


def run_worker(implementation: str, args) -> dict:
    command = [sys.executable, __file__, "--worker", implementation]
    for name in ("resolution", "batch", "classes", "steps", "warmup", "seed", "device"):
        command += [f"--{name}", str(getattr(args, name))]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{implementation} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=10, help="images per step (official: 10 at 256 px)")
    parser.add_argument("--classes", type=int, default=3, help="labels are drawn from this many (AFHQ: 3)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cuda if available, else cpu")
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cpu":
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.worker:
        args.implementation = args.worker
        print(json.dumps(measure(args)))
        return

    print(f"{args.resolution} px, batch {args.batch}, labels from {args.classes} classes, {args.device}", flush=True)
    results = {}
    for implementation in IMPLEMENTATIONS:
        results[implementation] = result = run_worker(implementation, args)
        print(
            f"{implementation:<11} {result['images_per_second']:9.2f} images/s   "
            f"peak {result['peak_bytes'] / GIB:7.2f} GiB ({result['peak_kind']})   "
            f"{result['classes_per_batch']:.1f} classes per batch",
            flush=True,
        )
    ours, reference = results["per-class"], results["per-sample"]
    n = ours["trainable_parameters"]
    print(f"hypernetwork + task network: {n / 1e6:.1f}M parameters, their gradients {4 * n / GIB:.2f} GiB")
    speed = ours["images_per_second"] / reference["images_per_second"]
    memory = reference["peak_bytes"] / max(ours["peak_bytes"], 1)
    print(f"per-class vs per-sample: {speed:.2f}x the throughput, {memory:.2f}x less peak memory")


if __name__ == "__main__":
    main()
