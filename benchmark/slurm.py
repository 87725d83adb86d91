"""The SLURM executor: every pending cell one task of a submitit job array.

    python run_benchmark.py --suite stanford --executor slurm --slurm-partition gpu --slurm-time 8:00:00

One job first builds what cells share (sources, prepared images, the feature network) into the
cache folder, which must be on a file system every node sees; the array starts once it has
finished (``--dependency=afterok``), at most ``parallelism`` tasks at a time. Each task trains
one cell, writing only its run folder (benchmark.runfolder) under the cell's lease
(benchmark.lease), so ``status`` and ``report`` read the results while jobs run and two suite
commands never train one cell twice.

The cluster's limits are read first (``cluster_limits``): pending cells beyond ``MaxArraySize`` go
into further arrays, each after the one before, a suite beyond ``MaxSubmitJobs`` is refused before
anything is queued, and a submission that fails midway cancels what it had queued.

Preemption, requeues and time limits use submitit's checkpointing protocol: SLURM signals the
job (``--signal=USR2@<signal_delay_s>`` before the time limit, or at preemption where the
cluster sets ``PreemptParameters=send_user_signal``), submitit calls ``CellJob.checkpoint``,
which hands back the same job, and requeues it; the new incarnation resumes from the cell's
last checkpoint (the trainer checkpoints every ``checkpoint_every`` steps and resumes
bit-identically). A job ended with SIGTERM (``scancel``, ``scontrol requeue``, preemption without
the user signal) records where it stopped and resumes the same way when it, or the next suite
command, runs again. A job that dies any other way leaves its cell ``failed`` with the SLURM log
to read (see benchmark.status).

Options come from, in increasing precedence: the user's config file (``$GTB_CONFIG``, default
``~/.config/gan-transfer-benchmark/config.yaml``), the suite's ``executor:`` section, and the
command line. Both files take the same mapping::

    executor:
      name: slurm            # or local
      partition: gpu
      account: mylab
      time: "8:00:00"        # per job: minutes, HH:MM:SS or D-HH:MM:SS
      gpus: 1                # per job (default: 1 on cuda, 0 on cpu)
      cpus: 8                # per job; also the job's torch threads
      mem_gb: 32
      constraint: a100
      parallelism: 32        # array tasks running at once
      extra: {mail-type: END}    # any other sbatch option
      setup: ["module load cuda/12.1"]   # shell lines run before each job
      images_per_second: 150 # for the dry run's GPU-hours estimate before any cell has run
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmark.errors import BenchmarkError
from benchmark.runner import Cell, Interrupted, SuiteContext, expand_cells, register_cells, run_cell
from benchmark.store import ResultsStore

log = logging.getLogger(__name__)

EXECUTORS = ("local", "slurm")
SBATCH_COMMAND = "python -u -m submitit.core._submit FOLDER"  # what the dry run shows as the job's command
POLL_SECONDS = float(os.environ.get("GTB_SLURM_POLL", 10))


@dataclass(frozen=True)
class SlurmOptions:
    """Resources and settings of each SLURM job.

    Args:
        partition, account, qos, constraint: sbatch's options of the same names (None: the cluster's default).
        time: minutes per job; a cell that needs longer is checkpointed and requeued (``max_timeouts`` times).
        gpus: GPUs per job (None: 1 when cells run on cuda, 0 on a CPU).
        cpus: CPUs per job, and the job's torch and BLAS threads.
        mem_gb: memory per job (None: the cluster's default).
        parallelism: array tasks running at once (submitit's ``slurm_array_parallelism``).
        extra: any other sbatch option, as {"mail-type": "END"}.
        setup: shell lines each job runs first (``module load ...``, ``source venv/bin/activate``).
        images_per_second: the training speed assumed by the dry run's estimate before any cell has run.
        signal_delay_s: seconds between the checkpoint signal and the time limit.
        max_timeouts: how many times a job is requeued after hitting its time limit.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: int = 240
    gpus: int | None = None
    cpus: int = 4
    mem_gb: float | None = None
    constraint: str | None = None
    parallelism: int = 64
    extra: dict = field(default_factory=dict)
    setup: tuple[str, ...] = ()
    images_per_second: float | None = None
    signal_delay_s: int = 120
    max_timeouts: int = 3

    def __post_init__(self):
        object.__setattr__(self, "time", parse_minutes(self.time))
        object.__setattr__(self, "setup", tuple(self.setup))
        object.__setattr__(self, "extra", {str(k): v for k, v in dict(self.extra).items()})
        for name in ("cpus", "parallelism", "time"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BenchmarkError(f"executor: {name} must be a positive integer, got {value!r}")
        if self.gpus is not None and (not isinstance(self.gpus, int) or self.gpus < 0):
            raise BenchmarkError(f"executor: gpus must be a non-negative integer, got {self.gpus!r}")

    def gpus_for(self, device: str) -> int:
        return self.gpus if self.gpus is not None else (1 if device.startswith("cuda") else 0)


EXECUTOR_KEYS = ("name", *(f.name for f in dataclasses.fields(SlurmOptions)))


def parse_minutes(value) -> int:
    """Minutes from an int, "90", "HH:MM:SS", "MM:SS" or "D-HH:MM:SS" (sbatch's formats)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise BenchmarkError(f"executor: time {value!r} is not minutes, HH:MM:SS or D-HH:MM:SS")
    days, a, b, c = (int(g) if g else 0 for g in match.groups())
    if match.group(4) is not None:  # [D-]HH:MM:SS
        hours, minutes, seconds = a, b, c
    elif match.group(3) is not None:  # MM:SS, or D-HH:MM
        hours, minutes, seconds = (a, b, 0) if match.group(1) else (0, a, b)
    else:
        hours, minutes, seconds = (a, 0, 0) if match.group(1) else (0, a, 0)
    return days * 1440 + hours * 60 + minutes + (1 if seconds else 0)


def user_config_path() -> Path:
    env = os.environ.get("GTB_CONFIG")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "gan-transfer-benchmark" / "config.yaml"


def _executor_section(raw, where: str) -> dict:
    if raw is None:
        return {}
    section = {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(section, dict):
        raise BenchmarkError(f"{where}: executor must be a name (local, slurm) or a mapping")
    unknown = sorted(set(section) - set(EXECUTOR_KEYS))
    if unknown:
        raise BenchmarkError(
            f"{where}: executor: unknown key(s) {', '.join(unknown)}; valid: {', '.join(EXECUTOR_KEYS)}"
        )
    if section.get("name", "local") not in EXECUTORS:
        raise BenchmarkError(f"{where}: executor {section['name']!r} unknown; valid: {', '.join(EXECUTORS)}")
    return dict(section)


def read_user_config() -> dict:
    """The ``executor`` section of the user's config file ({} when there is none)."""
    path = user_config_path()
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise BenchmarkError(f"cannot read the user config {path}: {err}") from None
    if not isinstance(raw, dict) or set(raw) - {"executor"}:
        raise BenchmarkError(f"{path}: expected a mapping with one key, executor")
    return _executor_section(raw.get("executor"), str(path))


def resolve_executor(suite_section, cli: dict) -> tuple[str, SlurmOptions]:
    """The executor's name and SLURM options: user config < suite ``executor:`` < command line.

    Args:
        suite_section: the suite's ``executor`` entry (a name or a mapping, or None).
        cli: options given on the command line (None values are not given).
    """
    merged: dict = {}
    for section in (read_user_config(), _executor_section(suite_section, "suite"), _executor_section(
        {k: v for k, v in cli.items() if v is not None and v != {} and v != ()}, "command line")):  # fmt: skip
        extra = {**merged.get("extra", {}), **section.pop("extra", {})}
        merged.update(section)
        merged["extra"] = extra
    name = merged.pop("name", "local")
    return name, SlurmOptions(**merged)


def parse_extra(items: list[str] | None) -> dict:
    """``--slurm-extra key=value`` pairs as a dict."""
    extra = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchmarkError(f"--slurm-extra {item!r}: expected key=value, e.g. mail-type=END")
        extra[key.lstrip("-")] = value
    return extra


# --------------------------------------------------------------------------------------------
# What a job runs


def _code_root() -> Path:
    """The folder holding the ``benchmark`` package this process runs (a checkout or site-packages)."""
    import benchmark

    return Path(benchmark.__file__).resolve().parent.parent


_REQUEUEING = False  # set once submitit has checkpointed and is requeueing this job itself


def _on_sigterm(signum, frame):
    if _REQUEUEING:
        return  # the SIGTERM of submitit's own `scontrol requeue`: it exits right after logging it
    raise Interrupted("SIGTERM: cancelled, requeued or preempted")


def _job_context(suite, out: str, cache_dir: str, device: str) -> SuiteContext:
    from benchmark.executors import limit_cpu_threads

    limit_cpu_threads(int(os.environ.get("SLURM_CPUS_PER_TASK", 1)))
    return SuiteContext(suite, ResultsStore(out), Path(cache_dir), device, progress=False)


class CellJob:
    """One array task: train one cell (resuming it if it has a checkpoint). Picklable for submitit.

    Args:
        cell: the cell.
        out: the output folder (shared by every node).
        cache_dir: the cache folder (shared too).
        device: cuda or cpu, on the compute node.
        retry_failed: train a failed cell again.
    """

    def __init__(self, cell: Cell, out: str, cache_dir: str, device: str, retry_failed: bool = False):
        self.cell, self.out, self.cache_dir, self.device, self.retry_failed = cell, out, cache_dir, device, retry_failed

    def __call__(self) -> str:
        import submitit

        env = submitit.JobEnvironment()
        job = {"slurm_job": env.job_id, "slurm_log": str(env.paths.stderr)}
        # submitit logs SIGTERM and carries on until SIGKILL; stopping now records where the cell was.
        signal.signal(signal.SIGTERM, _on_sigterm)
        ctx = _job_context(self.cell.suite, self.out, self.cache_dir, self.device)
        status = run_cell(self.cell, ctx, self.retry_failed, job)
        if status == "busy":
            print(f"cell {self.cell.cell_id} is held by another live job; this one leaves it", file=sys.stderr)
        return status

    def checkpoint(self, *args, **kwargs):
        """submitit's protocol on the checkpoint signal: requeue this same job.

        The trainer has already written the cell's checkpoint (every ``checkpoint_every`` steps,
        atomically); the requeued job resumes from it and ends with the same metrics.
        """
        import submitit

        global _REQUEUEING
        _REQUEUEING = True
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


class CacheJob:
    """The job before the array: build the sources, images and feature network that cells share."""

    def __init__(self, cells: list[Cell], out: str, cache_dir: str, device: str):
        self.cells, self.out, self.cache_dir, self.device = cells, out, cache_dir, device

    def __call__(self) -> str:
        from benchmark.executors import warm_caches

        warm_caches(_job_context(self.cells[0].suite, self.out, self.cache_dir, self.device), self.cells)
        return "ready"

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


# --------------------------------------------------------------------------------------------
# Submission


def sbatch_parameters(options: SlurmOptions, device: str, name: str) -> dict:
    """submitit's SlurmExecutor parameters (sbatch options, setup lines) for each job."""
    setup = [f"export PYTHONPATH={shlex.quote(str(_code_root()))}${{PYTHONPATH:+:$PYTHONPATH}}", *options.setup]
    params = {
        "job_name": name,
        "time": options.time,
        "cpus_per_task": options.cpus,
        "array_parallelism": options.parallelism,
        "signal_delay_s": options.signal_delay_s,
        "setup": setup,
        "additional_parameters": dict(options.extra),
    }
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(options, key):
            params[key] = getattr(options, key)
    if options.gpus_for(device):
        params["gpus_per_node"] = options.gpus_for(device)
    if options.mem_gb:
        params["mem"] = f"{int(options.mem_gb)}GB" if float(options.mem_gb).is_integer() else f"{options.mem_gb}GB"
    return params


def array_parameters(options: SlurmOptions, device: str, name: str, cache_job: str, after: str | None = None) -> dict:
    """The array's parameters: each job's, and a start after the cache job (cancelled if that one fails)
    and, for the second and later arrays of a suite split by MaxArraySize, after the array before it
    ended, so that no more than ``parallelism`` of the suite's tasks run at once."""
    params = sbatch_parameters(options, device, name)
    params["dependency"] = f"afterok:{cache_job}" + (f",afterany:{after}" if after else "")
    params["additional_parameters"] = {"kill-on-invalid-dep": "yes", **params["additional_parameters"]}
    return params


def sbatch_lines(
    options: SlurmOptions, device: str, name: str, n_jobs: int, folder: Path, after: str | None = None
) -> list[str]:
    """The ``#SBATCH`` and setup lines of the array's script, as submitit writes them."""
    from submitit.slurm.slurm import _make_sbatch_string

    params = array_parameters(options, device, name, "CACHE_JOB_ID", after)
    text = _make_sbatch_string(command=SBATCH_COMMAND, folder=folder / "%j", map_count=n_jobs if n_jobs > 1 else None,
                               **params)  # fmt: skip
    return [line for line in text.splitlines() if line.startswith("#SBATCH") or line in params["setup"]]


# --------------------------------------------------------------------------------------------
# The cluster's limits


@dataclass(frozen=True)
class ClusterLimits:
    """What the cluster lets one user submit, read before anything is submitted.

    Args:
        max_array_size: ``MaxArraySize`` (``scontrol show config``): array indices run from 0 to
            MaxArraySize - 1, so one array holds at most this many tasks. None: unknown.
        max_submit_jobs: ``MaxSubmitJobs`` where set (``scontrol show config``, else the user's
            association, ``sacctmgr``): jobs a user may have queued or running, each array task one.
        queued: the user's jobs queued or running now, array tasks counted one by one.
    """

    max_array_size: int | None = None
    max_submit_jobs: int | None = None
    queued: int = 0

    def arrays(self, n_tasks: int) -> list[int]:
        """The sizes of the arrays ``n_tasks`` cells are split into (one array where the limit allows)."""
        size = self.max_array_size or max(n_tasks, 1)
        return [min(size, n_tasks - start) for start in range(0, n_tasks, size)]

    def check_room(self, n_cells: int) -> None:
        """Refuse, before anything is submitted, a suite whose jobs the cluster would not queue."""
        if self.max_submit_jobs is None:
            return
        room = self.max_submit_jobs - self.queued
        if n_cells + 1 > room:
            raise BenchmarkError(
                f"{n_cells} pending cells need {n_cells + 1} SLURM jobs (a cache job and one array task per cell), "
                f"but the cluster lets you have {self.max_submit_jobs} queued or running (MaxSubmitJobs) and "
                f"{self.queued} are: nothing was submitted; submit at most {max(room - 1, 0)} cells at a time "
                f"(fewer --methods or --seeds, then the same command again: finished cells are skipped)"
            )


def _output(command: list[str]) -> str | None:
    """A SLURM command's standard output, or None when it is not there or fails (then the limit is unknown)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _config_value(text: str, key: str) -> int | None:
    match = re.search(rf"^\s*{key}\s*=\s*(\d+)", text, re.M | re.I)
    return int(match.group(1)) if match else None


def cluster_limits() -> ClusterLimits:
    """The limits of the cluster this process submits to (``ClusterLimits``); unknown ones are None."""
    config = _output(["scontrol", "show", "config"]) or ""
    max_submit = _config_value(config, "MaxSubmitJobs")
    user = os.environ.get("USER") or getpass.getuser()
    if max_submit is None:
        assoc = _output(["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}", "format=MaxSubmit"])
        values = [int(v) for v in (assoc or "").split() if v.strip().isdigit()]
        max_submit = min(values) if values else None
    queued = 0
    if max_submit is not None:
        queued = len((_output(["squeue", "-h", "-r", "-u", user, "-o", "%i"]) or "").split())
    return ClusterLimits(_config_value(config, "MaxArraySize"), max_submit, queued)


def measured_speeds(out: Path, suite: str) -> dict[str, list[float]]:
    """Images per second of the suite's finished cells under ``out``, by method label."""
    from benchmark.runfolder import run_folders

    speeds: dict[str, list[float]] = {}
    for folder in run_folders(out, suite):
        result, identity = folder.result() or {}, folder.identity() or {}
        if result.get("status") == "finished" and result.get("images_per_second"):
            speeds.setdefault(identity.get("method_label"), []).append(float(result["images_per_second"]))
    return speeds


def estimate(cells: list[Cell], out: Path, options: SlurmOptions, device: str) -> str:
    """GPU-hours of training: cells x steps x batch / images per second (measured under ``out``, else configured)."""
    measured = measured_speeds(out, cells[0].suite.name) if cells else {}
    seconds, sources = 0.0, set()
    for cell in cells:
        speed = measured.get(cell.method.label)
        if speed:
            ips = statistics.median(speed)
            sources.add("measured")
        elif options.images_per_second:
            ips = options.images_per_second
            sources.add("configured")
        else:
            return (
                f"# estimate: no GPU-hours without a speed: give --images-per-second (executor.images_per_second), "
                f"or let a few cells of method {cell.method.label!r} finish under {out} and their speed is used"
            )
        seconds += cell.schedule().total_steps * cell.train.batch_size / ips  # hypermod's alignment too
    gpus = options.gpus_for(device)
    hours = seconds / 3600
    return (
        f"# estimate: {len(cells)} cells x {hours / max(len(cells), 1):.3f} h = {hours:.2f} job-hours of training "
        f"({' and '.join(sorted(sources)) or 'no'} images per second; evaluations not counted), "
        f"{hours * gpus:.2f} GPU-hours at {gpus} GPU(s) per job"
    )


def dry_run_lines(suite, out: Path, options: SlurmOptions, device: str, retry_failed: bool) -> list[str]:
    """What ``--dry-run --executor slurm`` prints: the array's sbatch parameters and the estimate.

    Reads ``out`` (which cells are done, how fast finished cells trained) but writes nothing.
    """
    from benchmark.executors import pending_cells

    cells = expand_cells(suite)
    pending = pending_cells(cells, ResultsStore(out, create=False), retry_failed)[0]
    limits = cluster_limits()
    limits.check_room(len(pending))
    arrays = limits.arrays(len(pending))
    folder = Path(out).resolve() / "slurm"
    if len(arrays) <= 1:
        lines = [f"# SLURM: a cache job, then an array of {len(pending)} jobs (one per pending cell):"]
        lines += sbatch_lines(options, device, f"gtb-{suite.name}", len(pending), folder)
    else:
        lines = [
            f"# SLURM: a cache job, then {len(arrays)} arrays of {' + '.join(map(str, arrays))} jobs (one per pending "
            f"cell; the cluster's MaxArraySize is {limits.max_array_size}), each after the one before it:"
        ]
        for k, size in enumerate(arrays):
            lines.append(f"# array {k + 1} of {len(arrays)}:")
            after = f"ARRAY_{k}_JOB_ID" if k else None
            lines += sbatch_lines(options, device, f"gtb-{suite.name}", size, folder, after)
    lines.append(estimate(pending, Path(out), options, device))
    return lines


def _executor(folder: Path, options: SlurmOptions):
    try:
        import submitit
    except ImportError:
        raise BenchmarkError(
            "--executor slurm needs submitit: pip install 'submitit>=1.5,<2' (or the project's [slurm] extra)"
        ) from None
    try:
        executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=options.max_timeouts)
    except RuntimeError as err:
        raise BenchmarkError(f"--executor slurm: {err} (run from a node where sbatch and srun work)") from None
    return executor


def _sbatch_error(err: Exception, cancelled: str = "") -> BenchmarkError:
    lines = [line for line in str(err).splitlines() if line.strip()]
    message = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else type(err).__name__)
    return BenchmarkError(f"sbatch refused the jobs: {message.strip()}{cancelled}")


def _cancel(jobs: list) -> str:
    """Cancel the jobs a failed submission already queued; what was done, for its one-line error."""
    ids = list(dict.fromkeys(str(job.job_id).split("_")[0] for job in jobs))
    if not ids:
        return ""
    try:
        done = subprocess.run(["scancel", *ids], capture_output=True, text=True, timeout=60)
        ok = done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if ok:
        return f"; the job(s) this command had queued ({', '.join(ids)}) were cancelled, none is left behind"
    return f"; cancelling the job(s) this command had queued failed: run scancel {' '.join(ids)}"


def submit(suite, store: ResultsStore, cache_dir: Path, device: str, options: SlurmOptions, retry_failed: bool):
    """Submit the cache job and the array of pending cells; returns (submitted cells, their jobs, counts)."""
    from benchmark.executors import pending_cells

    cells = expand_cells(suite)
    pending, active = pending_cells(cells, store, retry_failed)
    counts = {"submitted": len(pending), "skipped": len(cells) - len(pending) - active, "busy": active}
    if not pending:
        return [], [], counts
    limits = cluster_limits()
    limits.check_room(len(pending))  # before anything is queued
    register_cells(pending, store)
    folder = store.out / "slurm"
    executor = _executor(folder, options)
    out, cache = str(store.out), str(cache_dir)
    queued: list = []  # cancelled if a later submission fails: never a half-submitted suite
    jobs: list = []
    arrays: list[str] = []
    try:
        executor.update_parameters(**sbatch_parameters(options, device, f"gtb-{suite.name}-caches"))
        cache_job = executor.submit(CacheJob(pending, out, cache, device))
        queued.append(cache_job)
        start = 0
        for size in limits.arrays(len(pending)):
            after = arrays[-1] if arrays else None
            params = array_parameters(options, device, f"gtb-{suite.name}", cache_job.job_id, after)
            executor.update_parameters(**params)
            with executor.batch():
                chunk = [executor.submit(CellJob(c, out, cache, device, retry_failed)) for c in pending[start:][:size]]
            queued += chunk
            jobs += chunk
            arrays.append(str(chunk[0].job_id).split("_")[0])
            start += size
    except BaseException as err:  # sbatch's own message (an unknown partition, a too-long time) says what to fix
        cancelled = _cancel(queued)
        if type(err).__name__ in ("FailedJobError", "FailedSubmissionError", "CalledProcessError"):
            raise _sbatch_error(err, cancelled) from None
        if cancelled:
            log.warning("submission stopped (%s)%s", type(err).__name__, cancelled)
        raise
    now = time.time()
    for cell, job in zip(pending, jobs):
        store.folder(cell.key).write_slurm(
            {
                "job_id": job.job_id,
                "cache_job_id": cache_job.job_id,
                "stdout": str(job.paths.stdout),
                "stderr": str(job.paths.stderr),
                "submitted": now,
            }
        )
    return pending, jobs, {**counts, "cache_job": cache_job.job_id, "arrays": arrays}


def wait(store: ResultsStore, cells: list[Cell], progress: bool = True) -> dict[str, int]:
    """Follow the submitted cells in their run folders until none is queued or running; counts by state."""
    from tqdm.auto import tqdm

    from benchmark.status import SlurmQueue, cell_state

    bar = tqdm(total=len(cells), desc="cells finished on SLURM", disable=not progress, dynamic_ncols=True)
    while True:
        queue = SlurmQueue()
        states = [cell_state(store.folder(cell.key), queue) for cell in cells]
        done = sum(s.state in ("finished", "failed") for s in states)
        bar.update(done - bar.n)
        if not any(s.active for s in states):
            break
        time.sleep(POLL_SECONDS)
    bar.close()
    counts = {name: sum(s.state == name for s in states) for name in ("finished", "failed", "pending")}
    return counts
