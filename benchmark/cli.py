"""Command line: run a suite, list what is registered, write reports, inspect a dataset.

    python run_benchmark.py --suite toy [--methods ...] [--seeds ...] [--device ...] [--out DIR] [--dry-run]
    python run_benchmark.py --suite toy --target-folder DIR --budget smoke   (your own images as the target)
    python run_benchmark.py list
    python run_benchmark.py report --out DIR
    python run_benchmark.py status --out DIR [--suite NAME]
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
COMMANDS = ("run", "list", "report", "status", "inspect-data")


def default_cache_dir() -> Path:
    """Pretrained toy sources, prepared images and real features: ``$GTB_CACHE_DIR`` or ~/.cache."""
    env = os.environ.get("GTB_CACHE_DIR")
    if env:
        return Path(env)
    # An empty XDG_CACHE_HOME counts as unset (the XDG spec), not as the current folder.
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan-transfer-benchmark"


def check_run_folders(out: str, cache_dir: str | None) -> Path:
    """The cache folder, after checking it and ``--out`` can be written (a file, or a read-only file system,
    is one line now rather than a traceback in every worker); nothing is created."""
    from benchmark.io import folder_problem

    problem = folder_problem(out)
    if problem:
        raise BenchmarkError(f"output folder {out} cannot be used: {problem}; choose another with --out")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    problem = folder_problem(cache)
    if problem:
        origin = "--cache-dir" if cache_dir else "$GTB_CACHE_DIR" if os.environ.get("GTB_CACHE_DIR") else "the default"
        raise BenchmarkError(
            f"cache folder {cache} ({origin}) cannot be used: {problem}; pass --cache-dir DIR or set GTB_CACHE_DIR "
            "to a writable folder"
        )
    return cache


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
    run.add_argument(
        "--target-folder",
        default=None,
        metavar="DIR",
        help="your own images as the only target: a folder of images, a folder of class folders, or an LMDB "
        "(all images train and are scored against)",
    )
    run.add_argument(
        "--source-ckpt",
        action="append",
        default=None,
        help="pretrained source checkpoint (real suites); NAME=PATH for one of several sources (repeatable)",
    )
    run.add_argument("--targets", nargs="+", help="only these of the suite's targets (space- or comma-separated)")
    run.add_argument("--budget", default=None, help="a named budget, e.g. 'smoke' for seconds-long runs")
    run.add_argument("--dry-run", action="store_true", help="print the resolved suite and its cells, then exit")
    run.add_argument("--jobs", type=int, default=None, help="cells in parallel (default: one per GPU, or per CPU core)")
    run.add_argument("--retry-failed", action="store_true", help="run failed cells again")
    run.add_argument("--no-report", action="store_true", help="do not write tables at the end")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("-v", "--verbose", action="store_true", help="log to the console too")
    run.add_argument(
        "--executor",
        choices=("local", "slurm"),
        default=None,
        help="where cells run: local processes (default) or a SLURM job array (see README)",
    )
    slurm = run.add_argument_group(
        "SLURM executor (defaults: the suite's and ~/.config/gan-transfer-benchmark/config.yaml's executor: section)"
    )
    slurm.add_argument("--detach", action="store_true", help="submit and exit; follow with 'status --out DIR'")
    slurm.add_argument("--slurm-partition", dest="partition", default=None)
    slurm.add_argument("--slurm-account", dest="account", default=None)
    slurm.add_argument("--slurm-qos", dest="qos", default=None)
    slurm.add_argument("--slurm-time", dest="time", default=None, help="per job: minutes, HH:MM:SS or D-HH:MM:SS")
    slurm.add_argument("--slurm-gpus", dest="gpus", type=int, default=None, help="GPUs per job (default 1 on cuda)")
    slurm.add_argument("--slurm-cpus", dest="cpus", type=int, default=None, help="CPUs (and threads) per job")
    slurm.add_argument("--slurm-mem", dest="mem_gb", type=float, default=None, help="memory per job in GB")
    slurm.add_argument("--slurm-constraint", dest="constraint", default=None)
    slurm.add_argument(
        "--slurm-parallelism", dest="parallelism", type=int, default=None, help="array tasks running at once"
    )
    slurm.add_argument(
        "--slurm-extra",
        dest="extra",
        action="append",
        metavar="KEY=VALUE",
        help="any other sbatch option, e.g. mail-type=END (repeatable)",
    )
    slurm.add_argument(
        "--slurm-setup",
        dest="setup",
        action="append",
        metavar="COMMAND",
        help="a shell line each job runs first, e.g. 'module load cuda' (repeatable)",
    )
    slurm.add_argument(
        "--images-per-second",
        dest="images_per_second",
        type=float,
        default=None,
        help="training speed for the dry run's GPU-hours estimate before any cell has run",
    )

    sub.add_parser("list", help="show registered methods, datasets, sources, feature extractors and suites")

    status = sub.add_parser("status", help="each cell's state (pending, queued, running, finished, failed)")
    status.add_argument("--out", default=DEFAULT_OUT, help="the output folder of a suite command")
    status.add_argument("--suite", default=None, help="only this suite")

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
        commands = {"run": cmd_run, "list": cmd_list, "report": cmd_report, "status": cmd_status}
        return {**commands, "inspect-data": cmd_inspect}[args.command](args)
    except BenchmarkError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


def one_line(message: str) -> str:
    """A message on one line, whatever the exception text it quotes holds (the CLI promises one line)."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def _seeds(values: list[str] | None) -> list[int] | None:
    """``--seeds`` as integers >= 0 (split seeds feed numpy's generators, which refuse negative ones)."""
    if not values:
        return None
    try:
        seeds = [int(s) for s in _split_list(values)]
    except ValueError:
        seeds = [-1]
    if min(seeds) < 0:
        raise BenchmarkError(f"--seeds takes whole numbers >= 0, e.g. --seeds 0 1 2; got {' '.join(values)}")
    return seeds


