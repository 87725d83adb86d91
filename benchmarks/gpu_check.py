"""Every GPU check in one run, printed as one table of ratios measured in that run (docs/performance.md).

On a CUDA machine this runs, within 8 minutes (its jobs get ``--budget-s``, 465 s by default):

- training images/s and peak memory at 256 px, batch 16, R1 every step, for transfergan, freezed,
  minegan and hypermod (3 classes, batch 10): the harness's ``Trainer`` with its defaults and with
  the opt-ins (``train.compile`` and ``train.amp``), each against the official code's step on the
  same networks in the same run (benchmarks/train_speed.py);
- the FID generator path (sample -> resize -> Inception -> FID) against clean-fid's on the same
  generator, with both FIDs (benchmarks/fid_speed.py);
- FID, KID, KMMD and PRDC on 10k float64 features against clean-fid and prdc, and on 50k float32
  features ours alone: seconds and peak GPU memory (benchmarks/metrics_speed.py);
- a 256 px smoke run of the stanford-fewshot suite through ``run_benchmark.py`` on stand-in files (the
  tests' miniature dataset layouts, synthetic rosinality checkpoint, random Inception and VGG16);
- the GPU-marked tests (``pytest -m gpu``).

Each goal from the issue is printed beside its ratio (met / missed); for a missed speed goal the
torch.profiler top-ops table of ours is saved under ``profiles/``. The table is written as
``table.json`` and ``table.md`` into a new numbered folder under ``--out``, with each job's log.
Each job runs in its own Python process with a time limit, so a job that fails or hangs leaves
its rows marked and the others measured.

``--dry`` runs every code path on a CPU at tiny sizes, in this process (the tests do); its numbers
mean nothing and its goals are evaluated only to exercise the profiling path.

Usage:
    python benchmarks/gpu_check.py                          # on a CUDA machine (or benchmarks/gpu_check.sh)
    python benchmarks/gpu_check.py --inception ~/checkpoints/inception-2015-12-05.pt
    python benchmarks/gpu_check.py --dry                    # on a CPU: every path, tiny sizes
    python benchmarks/gpu_check.py --only train             # some sections only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import gib  # noqa: E402

SECTIONS = ("train", "fid", "metrics", "smoke", "tests")
TRAIN_METHODS = ("transfergan", "freezed", "minegan", "hypermod", "transfergan-stylegan2")
INCEPTION_FILE = "inception-2015-12-05.pt"
DEFAULT_BUDGET_S = 465  # the jobs' share of 8 minutes; starting up and writing the table take the rest


@dataclass(frozen=True)
class Sizes:
    """How big each check is: the issue's sizes on a GPU, tiny ones for ``--dry``."""

    tiny_backbone: bool
    train_batch: int
    train_warmup: int
    train_steps: int
    compile: bool | str
    fid_resolution: int
    fid_count: int
    fid_batch: int
    fid_dims: int | None  # FIDs on the first features only (dry: a 2048-d eigendecomposition takes seconds of CPU)
    metric_rows: tuple[int, int]
    metric_dim: int
    smoke_resolution: int
    smoke_methods: tuple[str, ...] | None  # None: every method of the suite
    smoke_metrics: tuple[str, ...] | None  # None: the suite's
    profile_steps: int = 2  # training steps under torch.profiler when a training goal is missed
    # Training rows profiled whatever their goal says, and then only they (--dry: reading a profile back
    # costs seconds of CPU, and tiny numbers judge nothing); empty: every row that misses its goal.
    always_profiled: tuple[str, ...] = ()


