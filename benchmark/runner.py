"""Suite -> cells -> run folders: the flow of one benchmark, one direction.

A cell is (target, shots, method, seed). Cells are independent: each loads its source and its
few-shot split, trains, evaluates and writes its run folder, which it owns through a lease
(benchmark.lease) so that no two processes ever train one cell. Finished cells are skipped,
interrupted ones resume from their checkpoint, and a diverging or crashing cell is marked
failed in its run folder while the suite goes on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.config import EvalConfig, MethodEntry, SuiteConfig, TargetConfig, TrainConfig, config_hash, to_plain
from benchmark.errors import BenchmarkError, DivergedError, abbreviate, describe
from benchmark.evaluate import Evaluation, Evaluator, check_eval_sizes
from benchmark.features import build_extractor, check_extractor
from benchmark.io import append_jsonl, atomic_write_text, disk_full_error, read_jsonl, write_json
from benchmark.method import (
    METHODS,
    TargetSpec,
    TrainingSet,
    build_method,
    check_backbone,
    named_sources,
    provide_resources,
    uses_perceptual,
)
from benchmark.metrics.registry import METRICS
from benchmark.schedule import Schedule, schedule_for
from benchmark.sources import SOURCES, Source, load_source, trained_by_harness
from benchmark.store import CellKey, ResultsStore
from benchmark.trainer import TrainData, Trainer
from datasets import build_dataset
from datasets.preprocess import PreparedImages, prepare_images
from datasets.splits import few_shot_manifest, manifest_indices, write_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """One unit of work: a method trained on a target's few-shot split with one seed."""

    suite: SuiteConfig
    target: TargetConfig
    shots: int | None
    method: MethodEntry
    seed: int

    @property
    def cell_id(self) -> str:
        shots = "all" if self.shots is None else f"{self.shots}shot"
        return f"{self.target.name}-{shots}-{self.method.label}-s{self.seed}"

    @property
    def source_name(self) -> str:
        """The method's own source, else the target's, else the suite's."""
        return self.method.source or self.target.source or self.suite.source

    def schedule(self) -> Schedule:
        """The method's stages, with this target's options, laid out against the suite's budget (an error
        if one does not fit)."""
        return method_schedule(self.suite, self.method, self.target)

    @property
    def source_names(self) -> set[str]:
        """Every source the cell loads: its own, plus any its method's options name (``Resource.SOURCES``)."""
        return {self.source_name, *named_sources(METHODS.get(self.method.name), self.options)}

    @property
    def options(self) -> dict:
        """The method's options, with the target's overrides for this method (``method_options``)."""
        return options_on(self.method, self.target)

    @property
    def eval(self) -> EvalConfig:
        return self.suite.eval_for(self.target)

    @property
    def train(self) -> TrainConfig:
        """The suite's recipe with the target's and the method entry's own settings (a protocol's iterations
        per data set and method, RICK's batch, ADA for TGAN+ADA): ``SuiteConfig.train_for``."""
        return self.suite.train_for(self.method, self.target)

    def resolved(self) -> dict:
        """Everything that determines this cell's result (its run folder's config.yaml)."""
        s = self.suite
        # A target's source, method options, eval and train overrides are recorded once, where they act.
        target = to_plain(dataclasses.replace(self.target, data_root=None))
        for key in ("source", "method_options", "eval", "train", "method_train"):
            target.pop(key)
        return {
            "suite": s.name,
            "cell": self.cell_id,
            "target": target,
            "shots": self.shots,
            "seed": self.seed,
            # the entry's train settings are recorded once, under "train", where they act
            "method": {
                **{k: v for k, v in to_plain(self.method).items() if k != "train"},
                "options": to_plain(self.options),
            },
            "source": self.source_name,
            "sources": {name: to_plain(s.sources[name]) for name in sorted(self.source_names)},
            "backbone": {"name": s.backbone.name, **s.backbone.to_dict()},  # its recipe is in force under "train"
            "train": to_plain(self.train),
            "schedule": self.schedule().to_plain(),
            "eval": to_plain(self.eval),
            "feature_extractor": {"name": s.feature_extractor, "options": s.feature_options},
            "perceptual": {"name": s.perceptual, "options": s.perceptual_options} if s.perceptual else None,
        }

    @property
    def key(self) -> CellKey:
        return CellKey(self.suite.name, self.cell_id, config_hash(self.resolved()))

    @property
    def index_fields(self) -> dict:
        """The results index's columns known before the cell runs (recorded in its run folder by ``cell_identity``)."""
        return dict(
            target=self.target.name,
            dataset=self.target.dataset,
            shots=self.shots,
            method=self.method.name,
            method_label=self.method.label,
            seed=self.seed,
            target_position=self.suite.targets.index(self.target),
            method_position=self.suite.methods.index(self.method),
            extractor=self.suite.feature_extractor,
            n_fake=self.eval.n_fake,
        )