def cmd_run(args) -> int:
    from benchmark.config import load_suite, to_plain
    from benchmark.executors import cpu_threads_per_worker, default_jobs, limit_cpu_threads, run_local
    from benchmark.runner import expand_cells
    from benchmark.store import ResultsStore

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    seeds = _seeds(args.seeds)
    if args.jobs is not None and args.jobs < 1:  # 0 would silently mean the default, a negative count nothing
        raise BenchmarkError(
            f"--jobs takes a whole number >= 1 (cells run in parallel), e.g. --jobs 2; got {args.jobs}; "
            "leave it out for one per GPU or CPU core"
        )
    suite = load_suite(
        args.suite,
        methods=_split_list(args.methods),
        seeds=seeds,
        budget=args.budget,
        data_root=args.data_root,
        source_ckpt=args.source_ckpt,
        target_folder=args.target_folder,
        targets=_split_list(args.targets),
    )
    executor, slurm_options = _executor(args, suite)
    device = args.device or (_slurm_device(slurm_options) if executor == "slurm" else default_device())
    from benchmark.runner import check_inputs, check_schedules

    schedules = check_schedules(suite)  # a stage that does not fit is an error before anything runs
    cells = expand_cells(suite)
    cache_dir = check_run_folders(args.out, args.cache_dir)

    if args.dry_run:
        import yaml

        summary = {k: v for k, v in to_plain(suite).items() if k not in ("budgets",)}
        print(yaml.safe_dump(summary, sort_keys=False, default_flow_style=None).rstrip())
        try:
            input_lines, input_error = check_inputs(suite), None
        except BenchmarkError as err:  # reported after the plan, which needs no data: see the spans first
            input_lines, input_error = [], err
        for line in input_lines:
            print(f"# {line}")
        from benchmark.dry_run import protocol_summary

        print("\n".join(protocol_summary(suite, cells)))
        print("# stage schedules (steps):")
        for line in schedules:
            print(f"#   {line}")
        print(f"# {len(cells)} cells on {device}:")
        for cell in cells:
            print(f"  {cell.cell_id}  [{cell.key.config_hash}]")
        if executor == "slurm":
            _print_slurm_dry_run(args, suite, slurm_options, device)
        if input_error is not None:
            raise input_error
        return 0
    if executor == "local":
        _check_device(device)  # a SLURM login node need not have the compute nodes' GPUs
    for line in check_inputs(suite):  # data, checkpoints and evaluation sizes: one clear error now, not one per cell
        if line.startswith("warning: "):
            logging.getLogger(__name__).warning(line.removeprefix("warning: "))
    store = ResultsStore(args.out)
    from benchmark.protocol import save_protocol

    save_protocol(store, suite.name, suite.protocol)  # the report puts the protocol's published values beside ours
    if executor == "slurm":
        return _run_on_slurm(args, suite, store, cache_dir, device, slurm_options)
    print(f"suite {suite.name}: {len(cells)} cells on {device}; runs under {store.out / 'runs' / suite.name}")
    print(f"caches (sources, images, features) under {cache_dir}")
    jobs = args.jobs or default_jobs(device)
    if device == "cpu":
        limit_cpu_threads(cpu_threads_per_worker(jobs))
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
        _write_tables(store, suite.name)
    return 0 if counts["failed"] == 0 else 1