GPU_SIZES = Sizes(
    tiny_backbone=False, train_batch=16, train_warmup=5, train_steps=10, compile=True,
    fid_resolution=256, fid_count=5000, fid_batch=100, fid_dims=None,
    metric_rows=(10_000, 50_000), metric_dim=2048,
    smoke_resolution=256, smoke_methods=None, smoke_metrics=None,
)  # fmt: skip
DRY_SIZES = Sizes(
    tiny_backbone=True, train_batch=4, train_warmup=1, train_steps=1, compile=False,
    fid_resolution=8, fid_count=8, fid_batch=4, fid_dims=64,
    metric_rows=(64, 128), metric_dim=64,
    smoke_resolution=4, smoke_methods=("transfergan",), smoke_metrics=("kid", "kmmd", "prdc"), profile_steps=1,
    always_profiled=("train/transfergan/defaults",),
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Rows and goals


@dataclass
class Row:
    """One line of the table.

    Attributes:
        key: stable id (``train/hypermod/defaults``).
        check: what is measured, for people.
        goal: the issue's goal for it ("" when it has none).
        ours, reference, ratio: formatted cells.
        met: whether the goal is met (None without a goal or without a number to judge).
        status: ``ok`` (computed), ``failed`` or ``not run``.
        note: how it was measured, or why it failed.
        profile: the saved top-ops table, for a missed speed goal.
        values: the raw numbers.
    """

    key: str
    check: str
    goal: str = ""
    ours: str = ""
    reference: str = ""
    ratio: str = ""
    met: bool | None = None
    status: str = "not run"
    note: str = ""
    profile: str | None = None
    values: dict = field(default_factory=dict)


def train_goal(method: str, variant: str) -> tuple[str, float, float | None]:
    """(text, least speed ratio, most memory ratio) of a training row: the issue's goals 3."""
    if method == "hypermod":
        return ">= 3x images/s at <= 1/3 of the reference's memory", 3.0, 1 / 3
    if method == "transfergan-stylegan2":  # both sides step the same networks: the loop's overhead only
        return ">= 1x images/s (rosinality train.py's loop on the same networks)", 1.0, None
    if variant == "defaults":
        return ">= 1.5x images/s", 1.5, None
    return ">= 3x images/s at equal work", 3.0, None


def train_met(method: str, variant: str, ours: dict, reference: dict | None) -> bool | None:
    """Whether a training row meets its goal; memory is judged on device peaks only (a CPU's RSS says little)."""
    if reference is None:
        return None
    _, speed, memory = train_goal(method, variant)
    ok = ours["images_per_second"] >= speed * reference["images_per_second"]
    if memory is not None and ours["peak_kind"] == reference["peak_kind"] == "device":
        ok = ok and ours["peak_bytes"] <= memory * reference["peak_bytes"]
    return ok


FID_PATH_GOAL, FID_PATH_SPEED, FID_PATH_AGREEMENT = ">= 20x clean-fid's images/s, FIDs within 0.1%", 20.0, 1e-3
METRIC_AGREEMENT = 1e-6
PRDC_SPEED = 50.0
BIG_SECONDS, BIG_BYTES = 5.0, 4 * 2**30


def metric_goal(metric: str, size: str) -> str:
    if size == "big":
        return "< 5 s and < 4 GiB"
    if metric == "kmmd":
        return ""  # no library ships KMMD: nothing to compare with
    return "equal within 1e-6 relative" + (", >= 50x prdc" if metric == "prdc" else "")


def planned_rows(job: Job, sizes: Sizes) -> list[Row]:
    """The rows a job fills, as placeholders (kept, marked, when the job fails or is not run)."""
    p = job.params
    if job.kind == "train":
        method, variant = p["method"], p["variant"]
        what = "defaults" if variant == "defaults" else "opt-ins (compile + bf16)"
        batch = sizes.train_batch * 10 // 16 if method == "hypermod" else sizes.train_batch
        check = f"train {method}, ours {what} vs the official step (batch {batch}, R1 every step)"
        return [Row(f"train/{method}/{variant}", check, train_goal(method, variant)[0])]
    if job.kind == "fid":
        return [Row("fid/path", f"FID path images/s, {sizes.fid_count} images, vs clean-fid's", FID_PATH_GOAL)]
    if job.kind == "metrics":
        small, big = sizes.metric_rows
        rows = []
        for size, n in (("small", small), ("big", big)):
            kind = "float64, vs clean-fid/prdc" if size == "small" else "float32, ours alone"
            for metric in ("fid", "kid", "kmmd", "prdc"):
                check = f"{metric} on {n:,} features ({kind})"
                rows.append(Row(f"metrics/{n}/{metric}", check, metric_goal(metric, size)))
        return rows
    if job.kind == "smoke":
        what = f"stanford-fewshot suite smoke run at {sizes.smoke_resolution} px, stand-in files"
        return [Row("smoke/stanford", what, "every cell finishes with finite metrics")]
    if job.kind == "tests":
        return [Row("tests/gpu", "pytest -m gpu", "all pass")]
    return []


# --------------------------------------------------------------------------------------------
# Jobs: each runs in its own process on a GPU (in this one with --dry) and returns its rows


@dataclass
class Job:
    """A unit of work: ``kind`` picks the function, ``params`` are JSON-able, ``cap_s`` its time limit."""

    name: str
    kind: str
    params: dict
    cap_s: float


@dataclass
class Context:
    out: Path
    device: str
    dry: bool
    sizes: Sizes
    inception: str | None  # the real Inception file, when there is one

    def to_json(self) -> dict:
        return {
            "out": str(self.out),
            "device": self.device,
            "dry": self.dry,
            "sizes": dataclasses.asdict(self.sizes),
            "inception": self.inception,
        }

    @classmethod
    def from_json(cls, raw: dict) -> Context:
        sizes = raw["sizes"]
        sizes = Sizes(**{**sizes, "metric_rows": tuple(sizes["metric_rows"])})
        return cls(Path(raw["out"]), raw["device"], raw["dry"], sizes, raw["inception"])


def run_environment(_params: dict, ctx: Context) -> dict:
    """Device name, torch, CUDA and cuDNN versions, and the settings that change speed."""
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }
    if ctx.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(ctx.device))
        env.update(device=props.name, device_memory=gib(props.total_memory), driver=_driver_version())
    else:
        env.update(device=f"CPU ({platform.processor() or platform.machine()})")
    return env


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def _driver_version() -> str | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
        )
    except OSError:
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def run_train(params: dict, ctx: Context) -> list[Row]:
    """Ours (defaults or opt-ins) against the official step; the reference is measured with the defaults
    and handed to the opt-in job, so both of a method's rows share it."""
    from benchmark.nets import BackboneConfig
    from benchmarks.train_speed import TINY_BACKBONE, default_setup, measure_ours, measure_reference, random_source

    sizes = ctx.sizes
    method, variant = params["method"], params["variant"]
    [row] = planned_rows(Job("", "train", params, 0), sizes)
    backbone = TINY_BACKBONE if sizes.tiny_backbone else BackboneConfig(resolution=256)
    setup = default_setup(method, ctx.device, backbone, sizes.train_batch)
    source = random_source(backbone)
    warmup, steps = sizes.train_warmup, sizes.train_steps
    reference = params.get("reference")
    if variant == "defaults":
        reference = measure_reference(setup, source, warmup, steps)
    opt_ins = {"amp": True, "compile": sizes.compile} if variant == "opt-in" else {}

    def missed(result: dict) -> bool:  # profile where the goal is missed, or cannot be judged
        if sizes.always_profiled:
            return f"train/{method}/{variant}" in sizes.always_profiled
        return train_met(method, variant, result, reference) is not True

    ours = measure_ours(
        setup,
        source,
        warmup,
        steps,
        profile_if=missed,
        profile_path=ctx.out / "profiles" / f"train-{method}-{variant}.txt",
        profile_steps=sizes.profile_steps,
        **opt_ins,
    )
    row.values = {"ours": ours, "reference": reference}
    row.ours = f"{ours['images_per_second']:.1f} img/s, {gib(ours['peak_bytes'])}"
    if reference is not None:
        row.reference = f"{reference['images_per_second']:.1f} img/s, {gib(reference['peak_bytes'])}"
        speed = ours["images_per_second"] / reference["images_per_second"]
        row.ratio = f"{speed:.2f}x speed"
        row.values["speed_ratio"] = speed
        if ours["peak_kind"] == reference["peak_kind"] == "device":
            row.values["memory_ratio"] = memory = ours["peak_bytes"] / max(reference["peak_bytes"], 1)
            row.ratio += f", {memory:.2f}x memory"
    row.met = train_met(method, variant, ours, reference)
    row.profile = ours.get("profile")
    notes = [f"{ours['peak_kind']} peak" + ("" if ours["peak_kind"] == "device" else " (memory not judged)")]
    notes.append(f"fused Adam {'on' if ours['fused_adam'] else 'off'}")
    if variant == "opt-in":
        notes.append(f"compile={sizes.compile}, amp=bf16")
        if not sizes.compile:
            notes.append("compile off in --dry (dynamo's tracing alone costs ~10 s of CPU per method)")
    if reference is None:
        notes.append("no reference: the defaults job did not measure one")
    row.note, row.status = "; ".join(notes), "ok"
    return [row]