def method_schedule(suite: SuiteConfig, method: MethodEntry, target: TargetConfig | None = None) -> Schedule:
    """A suite method entry's schedule under the suite's budget, computed without building the method;
    with ``target``, its options and train settings include that target's overrides (``method_options``,
    ``train``, ``method_train``), as its cells' do."""
    options = options_on(method, target) if target else method.options
    train = suite.train_for(method, target)
    return schedule_for(method.label, METHODS.get(method.name), options, train.steps, train.stage_scale)


def options_on(method: MethodEntry, target: TargetConfig) -> dict:
    """A suite method entry's options on one target: the target's ``method_options`` for it win."""
    return {**method.options, **target.method_options.get(method.label, {})}


def check_schedules(suite: SuiteConfig) -> list[str]:
    """Every method's schedule, one line each (raises the one-line error of the first stage that does not fit).

    A target whose options or train settings change a method's schedule (``method_options``, its own
    steps) gets its own line after the method's (targets with the same schedule share one); a method that
    no target runs with the suite's schedule gets a "per target" heading instead of that schedule.
    """
    lines = []
    for method in suite.methods:
        check_backbone(method.name, suite.backbone.name)  # a method that cannot run on it says why, now
        if suite.perceptual is None and uses_perceptual(METHODS.get(method.name)):
            raise BenchmarkError(
                f"method {method.label!r} needs the suite's perceptual network; add `perceptual: vgg16` "
                f"(real suites) or `perceptual: digits-classifier` (the toy's) to suite {suite.name!r}"
            )
        line = method_schedule(suite, method).describe()
        on_targets: dict[str, list[str]] = {}  # targets that share a schedule share its line
        for target in suite.targets:
            on_targets.setdefault(method_schedule(suite, method, target).describe(), []).append(target.name)
        # The suite's schedule first where a target runs it; a method with its own on every target, per target.
        lines.append(line if line in on_targets else f"{method.label}, per target:")
        lines += [f"  on {', '.join(names)}: {own}" for own, names in on_targets.items() if own != line]
    if suite.train.stage_scale != 1:
        lines.insert(
            0, f"stage lengths scaled by {suite.train.stage_scale:g} with the budget ({suite.train.steps} steps)"
        )
    return lines


def target_loader(target: TargetConfig, split: str):
    """The dataset loader of a target's split, with its class subset and loader options."""
    return build_dataset(target.dataset, target.data_root, split=split, classes=target.classes, **target.options)


