"""Suite -> cells -> run folders: the flow of one benchmark, one direction.

A cell is (target, shots, method, seed). Cells are independent: each loads its source and its
few-shot split, trains, evaluates and writes its run folder. Finished cells are skipped,
interrupted ones resume from their checkpoint, and a diverging or crashing cell is marked
failed in the index while the suite goes on.
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
from torchvision.utils import save_image

from benchmark.config import EvalConfig, MethodEntry, SuiteConfig, TargetConfig, config_hash, to_plain
from benchmark.errors import BenchmarkError, DivergedError, abbreviate
from benchmark.evaluate import Evaluation, Evaluator, check_eval_sizes
from benchmark.features import build_extractor, check_extractor
from benchmark.io import append_jsonl, atomic_write_text, read_jsonl, write_json, write_yaml
from benchmark.method import METHODS, TargetSpec, build_method, named_sources, provide_resources, uses_perceptual
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
        return {**self.method.options, **self.target.method_options.get(self.method.label, {})}

    @property
    def eval(self) -> EvalConfig:
        return self.suite.eval_for(self.target)

    def resolved(self) -> dict:
        """Everything that determines this cell's result (its run folder's config.yaml)."""
        s = self.suite
        # A target's source, method options and eval overrides are recorded once, where they act.
        target = to_plain(dataclasses.replace(self.target, data_root=None))
        for key in ("source", "method_options", "eval"):
            target.pop(key)
        return {
            "suite": s.name,
            "cell": self.cell_id,
            "target": target,
            "shots": self.shots,
            "seed": self.seed,
            "method": {**to_plain(self.method), "options": to_plain(self.options)},
            "source": self.source_name,
            "sources": {name: to_plain(s.sources[name]) for name in sorted(self.source_names)},
            "backbone": s.backbone.to_dict(),
            "train": to_plain(s.train),
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
        """What the results index records about this cell when it starts (``ResultsStore.start``)."""
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
    with ``target``, its options include that target's overrides (``method_options``), as its cells' do."""
    options = {**method.options, **(target.method_options.get(method.label, {}) if target else {})}
    return schedule_for(method.label, METHODS.get(method.name), options, suite.train.steps, suite.train.stage_scale)


def check_schedules(suite: SuiteConfig) -> list[str]:
    """Every method's schedule, one line each (raises the one-line error of the first stage that does not fit).

    A target whose ``method_options`` change a method's schedule gets its own line after the method's.
    """
    lines = []
    for method in suite.methods:
        line = method_schedule(suite, method).describe()
        lines.append(line)
        for target in suite.targets:
            if method.label in target.method_options:
                own = method_schedule(suite, method, target).describe()
                if own != line:
                    lines.append(f"  on {target.name}: {own}")
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
        for split in dict.fromkeys([target.split, eval_split]):
            loader = target_loader(target, split)
            per_class = class_counts(loader)
            if split == target.split:
                check_shots(target, per_class)
            if split == eval_split:
                check_eval_sizes(
                    len(loader.records()), suite.eval_for(target), per_class if target.conditional else None
                )
            lines.append(
                f"target {target.name}: {len(loader.records())} {target.dataset} images ({split} split), "
                f"{len(loader.class_names())} classes"
            )
    for spec in suite.sources.values():
        if trained_by_harness(spec.kind):
            lines.append(f"source {spec.name}: pretrained by the harness ({spec.kind})")
        elif spec.path is None:
            raise BenchmarkError(f"source {spec.name!r} ({spec.kind}) needs a checkpoint: pass --source-ckpt PATH")
        elif not Path(spec.path).expanduser().exists():
            raise BenchmarkError(f"source {spec.name!r}: checkpoint {spec.path} not found; pass --source-ckpt PATH")
        else:
            lines.append(f"source {spec.name}: {spec.kind} from {spec.path}{_preflight_source(spec)}")
    return lines + _check_feature_files(suite)


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


def run_cell(cell: Cell, ctx: SuiteContext) -> str:
    """Train and evaluate one cell; returns its final status ("finished" or "failed")."""
    key, store = cell.key, ctx.store
    run_dir = store.run_dir(key)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_yaml(cell.resolved(), run_dir / "config.yaml")
    started = time.time()
    with _RunLog(run_dir / "log.txt"):
        log.info("cell %s -> %s", cell.cell_id, run_dir)
        store.start(key, **cell.index_fields, run_dir=str(run_dir))
        try:
            outcome, final = _train_cell(cell, ctx, run_dir)
        except (DivergedError, FloatingPointError) as err:
            log.error("cell %s diverged: %s", cell.cell_id, err)
            _finish(store, key, run_dir, "failed", started, error=f"diverged: {err}")
            return "failed"
        except BenchmarkError:
            raise
        except Exception as err:  # a crashing cell must not take the suite down; its traceback is in log.txt
            log.error("cell %s crashed:\n%s", cell.cell_id, traceback.format_exc())
            _finish(store, key, run_dir, "failed", started, error=f"{type(err).__name__}: {err}")
            return "failed"
        _finish(store, key, run_dir, "finished", started, outcome=outcome, final=final)
        return "finished"


def _finish(store, key, run_dir: Path, status: str, started: float, error=None, outcome=None, final=None):
    fields = {"wall_seconds": time.time() - started, "error": error}
    result = {"status": status, "cell": key.cell_id, "config_hash": key.config_hash, "error": error}
    if outcome is not None:
        fields.update(
            train_seconds=outcome["train_seconds"],
            images_per_second=outcome["images_per_second"],
            trainable_params=outcome["trainable_parameters"],
            steps=outcome["steps"],
        )
        result.update(outcome)
    if final is not None:
        result["metrics"] = final
    store.finish(key, status, **fields)
    write_json(result, run_dir / "result.json")


def _train_cell(cell: Cell, ctx: SuiteContext, run_dir: Path):
    suite, target, key, store = ctx.suite, cell.target, cell.key, ctx.store
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
    options = provide_resources(METHODS.get(cell.method.name), cell.options, ctx.source, ctx.perceptual)
    torch.manual_seed(cell.seed)
    method = build_method(cell.method.name, source, spec, **options)

    extractor = ctx.extractor()
    evaluator = Evaluator(
        extractor, eval_split, train, cell.eval, target.conditional, source.config.style_dim, ctx.device, ctx.cache_dir
    )
    store.start(key, n_real=evaluator.n_real)
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
        store.record_metrics(key, step, ev.metrics)
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
        suite.train,
        ctx.device,
        cell.seed,
        run_dir / "checkpoints",
        on_evaluate,
        ctx.progress,
        desc=cell.cell_id,
    )
    resumed = trainer.resume()
    if resumed is not None:
        rows = [r for r in read_jsonl(metrics_path) if r["step"] <= resumed]
        atomic_write_text("".join(json.dumps(r) + "\n" for r in rows), metrics_path)
        store.forget_metrics_after(key, resumed)
        if rows:
            final.update(rows[-1]["metrics"])
    outcome = trainer.run()
    extra = method.extra_state()
    if extra:
        write_json(extra, run_dir / "method_state.json")
    return dataclasses.asdict(outcome), dict(final)