def inception_folder(ctx: Context) -> tuple[Path, str]:
    """The Inception file's folder and what it is: the real file, else a stand-in made once per run."""
    if ctx.inception:
        return Path(ctx.inception), "real Inception"
    folder = ctx.out / "standins"
    folder.mkdir(parents=True, exist_ok=True)
    if ctx.dry:
        path, what = folder / "tiny" / INCEPTION_FILE, "tiny stand-in network"
        if not path.exists():
            from tests.features.standin import save_standin

            path.parent.mkdir(exist_ok=True)
            save_standin(path.parent)
        return path.parent, what
    path, what = folder / "inception-sized" / INCEPTION_FILE, "Inception v3 architecture with random weights"
    if not path.exists():
        from tests.features.standin import save_inception_sized_standin

        path.parent.mkdir(exist_ok=True)
        save_inception_sized_standin(path.parent)
    return path.parent, what


def run_fid(params: dict, ctx: Context) -> list[Row]:
    import torch

    from benchmark.features import build_extractor
    from benchmark.nets import BackboneConfig, StyledGenerator
    from benchmarks.common import profile_call
    from benchmarks.fid_speed import measure, our_features

    sizes = ctx.sizes
    [row] = planned_rows(Job("", "fid", params, 0), sizes)
    folder, network = inception_folder(ctx)
    device = torch.device(ctx.device)
    torch.manual_seed(0)
    G = StyledGenerator(BackboneConfig(resolution=sizes.fid_resolution)).to(device).eval()
    result = measure(G, folder, sizes.fid_count, sizes.fid_batch, device, fid_dims=sizes.fid_dims)
    rate = result["images_per_second"]
    speed = rate["ours"] / rate["clean-fid"]
    agreement = result["relative_fid_difference"]
    row.values = {**result, "speed_ratio": speed}
    row.ours = f"{rate['ours']:.1f} img/s, FID {result['fid']['ours']:.6g}"
    row.reference = f"{rate['clean-fid']:.1f} img/s, FID {result['fid']['clean-fid']:.6g}"
    row.ratio = f"{speed:.1f}x speed, FIDs differ by {agreement:.1e}"
    row.met = speed >= FID_PATH_SPEED and agreement <= FID_PATH_AGREEMENT
    dims = f"; FIDs on the first {sizes.fid_dims} features" if sizes.fid_dims else ""
    row.note = f"{network}, {sizes.fid_resolution} px random-weight generator, batch {sizes.fid_batch}{dims}"
    if not row.met:
        extractor = build_extractor("inception", device=str(device), path=str(folder))
        count = min(sizes.fid_count, 10 * sizes.fid_batch)
        path = ctx.out / "profiles" / "fid-path.txt"
        features = lambda: our_features(G, extractor, count, sizes.fid_batch, device)  # noqa: E731
        row.profile = str(profile_call(features, device, path))
    row.status = "ok"
    return [row]