def check_inputs(suite: SuiteConfig) -> list[str]:
    """Cheap checks that a suite's inputs exist and fit (annotations read, no image decoded, no weights loaded).

    Raises the loaders' one-line errors for a missing data root or layout; a clear error for a class
    with fewer images than the shots asked, for evaluation sets too small for a metric (per class too,
    for conditional targets), and for a pretrained file that is missing or not what it claims (an
    HTML page saved as a checkpoint, say); returns one line per target, source and weights file.
    """
    lines = []
    for target in suite.targets:
        eval_split = target.eval_split or target.split
        loaders = {}
        for split in dict.fromkeys([target.split, eval_split]):
            loader = loaders[split] = target_loader(target, split)
            absent = check_files_present(target, split, loader)
            per_class = class_counts(loader)
            if split == target.split:
                check_shots(target, per_class)
            if split == eval_split:
                check_eval_sizes(
                    len(loader.records()), suite.eval_for(target), per_class if target.conditional else None
                )
            lines.append(
                f"target {target.name}: {len(loader.records())} {target.dataset} images ({split} split), "
                f"{len(loader.class_names())} classes{absent}"
            )
            lines += [f"target {target.name}: {note}" for note in loader.listing_notes()]  # files it skipped, ...
        compared = any(METRICS.get(group).uses_reference for group in suite.eval_for(target).metrics)
        lines += training_share_lines(target, loaders[target.split], loaders[eval_split], compared)
    used = used_sources(suite)
    for spec in (s for s in suite.sources.values() if s.name in used):
        if trained_by_harness(spec.kind):
            lines.append(f"source {spec.name}: pretrained by the harness ({spec.kind})")
        elif spec.path is None:
            raise BenchmarkError(f"source {spec.name!r} ({spec.kind}) needs a checkpoint: pass --source-ckpt PATH")
        elif spec.path.startswith("$"):  # the suite names a variable for it, unset (config.source_paths)
            raise BenchmarkError(
                f"source {spec.name!r} ({spec.kind}) needs a checkpoint: set {spec.path} or pass "
                f"--source-ckpt {spec.name}=PATH"
            )
        elif not Path(spec.path).expanduser().exists():
            raise BenchmarkError(f"source {spec.name!r}: checkpoint {spec.path} not found; pass --source-ckpt PATH")
        else:
            lines.append(f"source {spec.name}: {spec.kind} from {spec.path}{_preflight_source(spec)}")
    return lines + _check_feature_files(suite)


def used_sources(suite: SuiteConfig) -> set[str]:
    """The sources the suite's cells load: each target's (or the suite's), methods' own and those their options
    name; a suite's other sources (a target family left out with --targets) need no checkpoint."""
    used = {t.source or suite.source for t in suite.targets} | {m.source for m in suite.methods if m.source}
    for method in suite.methods:
        for target in suite.targets:
            used |= set(named_sources(METHODS.get(method.name), options_on(method, target)))
    return used


# A few-shot target whose training images are more than this share of some class's reference images
# gets a warning: most of what FID and intra-FID compare that class with is then the training set,
# so they reward copying it (a whole-data-set target scores against its training set by design, as
# GAN papers do, and gets none).
TRAINING_SHARE_WARNING = 0.5


def training_share_lines(target: TargetConfig, train_loader, eval_loader, compared: bool = True) -> list[str]:
    """The expected share of the reference (evaluation) images that are training images, per shot count:
    overall and in the worst class, and a warning line where a class is above ``TRAINING_SHARE_WARNING``
    and the target is ``compared`` with its reference images (a metric group with ``uses_reference``).

    A class's draw of ``shots`` images comes uniformly from its training split, so the expected number of
    them among its reference images is shots x (its training images that are reference images) / (its
    training images); an ``eval_split`` disjoint from the training split gives 0. A training image is a
    reference image when the two splits list the same file, or when the evaluation split holds copies of
    every training image (``holds_split``: a published 10-shot set's full set holds its 10).
    """
    names = train_loader.class_names()
    reference_paths = {r.path for r in eval_loader.records()}
    reference = class_counts(eval_loader)
    copies = eval_loader.holds_split(target.split)
    pool, overlap = dict.fromkeys(names, 0), dict.fromkeys(names, 0)
    for record in train_loader.records():
        pool[names[record.label]] += 1
        overlap[names[record.label]] += copies or record.path in reference_paths
    shown, warnings = [], []
    for shots in target.shots:
        in_reference = {c: min(pool[c], shots or pool[c]) * overlap[c] / pool[c] for c in names if pool[c]}
        per_class = {c: n / reference[c] for c, n in in_reference.items() if reference.get(c)}
        total = sum(in_reference.values()) / max(1, sum(reference.values()))
        worst = max(per_class.values(), default=0.0)
        label = "all images" if shots is None else f"{shots} shots"
        shown.append(f"{total:.0%} at {label} (at most {worst:.0%} of a class)")
        if compared and shots is not None and worst > TRAINING_SHARE_WARNING:
            warnings.append(
                f"warning: target {target.name} at {shots} shots: up to {worst:.0%} of a class's reference images "
                f"are training images (more than {TRAINING_SHARE_WARNING:.0%}), so FID and intra-FID reward copying "
                "them; lower the shots, choose larger classes or score against another split (eval_split)"
            )
    return [f"target {target.name}: training images among the reference images: {', '.join(shown)}", *warnings]