def _write_tables(store, suite_name: str) -> None:
    from benchmark.report import write_report

    written = write_report(store, suite_name)
    print(f"tables: {store.tables_dir(suite_name)}")
    for path in written:
        print(f"  {path}")


SLURM_FLAGS = ("partition", "account", "qos", "time", "gpus", "cpus", "mem_gb", "constraint", "parallelism", "setup")


def _executor(args, suite):
    """The executor's name and SLURM options: user config < suite < command line (benchmark.slurm)."""
    from benchmark.slurm import parse_extra, resolve_executor

    cli = {key: getattr(args, key) for key in SLURM_FLAGS}
    cli.update(name=args.executor, extra=parse_extra(args.extra), images_per_second=args.images_per_second)
    return resolve_executor(suite.executor, cli)


def _slurm_device(options) -> str:
    """Cells run on the compute nodes' GPUs unless the jobs ask for none."""
    return "cpu" if options.gpus == 0 else "cuda"


def _print_slurm_dry_run(args, suite, options, device: str) -> None:
    from benchmark.slurm import dry_run_lines

    for line in dry_run_lines(suite, Path(args.out), options, device, args.retry_failed):
        print(line)


def _run_on_slurm(args, suite, store, cache_dir: Path, device: str, options) -> int:
    """Submit the pending cells; unless --detach, follow them to the end and write the tables."""
    from benchmark import slurm

    cells, jobs, counts = slurm.submit(suite, store, cache_dir, device, options, args.retry_failed)
    busy = f", {counts['busy']} running or queued already" if counts["busy"] else ""
    if not cells:
        print(f"nothing to submit: {counts['skipped']} cells done{busy}")
    else:
        array = ", ".join(counts["arrays"])
        print(
            f"submitted {len(cells)} cells as SLURM job {array} after cache job {counts['cache_job']} "
            f"({counts['skipped']} done{busy}); logs under {store.out / 'slurm'}"
        )
        print(f"follow with: python run_benchmark.py status --out {store.out}")
    if args.detach or not cells:
        return 0
    try:
        done = slurm.wait(store, cells, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"stopped following; the jobs go on: python run_benchmark.py status --out {store.out}", file=sys.stderr)
        return 130
    store.rebuild_index()
    print(
        f"finished {done['finished']}, failed {done['failed']}, not finished {done['pending']}; index: {store.db_path}"
    )
    if not args.no_report:
        _write_tables(store, suite.name)
    return 0 if done["failed"] == 0 and done["pending"] == 0 else 1


def cmd_status(args) -> int:
    from benchmark.status import cell_states, format_status
    from benchmark.store import ResultsStore

    out = Path(args.out)
    if not (out / "runs").is_dir():
        raise BenchmarkError(f"no run folders in {out} (expected {out / 'runs'}); run a suite first or pass --out")
    store = ResultsStore(out)
    states = cell_states(out)
    store.rebuild_index(states)
    shown = [s for s in states if args.suite is None or s.identity.get("suite") == args.suite]
    if not shown:
        raise BenchmarkError(f"no cells of suite {args.suite!r} in {out}")
    print(format_status(shown))
    return 0


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchmarkError(f"device {device!r} requested but CUDA is not available; use --device cpu")


def cmd_list(args) -> int:
    from benchmark.config import load_suite, shipped_suites
    from benchmark.features import FEATURES
    from benchmark.method import METHODS
    from benchmark.sources import SOURCES
    from datasets import DATASETS

    print(f"methods ({len(METHODS)}):")
    for name in METHODS:
        print(f"  {name:<14} {METHODS.get(name).summary}")
    print(f"datasets ({len(DATASETS)}):")
    for name in DATASETS:
        loader = DATASETS.get(name)
        where = f" [in --data-root or its {loader.subfolders[0]}/]" if loader.subfolders else ""
        print(f"  {name:<14} {loader.layout}{where}")
        if getattr(loader, "spec", None) is not None:  # a published few-shot set: say where each part comes from
            print(f"  {'':<14} from {loader.homepage}")
    print(f"sources: {', '.join(SOURCES)}")
    print(f"feature extractors: {', '.join(FEATURES)}")
    print("suites:")
    width = max(map(len, shipped_suites()), default=0)
    for name in shipped_suites():
        try:
            description = load_suite(name).description
        except BenchmarkError as err:
            description = f"(invalid: {err})"
        print(f"  {name:<{width}} {description}")
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