def run_metrics(params: dict, ctx: Context) -> list[Row]:
    from benchmarks.common import profile_call
    from benchmarks.metrics_speed import make_features, measure, metric_call, relative_difference

    sizes = ctx.sizes
    rows = {row.key: row for row in planned_rows(Job("", "metrics", params, 0), sizes)}
    small, big = sizes.metric_rows
    for size, n, dtype in (("small", small, "float64"), ("big", big, "float32")):
        for metric in ("fid", "kid", "kmmd", "prdc"):
            row = rows[f"metrics/{n}/{metric}"]
            ours = measure(metric, "ours", n, ctx.device, 0, sizes.metric_dim, dtype)
            peak = ours["peak_device"] if ours["peak_device"] is not None else ours["peak_host"]
            row.ours = f"{ours['seconds']:.3f} s, {gib(peak)}"
            row.values = {"ours": ours}
            if size == "big":
                row.met = ours["seconds"] < BIG_SECONDS and peak < BIG_BYTES
            elif metric != "kmmd":
                reference = measure(metric, "reference", n, ctx.device, 0, sizes.metric_dim, dtype)
                speed = reference["seconds"] / ours["seconds"]
                agreement = relative_difference(ours["value"], reference["value"])
                row.reference = f"{reference['seconds']:.3f} s"
                row.ratio = f"{speed:.1f}x speed, values differ by {agreement:.1e}"
                row.values.update(reference=reference, speed_ratio=speed, relative_difference=agreement)
                row.met = agreement <= METRIC_AGREEMENT and (metric != "prdc" or speed >= PRDC_SPEED)
            device_note = "device peak" if ours["peak_device"] is not None else "host RSS growth"
            row.note = f"{sizes.metric_dim}-d {dtype} features; ours on {ctx.device} ({device_note}), references on CPU"
            if row.met is False:
                call = metric_call(metric, "ours", ctx.device)
                real, fake = make_features(n, 0, sizes.metric_dim, dtype)
                path = ctx.out / "profiles" / f"metrics-{n}-{metric}.txt"
                row.profile = str(profile_call(lambda c=call, r=real, f=fake: c(r, f), ctx.device, path))
            row.status = "ok"
    return list(rows.values())


