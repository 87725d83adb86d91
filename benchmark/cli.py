"""Command line: run a suite, list what is registered, write reports, inspect a dataset.

    python run_benchmark.py --suite toy [--methods ...] [--seeds ...] [--device ...] [--out DIR] [--dry-run]
    python run_benchmark.py list
    python run_benchmark.py report --out DIR
    python run_benchmark.py inspect-data DATASET --data-root DIR [--json]

A problem with the user's input is printed as one line, ``error: ...``, with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from benchmark.errors import BenchmarkError

DEFAULT_OUT = "results"
COMMANDS = ("run", "list", "report", "inspect-data")


def default_cache_dir() -> Path:
    """Pretrained toy sources, prepared images and real features: ``$GTB_CACHE_DIR`` or ~/.cache."""
    env = os.environ.get("GTB_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gan-transfer-benchmark"


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _split_list(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_benchmark.py", description="GAN transfer-learning benchmark")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a suite (the default command)")
    run.add_argument("--suite", required=True, help="a shipped suite name (see 'list') or a YAML path")
    run.add_argument("--methods", nargs="+", help="method names or labels (space- or comma-separated)")
    run.add_argument("--seeds", nargs="+", help="seeds (space- or comma-separated)")
    run.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda when available)")
    run.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT}/)")
    run.add_argument("--cache-dir", default=None, help="cache for sources, images, features ($GTB_CACHE_DIR)")
    run.add_argument("--data-root", default=None, help="root folder of the suite's dataset")
    run.add_argument("--source-ckpt", default=None, help="pretrained source checkpoint (real suites)")
    run.add_argument("--budget", default=None, help="a named budget, e.g. 'smoke' for seconds-long runs")
    run.add_argument("--dry-run", action="store_true", help="print the resolved suite and its cells, then exit")
    run.add_argument("--jobs", type=int, default=None, help="cells in parallel (default: one per GPU, or per CPU core)")
    run.add_argument("--retry-failed", action="store_true", help="run failed cells again")
    run.add_argument("--no-report", action="store_true", help="do not write tables at the end")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("-v", "--verbose", action="store_true", help="log to the console too")

    sub.add_parser("list", help="show registered methods, datasets, sources, feature extractors and suites")

    report = sub.add_parser("report", help="write tables and plots from an output folder")
    report.add_argument("--out", default=DEFAULT_OUT, help="the output folder of earlier runs")
    report.add_argument("--suite", default=None, help="only this suite")
    report.add_argument("--select", default="final", choices=("final", "best"), help="which evaluation step")

    inspect = sub.add_parser("inspect-data", help="count images and classes of a dataset on disk")
    inspect.add_argument("dataset")
    inspect.add_argument("--data-root", default=None)
    inspect.add_argument("--split", default="train")
    inspect.add_argument("--classes", nargs="+", default=None)
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"run": cmd_run, "list": cmd_list, "report": cmd_report, "inspect-data": cmd_inspect}[args.command](args)
    except BenchmarkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


def cmd_run(args) -> int:
    from benchmark.config import load_suite, to_plain
    from benchmark.executors import default_jobs, limit_cpu_threads, run_local
    from benchmark.runner import expand_cells
    from benchmark.store import ResultsStore

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    seeds = [int(s) for s in _split_list(args.seeds)] if args.seeds else None
    suite = load_suite(
        args.suite,
        methods=_split_list(args.methods),
        seeds=seeds,
        budget=args.budget,
        data_root=args.data_root,
        source_ckpt=args.source_ckpt,
    )
    device = args.device or default_device()
    cells = expand_cells(suite)
    from benchmark.runner import check_inputs

    if args.dry_run:
        import yaml

        summary = {k: v for k, v in to_plain(suite).items() if k not in ("budgets",)}
        print(yaml.safe_dump(summary, sort_keys=False, default_flow_style=None).rstrip())
        for line in check_inputs(suite):
            print(f"# {line}")
        print(f"# {len(cells)} cells on {device}:")
        for cell in cells:
            print(f"  {cell.cell_id}  [{cell.key.config_hash}]")
        return 0
    _check_device(device)
    check_inputs(suite)  # data, checkpoints and evaluation sizes: one clear error now, not one per cell
    store = ResultsStore(args.out)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    print(f"suite {suite.name}: {len(cells)} cells on {device}; runs under {store.out / 'runs' / suite.name}")
    print(f"caches (sources, images, features) under {cache_dir}")
    jobs = args.jobs or default_jobs(device)
    if device == "cpu":
        # One intra-op thread per worker: small networks gain little from threads, and spinning
        # OpenMP threads stall badly when processes share cores.
        limit_cpu_threads(max(1, (os.cpu_count() or 1) // jobs))
    counts = run_local(
        suite, store, cache_dir, device, jobs, progress=not args.no_progress, retry_failed=args.retry_failed
    )
    store.rebuild_index()
    busy = f", {counts['busy']} running elsewhere (see `status --out {store.out}`)" if counts["busy"] else ""
    print(
        f"finished {counts['finished']}, failed {counts['failed']}, skipped {counts['skipped']} "
        f"(already done){busy}; index: {store.db_path}"
    )
    if not args.no_report:
        from benchmark.report import write_report

        written = write_report(store, suite.name)
        print(f"tables: {store.tables_dir(suite.name)}")
        for path in written:
            print(f"  {path}")
    return 0 if counts["failed"] == 0 else 1


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchmarkError(f"device {device!r} requested but CUDA is not available; use --device cpu")


def cmd_list(args) -> int:
    from benchmark.config import load_suite, shipped_suites
    from benchmark.features import FEATURES
    from benchmark.sources import SOURCES
    from datasets import DATASETS
    from methods import METHODS

    print(f"methods ({len(METHODS)}):")
    for name in METHODS:
        print(f"  {name:<14} {METHODS.get(name).summary}")
    print(f"datasets ({len(DATASETS)}):")
    for name in DATASETS:
        print(f"  {name:<14} {DATASETS.get(name).layout}")
    print(f"sources: {', '.join(SOURCES)}")
    print(f"feature extractors: {', '.join(FEATURES)}")
    print("suites:")
    for name in shipped_suites():
        try:
            description = load_suite(name).description
        except BenchmarkError as err:
            description = f"(invalid: {err})"
        print(f"  {name:<14} {description}")
    return 0


def cmd_report(args) -> int:
    from benchmark.report import write_report
    from benchmark.store import ResultsStore

    out = Path(args.out)
    if not (out / "runs").is_dir():
        raise BenchmarkError(f"no results in {out} (expected run folders under {out / 'runs'}); run a suite first")
    store = ResultsStore(out)
    store.rebuild_index()  # the run folders are the record; cells may still be running
    written = write_report(store, args.suite, select=args.select)
    for path in written:
        print(path)
    return 0


def cmd_inspect(args) -> int:
    from datasets.inspect import format_inspection, inspect_dataset

    report = inspect_dataset(args.dataset, args.data_root, split=args.split, classes=args.classes)
    print(json.dumps(report) if args.json else format_inspection(report))
    return 0