def max_absent(n_images: int) -> int:
    """How many of a target's listed images may be absent before a suite stops: a few (5, or 1% of many)."""
    return max(5, n_images // 100)


def check_files_present(target: TargetConfig, split: str, loader) -> str:
    """Stat every image a target's split lists: more than a few absent stop the suite (a partial copy,
    or another release of the data set whose files are named alike); a few are skipped, and said so."""
    absent = loader.absent_files()
    if not absent:
        return ""
    n = len(loader.records())
    what = f"{len(absent)} of the {n} images listed for target {target.name} ({split} split) are not on disk"
    if len(absent) > max_absent(n):
        raise BenchmarkError(
            f"{what} under {loader.root}, e.g. {abbreviate(absent, 3)}: a partial copy, or another release of "
            f"the data set; complete the copy (inspect-data {target.dataset} lists them)"
        )
    return f"; {len(absent)} listed image(s) absent, skipped: {abbreviate(absent, 3)}"


def class_counts(loader) -> dict[str, int]:
    """Images per class of a loader's split, from its annotations (no image is decoded)."""
    names = loader.class_names()
    counts = dict.fromkeys(names, 0)
    for record in loader.records():
        counts[names[record.label]] += 1
    return counts


def check_shots(target: TargetConfig, per_class: dict[str, int]) -> None:
    """Every class must hold the most shots asked, or the cell would stop when it draws its split."""
    asked = max((s for s in target.shots if s is not None), default=None)
    if asked is None:
        return
    short = [f"{name!r} ({n})" for name, n in per_class.items() if n < asked]
    if short:
        raise BenchmarkError(
            f"target {target.name}: {len(short)} class(es) have fewer images than the {asked} shots asked "
            f"({target.split} split): {abbreviate(short, 5)}; lower shots or choose other classes"
        )


def _preflight_source(spec) -> str:
    """What the source kind's preflight says of its file (its kind, checked without loading weights)."""
    preflight = getattr(SOURCES.get(spec.kind), "preflight", None)
    return f" ({preflight(spec.path)})" if preflight is not None else ""


def _check_feature_files(suite: SuiteConfig) -> list[str]:
    """The weights files of the suite's feature network and, when a method uses it, its perceptual network."""
    wanted = [(suite.feature_extractor, suite.feature_options)]
    if suite.perceptual and any(uses_perceptual(METHODS.get(m.name)) for m in suite.methods):
        wanted.append((suite.perceptual, suite.perceptual_options))
    lines = []
    for name, options in wanted:
        found = check_extractor(name, **options)
        if found is not None:
            lines.append(f"feature network {name}: {found}")
    return lines + _check_metric_files(suite)


def _check_metric_files(suite: SuiteConfig) -> list[str]:
    """The weights files of the evaluated metric groups' own networks (FID conventions' Inceptions, LPIPS)."""
    names = {m for t in suite.targets for m in suite.eval_for(t).metrics} | set(suite.eval.metrics)
    lines, checked = [], set()
    for group in (g for g in METRICS.values() if g.name in names):
        if group.extractor and group.extractor not in checked:
            checked.add(group.extractor)
            lines.append(f"metric {group.name} network {group.extractor}: {check_extractor(group.extractor)}")
        if group.preflight is not None and group.preflight not in checked:
            checked.add(group.preflight)
            lines.append(f"metric {group.name} network: {group.preflight()}")
    return lines


def expand_cells(suite: SuiteConfig) -> list[Cell]:
    """Targets x shots x methods x seeds, in that nesting order."""
    return [
        Cell(suite, target, shots, method, seed)
        for target in suite.targets
        for shots in target.shots
        for method in suite.methods
        for seed in suite.seeds
    ]


class SuiteContext:
    """Per-process caches for a suite: loaded sources, prepared images, the feature extractor."""

    def __init__(self, suite: SuiteConfig, store: ResultsStore, cache_dir: Path, device: str, progress: bool = True):
        self.suite, self.store, self.cache_dir, self.device, self.progress = suite, store, cache_dir, device, progress
        self._sources: dict[str, Source] = {}
        self._images: dict[tuple, PreparedImages] = {}
        self._extractor = None
        self._perceptual = None

    def source(self, name: str) -> Source:
        if name not in self._sources:
            spec = self.suite.sources[name]
            options = dict(spec.options)
            if trained_by_harness(spec.kind):
                options.update(backbone=self.suite.backbone, name=name, progress=self.progress)
                options.setdefault("data_root", self.suite.data_root)  # e.g. MNIST's IDX files
            else:
                options.setdefault("resolution", self.suite.resolution)
            self._sources[name] = load_source(
                spec.kind, spec.path, cache_dir=self.cache_dir, device=self.device, **options
            )
        return self._sources[name]

    def images(self, target: TargetConfig, split: str) -> PreparedImages:
        key = (target.name, split)
        if key not in self._images:
            self._images[key] = prepare_images(
                target_loader(target, split),
                self.suite.resolution,
                self.suite.image_channels,
                crop=target.crop,
                cache_dir=self.cache_dir,
                progress=self.progress,
            )
        return self._images[key]

    def extractor(self):
        if self._extractor is None:
            self._extractor = build_extractor(
                self.suite.feature_extractor, cache_dir=self.cache_dir, device=self.device, **self.suite.feature_options
            )
        return self._extractor

    def perceptual(self):
        """The suite's perceptual network (for methods that declare ``Resource.PERCEPTUAL``)."""
        if self.suite.perceptual is None:
            raise BenchmarkError(f"suite {self.suite.name!r} names no 'perceptual' network, which this method needs")
        if self._perceptual is None:
            self._perceptual = build_extractor(
                self.suite.perceptual, cache_dir=self.cache_dir, device=self.device, **self.suite.perceptual_options
            )
        return self._perceptual


def save_image(images: torch.Tensor, path: Path, **options) -> None:
    """torchvision's ``save_image``, imported when the first image is written: importing torchvision
    imports torch._dynamo (about 2 s of CPU), which a dry run, an input error or a busy cell never needs."""
    from torchvision.utils import save_image

    save_image(images, path, **options)


def _grid(images: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=max(1, int(math.sqrt(len(images)))), normalize=True, value_range=(-1, 1))


class _RunLog:
    """Route the harness's log records to the cell's log.txt while the cell runs.

    INFO records must reach log.txt whatever the root level, so the root logger is lowered to INFO
    while the cell runs; every other root handler without a level of its own (the console's, from
    ``logging.basicConfig``) is held at the old root level meanwhile, so the console shows what it
    showed before (INFO only with ``-v``).
    """

    def __init__(self, path: Path):
        self.handler = logging.FileHandler(path)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setLevel(logging.INFO)
        self._restore: list = []

    def __enter__(self):
        root = logging.getLogger()
        if root.getEffectiveLevel() > logging.INFO:
            old = root.level
            self._restore = [(root, old)]
            for handler in root.handlers:
                if handler.level == logging.NOTSET:
                    self._restore.append((handler, handler.level))
                    handler.setLevel(old)
            root.setLevel(logging.INFO)
        root.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        root = logging.getLogger()
        root.removeHandler(self.handler)
        for obj, level in self._restore:
            obj.setLevel(level)
        self.handler.close()


class Interrupted(BaseException):
    """The cell's process was told to stop (SIGTERM from scancel, a requeue or a time limit).

    A BaseException, like KeyboardInterrupt: it must pass the ``except Exception`` that marks a
    crashing cell failed, since an interrupted cell resumes instead.
    """


def cell_identity(cell: Cell) -> dict:
    """What a run folder's cell.json records: the index's columns known before the cell runs."""
    key = cell.key
    return {
        "suite": key.suite,
        "cell_id": key.cell_id,
        "config_hash": key.config_hash,
        **cell.index_fields,
        "total_steps": cell.schedule().total_steps,
    }


def register_cells(cells: list[Cell], store: ResultsStore) -> None:
    """Create the run folders of cells about to run, with their identity files, so ``status`` lists them."""
    for cell in cells:
        store.folder(cell.key).register(cell_identity(cell), cell.resolved())


def run_cell(cell: Cell, ctx: SuiteContext, retry_failed: bool = False, job: dict | None = None) -> str:
    """Train and evaluate one cell, unless another live process owns it.

    Returns "finished" or "failed" for a cell trained here, "skipped" for one found finished (or
    failed, unless ``retry_failed``) once its lease was taken, and "busy" for one whose lease a
    live process holds. Everything is written into the cell's run folder (see benchmark.runfolder).

    Args:
        cell: the cell.
        ctx: the suite's caches and the output folder.
        retry_failed: train a failed cell again.
        job: the SLURM job running it (``slurm_job``, ``slurm_log``), recorded with its lease and status.
    """
    from benchmark.lease import CellLease
    from benchmark.status import SlurmQueue

    job = dict(job or {})
    folder = ctx.store.folder(cell.key)
    folder.register(cell_identity(cell), cell.resolved())
    if _done(folder, retry_failed):  # checked again under the lease: another process may finish it meanwhile
        return "skipped"
    lease = CellLease.acquire(folder.path, queue_states=SlurmQueue(), **job)
    if lease is None:
        log.warning("cell %s is being trained by another process; leaving it to that one", cell.cell_id)
        return "busy"
    try:
        if _done(folder, retry_failed):
            return "skipped"
        return _run_owned_cell(cell, ctx, folder, lease, job)
    finally:
        lease.release()


def _done(folder, retry_failed: bool) -> bool:
    state = (folder.status() or {}).get("state")
    return state == "finished" or (state == "failed" and not retry_failed)


def _run_owned_cell(cell: Cell, ctx: SuiteContext, folder, lease, job: dict) -> str:
    run_dir, total = folder.path, cell.schedule().total_steps
    started = time.time()
    lease.progress = lambda: (None, total)
    with _RunLog(run_dir / "log.txt"):
        where = f" (SLURM job {job['slurm_job']}, log {job.get('slurm_log')})" if job.get("slurm_job") else ""
        log.info("cell %s -> %s; lease %d%s", cell.cell_id, run_dir, lease.generation, where)
        folder.write_status("running", started=started, owner=lease.owner, total=total, **_job_fields(job))
        try:
            outcome, final = _train_cell(cell, ctx, run_dir, lease)
        except (DivergedError, FloatingPointError) as err:
            log.error("cell %s diverged: %s", cell.cell_id, err)
            _finish(folder, cell.key, lease, job, "failed", started, error=f"diverged: {err}")
            return "failed"
        except BenchmarkError as err:
            _interrupted(folder, lease, job, f"stopped: {err}")
            raise
        except Exception as err:  # a crashing cell must not take the suite down; its traceback is in log.txt
            full = disk_full_error(err, run_dir) if isinstance(err, (OSError, RuntimeError)) else None
            if full is not None:  # e.g. a sample grid on a full disk: resumable, like every other full write
                _interrupted(folder, lease, job, f"stopped: {full}")
                raise full from None
            log.error("cell %s crashed:\n%s", cell.cell_id, traceback.format_exc())  # status shows one line
            _finish(folder, cell.key, lease, job, "failed", started, error=describe(err))
            return "failed"
        except BaseException as err:  # Ctrl-C, SIGTERM, submitit's exit after checkpointing: resume later
            reason = {KeyboardInterrupt: "Ctrl-C", SystemExit: "exited to be requeued"}.get(type(err), str(err))
            log.warning("cell %s interrupted at step %s: %s", cell.cell_id, lease.progress()[0], reason)
            _interrupted(folder, lease, job, reason or type(err).__name__)
            raise
        _finish(folder, cell.key, lease, job, "finished", started, outcome=outcome, final=final)
        return "finished"


def _job_fields(job: dict) -> dict:
    return {"slurm_log": job["slurm_log"]} if job.get("slurm_log") else {}


def _interrupted(folder, lease, job: dict, reason: str) -> None:
    step, total = lease.progress()
    try:
        folder.write_status("interrupted", owner=lease.owner, step=step, total=total, reason=reason, **_job_fields(job))
    except (BenchmarkError, OSError) as err:  # a full disk: the lease's end marks the cell resumable all the same
        log.warning("could not record the interruption in %s: %s", folder.path, err)


def _finish(folder, key, lease, job: dict, status: str, started: float, error=None, outcome=None, final=None):
    """result.json, then status.json: the status is what says the cell is done."""
    result = {"status": status, "cell": key.cell_id, "config_hash": key.config_hash, "error": error}
    result["wall_seconds"] = time.time() - started
    if outcome is not None:
        result.update(outcome)
    if final is not None:
        result["metrics"] = final
    write_json(result, folder.path / "result.json")
    step, total = lease.progress()
    folder.write_status(
        status,
        owner=lease.owner,
        step=outcome["steps"] if outcome else step,
        total=total,
        finished=time.time(),
        error=error,
        **_job_fields(job),
    )


def _train_cell(cell: Cell, ctx: SuiteContext, run_dir: Path, lease=None):
    suite, target = ctx.suite, cell.target
    train_split = ctx.images(target, target.split)
    eval_split = ctx.images(target, target.eval_split or target.split)
    manifest = few_shot_manifest(train_split, cell.shots, cell.seed, dataset=target.dataset)
    write_manifest(manifest, run_dir / "manifest.json")
    train = train_split.subset(manifest_indices(train_split, manifest))
    log.info("%d training images (%s), evaluated against %d", len(train), target.name, len(eval_split))

    source = ctx.source(cell.source_name)
    spec = TargetSpec(
        n_classes=len(train.class_names),
        conditional=target.conditional,
        resolution=suite.resolution,
        image_channels=suite.image_channels,
        n_images=len(train),
    )

    def training_set() -> TrainingSet:  # for a method that prepares something from its images (Resource.TRAINING_SET)
        return TrainingSet(train.images, train.labels, ctx.cache_dir, cell.train.stage_scale, ctx.device)

    options = provide_resources(METHODS.get(cell.method.name), cell.options, ctx.source, ctx.perceptual, training_set)
    torch.manual_seed(cell.seed)
    method = build_method(cell.method.name, source, spec, **options)

    extractor = ctx.extractor()
    evaluator = Evaluator(
        extractor, eval_split, train, cell.eval, target.conditional, source.config.style_dim, ctx.device, ctx.cache_dir
    )
    metrics_path = run_dir / "metrics.jsonl"
    final: dict[str, float] = {}

    def on_evaluate(m, step: int) -> None:
        ev: Evaluation = evaluator(m, step)
        append_jsonl(
            {
                "step": step,
                "metrics": ev.metrics,
                "per_class": ev.per_class,
                "extractor": extractor.name,
                "n_fake": cell.eval.n_fake,
                "n_real": evaluator.n_real,
                "time": time.time(),
            },
            metrics_path,
        )
        _grid(ev.grid, run_dir / "samples" / f"step_{step:06d}.png")
        if ev.nearest_pairs is not None:
            # Each generated sample beside its nearest training image: copying shows at a glance.
            save_image(
                ev.nearest_pairs, run_dir / "nearest_training_images.png", nrow=2, normalize=True, value_range=(-1, 1)
            )
        final.clear()
        final.update(ev.metrics)
        log.info("eval step %d: %s", step, " ".join(f"{k}={v:.4g}" for k, v in ev.metrics.items()))

    data = TrainData(train.images, train.labels)
    trainer = Trainer(
        method,
        data,
        cell.train,
        ctx.device,
        cell.seed,
        run_dir / "checkpoints",
        on_evaluate,
        ctx.progress,
        desc=cell.cell_id,
    )
    if lease is not None:
        lease.progress = lambda: (trainer.step, trainer.schedule.total_steps)  # shown by `status` while it runs
    resumed = trainer.resume()
    if resumed is not None or metrics_path.exists():
        # Rows written after the checkpoint resumed from (or, starting again, every row) are evaluated again.
        rows = [r for r in read_jsonl(metrics_path) if resumed is not None and r["step"] <= resumed]
        atomic_write_text("".join(json.dumps(r) + "\n" for r in rows), metrics_path)
        if rows:
            final.update(rows[-1]["metrics"])
    outcome = dataclasses.asdict(trainer.run())
    extra = method.extra_state()
    if extra:
        write_json(extra, run_dir / "method_state.json")
        outcome["method_state"] = extra  # result.json, so the results index and results.csv carry it too
    return outcome, dict(final)