def run_smoke(params: dict, ctx: Context) -> list[Row]:
    """The stanford-fewshot suite, narrowed, through run_benchmark.py on stand-in files made as the tests make them."""
    import torch
    import yaml

    from benchmark.features.vgg import FILENAME as VGG_FILE
    from tests.datasets.layouts import build_layout
    from tests.features.standin import random_vgg16_state
    from tests.sources.checkpoints import training_checkpoint

    sizes = ctx.sizes
    [row] = planned_rows(Job("", "smoke", params, 0), sizes)
    root = ctx.out / "smoke"
    data = root / "data"
    for dataset in ("stanford_cars", "stanford_dogs"):
        build_layout(dataset, data / dataset)
    checkpoint = root / "stylegan-256px-new.model"
    torch.save(training_checkpoint(), checkpoint)
    inception, network = inception_folder(ctx)
    vgg = ctx.out / "standins" / VGG_FILE
    perceptual = {"bsa", "glo"}  # the methods that load the suite's VGG16
    if not vgg.exists() and (sizes.smoke_methods is None or perceptual & set(sizes.smoke_methods)):
        torch.save(random_vgg16_state(), vgg)

    from benchmark.config import read_suite

    raw = read_suite("stanford-fewshot")  # its extends chain merged in
    raw["targets"] = [t for t in raw["targets"] if t["name"] in params["targets"]]
    for target in raw["targets"]:
        target["classes"], target["shots"] = [0, 1, 2], [1]  # the miniature layouts hold three classes
    if sizes.smoke_methods is not None:
        raw["methods"] = [m for m in raw["methods"] if (m if isinstance(m, str) else m["name"]) in sizes.smoke_methods]
    raw["seeds"] = [0]
    raw["eval"]["prdc_k"] = 3  # four car images: PRDC's k must be below that
    if sizes.smoke_resolution != raw["resolution"]:
        raw["resolution"] = sizes.smoke_resolution
        for source in raw["sources"].values():
            source.setdefault("options", {})["resolution"] = sizes.smoke_resolution
    if sizes.smoke_metrics is not None:
        raw["eval"]["metrics"] = list(sizes.smoke_metrics)
        raw.setdefault("train", {})["eval_at_start"] = False
    suite = root / "stanford-smoke.yaml"
    suite.write_text(yaml.safe_dump(raw, sort_keys=False))
    expected = len(raw["targets"]) * len(raw["methods"])

    results = root / "results"
    command = [sys.executable, str(ROOT / "run_benchmark.py"), "--suite", str(suite), "--budget", "smoke"]
    command += ["--data-root", str(data), "--source-ckpt", str(checkpoint), "--device", ctx.device]
    command += ["--out", str(results), "--no-progress", "--no-report", "--jobs", "1"]
    env = {
        **os.environ,
        "GTB_CACHE_DIR": str(root / "cache"),
        "GTB_INCEPTION_PATH": str(inception),
        "GTB_VGG16_PATH": str(vgg),
    }
    if ctx.dry:
        env["OMP_NUM_THREADS"] = "1"
    limit = params.get("time_limit_s")
    with open(root / "run.log", "w") as log:
        # Stopped short of the job's own limit, so the cells that finished are still counted.
        returncode = run_with_limit(command, log, env, None if limit is None else max(limit - 30, 10))
    finished, bad = 0, []
    for result in sorted(results.glob("runs/*/*/result.json")):
        outcome = json.loads(result.read_text())
        values = outcome.get("metrics") or {}
        if outcome.get("status") == "finished" and values and all(math.isfinite(v) for v in values.values()):
            finished += 1
        else:
            bad.append(result.parent.name)
    row.values = {"cells": expected, "finished": finished, "returncode": returncode, "not_finished": bad}
    row.ours = f"{finished}/{expected} cells finished"
    row.met = returncode == 0 and finished == expected
    methods = "every method" if sizes.smoke_methods is None else ", ".join(sizes.smoke_methods)
    row.note = f"{methods}; targets {', '.join(params['targets'])}; {network}; log: {root / 'run.log'}"
    if bad:
        row.note += f"; not finished: {', '.join(bad)}"
    if returncode is None:
        row.note += f"; the run was stopped at {limit - 30:.0f} s, short of the job's time limit"
    row.status = "ok"
    return [row]


def run_with_limit(command: list[str], log, env: dict | None = None, limit: float | None = None) -> int | None:
    """Run ``command`` (its own process group) with output to ``log``; None if stopped after ``limit`` seconds."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None


def gpu_test_files() -> list[str]:
    """Test files that hold GPU-marked tests (read, not imported: pytest collects only these)."""
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if "pytest.mark.gpu" in path.read_text()
    )


def run_tests(params: dict, ctx: Context) -> list[Row]:
    """``pytest -m gpu`` on the files with GPU-marked tests, stopped short of the job's time limit."""
    [row] = planned_rows(Job("", "tests", params, 0), ctx.sizes)
    files = gpu_test_files()
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-p", "no:cacheprovider", *files]
    log_path = ctx.out / "logs" / "pytest-gpu.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    limit = params.get("time_limit_s")
    with open(log_path, "w") as log:
        returncode = run_with_limit(command, log, None, None if limit is None else max(limit - 15, 10))
    output = log_path.read_text()
    # One line per test in verbose mode, so a run stopped at the time limit still tells what passed.
    outcomes = re.findall(r"^(tests/\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR)", output, flags=re.MULTILINE)
    counts: dict[str, int] = {}
    for _, outcome in outcomes:
        counts[outcome.lower()] = counts.get(outcome.lower(), 0) + 1
    failed = [test for test, outcome in outcomes if outcome in ("FAILED", "ERROR")]
    row.values = {"returncode": returncode, "counts": counts, "files": files, "failed": failed}
    row.ours = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no test ran"
    row.met = returncode == 0 and not failed and counts.get("passed", 0) > 0
    row.note = f"{len(files)} files: {', '.join(files)}; log: {log_path}"
    if failed:
        row.note += f"; failed: {', '.join(failed)}"
    if returncode is None:
        row.note += "; stopped short of the job's time limit"
    row.status = "ok" if outcomes else "failed"
    return [row]


RUNNERS = {
    "environment": run_environment,
    "train": run_train,
    "fid": run_fid,
    "metrics": run_metrics,
    "smoke": run_smoke,
    "tests": run_tests,
}


# --------------------------------------------------------------------------------------------
# The driver


def plan(sections: tuple[str, ...], sizes: Sizes) -> list[Job]:
    """The jobs in the order they run: cheap and essential first, most of the compiled (opt-in) training last."""
    jobs = []
    if "tests" in sections:
        jobs.append(Job("tests", "tests", {}, 150))
    if "metrics" in sections:
        jobs.append(Job("metrics", "metrics", {}, 180))
    if "fid" in sections:
        jobs.append(Job("fid", "fid", {}, 120))

    def opt_in(method: str) -> Job:
        return Job(f"train-{method}-opt-in", "train", {"method": method, "variant": "opt-in"}, 240)

    if "train" in sections:
        jobs += [Job(f"train-{m}", "train", {"method": m, "variant": "defaults"}, 150) for m in TRAIN_METHODS]
        jobs += [opt_in("transfergan"), opt_in("hypermod")]
    if "smoke" in sections:
        jobs.append(Job("smoke", "smoke", {"targets": ["cars10"]}, 240))
    if "train" in sections:
        jobs += [opt_in("freezed"), opt_in("minegan")]  # most of their graphs are transfergan's
    return jobs


def run_isolated(job: Job, ctx: Context, timeout: float) -> dict:
    """Run a job in a fresh Python process (its own CUDA context and memory high-water marks).

    Returns ``{"result": ...}`` or ``{"error": ...}``; a job past ``timeout`` is killed with its children.
    """
    jobs = ctx.out / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    spec, result = jobs / f"{job.name}.json", jobs / f"{job.name}.result.json"
    spec.write_text(json.dumps({"kind": job.kind, "params": job.params, "context": ctx.to_json()}))
    log = ctx.out / "logs" / f"{job.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:  # its own process group: a job past its limit is killed with its children
        returncode = run_with_limit([sys.executable, __file__, "--job", str(spec)], out, None, timeout)
    if returncode is None:
        return {"error": f"killed after {timeout:.0f} s (the job's time limit); log: {log}"}
    if returncode != 0 or not result.exists():
        tail = " | ".join(log.read_text().strip().splitlines()[-3:])
        return {"error": f"exit code {returncode}: {tail[-400:]} (log: {log})"}
    return {"result": json.loads(result.read_text())}


def run_in_process(job: Job, ctx: Context) -> dict:
    try:
        return {"result": _to_json(RUNNERS[job.kind](job.params, ctx))}
    except Exception as exc:  # a job's failure marks its rows; the other jobs still run
        return {"error": f"{type(exc).__name__}: {exc}"}


def _to_json(result) -> dict | list:
    return [dataclasses.asdict(row) for row in result] if isinstance(result, list) else result


def job_main(spec_path: str) -> None:
    """The child side of ``run_isolated``."""
    spec = json.loads(Path(spec_path).read_text())
    ctx = Context.from_json(spec["context"])
    result = _to_json(RUNNERS[spec["kind"]](spec["params"], ctx))
    Path(spec_path).with_suffix(".result.json").write_text(json.dumps(result, default=float))


def new_run_folder(out: Path, kind: str) -> Path:
    """``out/NNNNN-kind``, a new folder per run (never overwritten)."""
    out.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in out.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    folder = out / f"{max(numbers, default=-1) + 1:05d}-{kind}"
    folder.mkdir()
    return folder


def run_checks(ctx: Context, sections: tuple[str, ...], budget_s: float, isolate: bool) -> dict:
    """Every job of ``sections`` within ``budget_s`` seconds; returns the report (environment and rows).

    Isolated (on a GPU), jobs run one after another, each in its own process. In process (``--dry``),
    the two jobs that mostly wait for a subprocess of their own (the tests, the smoke run) run in
    threads beside the others: their numbers mean nothing there, and a loaded CPU gives two
    processes more of its time than one.
    """
    start = time.monotonic()
    deadline = start + budget_s
    probe = Job("environment", "environment", {}, 60)
    environment = run_isolated(probe, ctx, probe.cap_s) if isolate else run_in_process(probe, ctx)
    jobs = plan(sections, ctx.sizes)
    if {"fid", "smoke"} & set(sections):
        inception_folder(ctx)  # made once, before any job needs it
    background = {}
    if not isolate:
        pool = ThreadPoolExecutor(max_workers=2)
        background = {job.name: pool.submit(run_in_process, job, ctx) for job in jobs if job.kind in ("tests", "smoke")}
        pool.shutdown(wait=False)
    rows: list[Row] = []
    references: dict[str, dict] = {}

    def collect(job: Job, outcome: dict) -> None:
        planned = planned_rows(job, ctx.sizes)
        if "error" in outcome:
            for row in planned:
                row.status, row.note = "failed", outcome["error"]
            rows.extend(planned)
            return
        for row in (Row(**raw) for raw in outcome["result"]):
            if row.key.startswith("train/") and row.key.endswith("/defaults"):
                references[row.key.split("/")[1]] = row.values.get("reference")
            rows.append(row)

    for job in jobs:
        if job.name in background:
            continue
        if job.kind == "train" and job.params["variant"] == "opt-in":
            job.params["reference"] = references.get(job.params["method"])
        remaining = deadline - time.monotonic()
        if remaining < 20:
            planned = planned_rows(job, ctx.sizes)
            for row in planned:
                row.note = f"not run: the time budget of {budget_s:.0f} s was spent (--budget-s)"
            rows.extend(planned)
            continue
        began = time.monotonic()
        if isolate:
            job.params["time_limit_s"] = limit = min(job.cap_s, remaining)
            outcome = run_isolated(job, ctx, limit)
        else:
            outcome = run_in_process(job, ctx)
        print(f"[{time.monotonic() - start:5.0f} s] {job.name}: {time.monotonic() - began:.1f} s", flush=True)
        collect(job, outcome)
    for name, future in background.items():
        collect(next(job for job in jobs if job.name == name), future.result())
        print(f"[{time.monotonic() - start:5.0f} s] {name} (in the background): done", flush=True)
    rows.sort(key=table_order)
    return {
        "dry": ctx.dry,
        "device": ctx.device,
        "environment": environment.get("result") or {"error": environment.get("error")},
        "budget_s": budget_s,
        "seconds": time.monotonic() - start,
        "rows": [dataclasses.asdict(row) for row in rows],
    }


def table_order(row: Row) -> tuple:
    """Sections in the issue's order; a method's training rows together, defaults first."""
    section, *rest = row.key.split("/")
    if section == "train":
        return (SECTIONS.index(section), TRAIN_METHODS.index(rest[0]), rest[1] != "defaults")
    return (SECTIONS.index(section), 0, False)


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        f"# GPU check{' (--dry: tiny sizes on a CPU, numbers meaningless)' if report['dry'] else ''}",
        "",
        f"Device: {env.get('device')}; torch {env.get('torch')}; CUDA {env.get('cuda')}; cuDNN {env.get('cudnn')}; "
        f"driver {env.get('driver', '-')}; commit {env.get('git_commit', '')[:12]}"
        f"{' (with uncommitted changes)' if env.get('git_dirty') else ''}; {report['seconds']:.0f} s",
        "",
        "| check | ours | reference | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        met = {True: "met", False: "missed", None: "-"}[row["met"]]
        if row["status"] != "ok":
            met = row["status"]
        cells = [row["check"], row["ours"], row["reference"], row["ratio"], row["goal"] or "-", met]
        lines.append("| " + " | ".join(c.replace("|", "/") or "-" for c in cells) + " |")
    lines += ["", "Notes:", ""]
    for row in report["rows"]:
        extra = f" Profile: {row['profile']}." if row["profile"] else ""
        lines.append(f"- `{row['key']}`: {row['note'] or '-'}.{extra}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry", action="store_true", help="every code path at tiny sizes on the CPU, in this process")
    parser.add_argument("--device", default="cuda", help="the CUDA device to check (ignored with --dry)")
    parser.add_argument("--out", default=str(ROOT / "results" / "gpu_check"), help="a new numbered folder goes here")
    parser.add_argument("--budget-s", type=float, default=None, help=f"time for all jobs (GPU: {DEFAULT_BUDGET_S})")
    parser.add_argument("--inception", default=None, help="the real inception-2015-12-05.pt (file or folder)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--isolate", choices=("auto", "yes", "no"), default="auto",
                        help="one process per job (auto: yes on a GPU, no with --dry)")  # fmt: skip
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        job_main(args.job)
        return 0

    import torch

    if args.dry:
        device, sizes = "cpu", DRY_SIZES
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA device here: run with --dry on a CPU (every code path at tiny sizes)")
        device, sizes = args.device, GPU_SIZES
    inception = args.inception or os.environ.get("GTB_INCEPTION_PATH") or "/tmp"
    inception_path = Path(inception).expanduser()
    folder = inception_path if inception_path.is_dir() else inception_path.parent
    real = None if args.dry or not (folder / INCEPTION_FILE).is_file() else str(folder)
    if args.inception and real is None and not args.dry:
        parser.error(f"--inception: no {INCEPTION_FILE} at {args.inception}")
    out = new_run_folder(Path(args.out), "dry" if args.dry else "cuda")
    ctx = Context(out, device, args.dry, sizes, real)
    isolate = {"yes": True, "no": False, "auto": not args.dry}[args.isolate]
    budget = args.budget_s if args.budget_s is not None else (DEFAULT_BUDGET_S if not args.dry else 3600.0)

    report = run_checks(ctx, tuple(args.only), budget, isolate)
    (out / "table.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "table.md").write_text(markdown(report))
    print(markdown(report))
    print(f"written: {out / 'table.json'}, {out / 'table.md'}")
    return 0 if all(row["status"] == "ok" for row in report["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
