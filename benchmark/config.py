"""Suite YAML -> validated, frozen dataclasses. The one place where configuration is translated.

A suite names its sources, targets, methods, seeds, the training recipe and the evaluation
protocol. Every section is checked once here: an unknown key, a wrong type or a malformed file
is a :class:`BenchmarkError` naming the file and the key. Nothing mutates a config afterwards;
command-line overrides (``--methods``, ``--seeds``, ``--budget``) produce a new config through
``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import BenchmarkError
from benchmark.nets import BackboneConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class TrainConfig:
    """The shared adversarial recipe (METHODS.md): FreezeD / MineGAN / Hyper-Modulation's StyleGAN v1 fine-tuning.

    Args:
        steps: optimisation steps per cell (one step runs every phase of the current stage).
        batch_size: real images per step.
        lr: Adam learning rate; the mapping network uses ``lr * mapping_lr_mult``.
        betas: Adam betas.
        mapping_lr_mult: StyleGAN v1's 0.01 for the mapping network.
        r1_gamma: R1 weight (penalty gamma / 2 * ||grad||^2).
        r1_every: apply R1 every n-th D step, scaled by n (1 = every step, as in the original).
        ema_decay: decay of the generator's moving average used for evaluation.
        ema_rampup: warm the EMA up as min(decay, (1 + t) / (10 + t)) so short runs are not
            dominated by the initial weights; the decay still reaches ``ema_decay``.
        mixing_prob: probability of style mixing per generator call.
        hflip: random horizontal flips of real images (off for digits).
        eval_every: evaluate (and checkpoint) every n steps, and at the end.
        eval_at_start: also evaluate the starting point (the source) at step 0.
        checkpoint_every: checkpoint every n steps (default: eval_every).
        log_every: write the losses to the run log every n steps.
    """

    steps: int = 5000
    batch_size: int = 8
    lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    mapping_lr_mult: float = 0.01
    r1_gamma: float = 10.0
    r1_every: int = 1
    ema_decay: float = 0.999
    ema_rampup: bool = True
    mixing_prob: float = 0.9
    hflip: bool = True
    eval_every: int = 1000
    eval_at_start: bool = True
    checkpoint_every: int | None = None
    log_every: int = 50

    def __post_init__(self):
        _positive(self, "steps", "batch_size", "r1_every", "eval_every", "log_every")
        if not 0 <= self.mixing_prob <= 1 or not 0 <= self.ema_decay < 1:
            raise BenchmarkError("train: mixing_prob must be in [0, 1] and ema_decay in [0, 1)")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation protocol.

    Args:
        n_fake: generated images per evaluation (5,000 in FreezeD / MineGAN).
        batch_size: images per generator / feature-extractor call.
        metrics: any of fid, kid, kmmd, prdc (precision, recall, density, coverage),
            intra_fid (per-class FID, conditional targets), memorization.
        prdc_k: nearest neighbours for PRDC (5, Naeem et al.).
        kid_subsets, kid_subset_size: clean-fid's defaults (100 subsets of up to 1,000).
        grid: sample images per PNG grid.
        seed: seed of the fixed evaluation latents, identical for every cell.
    """

    n_fake: int = 5000
    batch_size: int = 64
    metrics: tuple[str, ...] = ("fid", "kid", "kmmd", "prdc", "intra_fid", "memorization")
    prdc_k: int = 5
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    grid: int = 64
    seed: int = 2024

    def __post_init__(self):
        _positive(self, "n_fake", "batch_size", "prdc_k", "kid_subsets", "kid_subset_size", "grid")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        unknown = set(self.metrics) - set(METRIC_GROUPS)
        if unknown:
            raise BenchmarkError(f"eval.metrics: unknown {sorted(unknown)}; valid: {', '.join(METRIC_GROUPS)}")


# Each metric group and the values it writes (lower or higher is better).
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "fid": ("fid",),
    "kid": ("kid",),
    "kmmd": ("kmmd",),
    "prdc": ("precision", "recall", "density", "coverage"),
    "intra_fid": ("intra_fid",),
    "memorization": ("memorization",),
}
LOWER_IS_BETTER = {"fid", "kid", "kmmd", "intra_fid"}
UNRANKED = {"memorization"}  # a diagnostic: below 1 signals copying, above 1 is not "better"


@dataclass(frozen=True)
class SourceConfig:
    """A source: ``kind`` names a registered loader; the rest are its options (path, resolution, ...)."""

    name: str
    kind: str
    path: str | None = None
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TargetConfig:
    """A target domain: a dataset split, a class subset, and the shot counts to draw.

    Args:
        name: the target's name in tables.
        dataset: a registered dataset loader.
        classes: class subset (names or indices); all classes when omitted.
        conditional: train class-conditional G and D on the classes.
        shots: images per class for the few-shot training sets; ``null`` means all images.
        split: the official split the training images are drawn from.
        eval_split: the split evaluated against (default: the same split, all of its images).
        data_root: where the dataset lies (overridden by ``--data-root``).
        crop: center, bbox or none.
        options: extra loader options.
    """

    name: str
    dataset: str
    classes: tuple | None = None
    conditional: bool = False
    shots: tuple[int | None, ...] = (10,)
    split: str = "train"
    eval_split: str | None = None
    data_root: str | None = None
    crop: str = "center"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodEntry:
    """A method in a suite: the registered name, a table label, and its options.

    ``options`` go to the method's constructor; an option named ``sources`` lists suite source
    names and is resolved to loaded sources (MineGAN's multi-source mode).
    """

    name: str
    label: str
    options: dict = field(default_factory=dict)
    source: str | None = None


@dataclass(frozen=True)
class SuiteConfig:
    """A validated suite. ``perceptual`` names the feature network that perceptual losses (BSA,
    GLO) use: the digits classifier on the toy suite, VGG16 on real ones."""

    name: str
    resolution: int
    image_channels: int
    backbone: BackboneConfig
    sources: dict[str, SourceConfig]
    source: str
    feature_extractor: str
    feature_options: dict
    targets: tuple[TargetConfig, ...]
    methods: tuple[MethodEntry, ...]
    seeds: tuple[int, ...]
    train: TrainConfig
    eval: EvalConfig
    description: str = ""
    budgets: dict = field(default_factory=dict)
    path: str | None = None
    perceptual: str | None = None
    perceptual_options: dict = field(default_factory=dict)
    executor: str | dict | None = None  # where cells run; checked by benchmark.slurm.resolve_executor

    def method(self, label: str) -> MethodEntry:
        for m in self.methods:
            if m.label == label:
                return m
        raise KeyError(label)


# --------------------------------------------------------------------------------------------
# Budgets: named overrides (``--budget smoke``) for any suite.

BUILTIN_BUDGETS: dict[str, dict] = {
    "smoke": {
        "train": {"steps": 4, "batch_size": 4, "eval_every": 2, "log_every": 1},
        "eval": {"n_fake": 48, "batch_size": 16, "grid": 16, "kid_subsets": 5, "kid_subset_size": 16},
        "sources": {"steps": 6, "batch_size": 4},
    },
}


def apply_budget(raw: dict, budget: str) -> dict:
    """Deep-merge a named budget (suite-defined or built-in) into the raw suite dict."""
    budgets = {**BUILTIN_BUDGETS, **(raw.get("budgets") or {})}
    if budget not in budgets:
        raise BenchmarkError(f"unknown budget {budget!r}; valid budgets: {', '.join(sorted(budgets))}")
    overrides = budgets[budget]
    merged = dict(raw)
    for section, values in overrides.items():
        if section == "sources":
            merged["sources"] = {
                name: {**spec, "options": {**(spec.get("options") or {}), **_applicable(spec, values)}}
                for name, spec in (raw.get("sources") or {}).items()
            }
        else:
            merged[section] = {**(raw.get(section) or {}), **values}
    return merged


def _applicable(spec: dict, values: dict) -> dict:
    """Budget overrides only touch sources that the harness pretrains (a checkpoint has no steps)."""
    return values if spec.get("kind", "").startswith("toy") else {}


# --------------------------------------------------------------------------------------------
# Loading


def suite_path(name_or_path: str) -> Path:
    """A suite name (``toy`` -> configs/toy.yaml) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise BenchmarkError(f"suite file {p} does not exist")
        return p
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        raise BenchmarkError(f"unknown suite {name_or_path!r}; shipped suites: {', '.join(shipped_suites())}")
    return candidate


def shipped_suites() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise BenchmarkError(f"malformed YAML in {path}{where}: {problem}") from None
    except OSError as err:
        raise BenchmarkError(f"cannot read {path}: {err.strerror}") from None
    if not isinstance(raw, dict):
        raise BenchmarkError(f"{path}: a suite must be a mapping of sections (name, targets, methods, ...)")
    return raw


def load_suite(
    name_or_path: str,
    *,
    methods: list[str] | None = None,
    seeds: list[int] | None = None,
    budget: str | None = None,
    data_root: str | None = None,
    source_ckpt: str | None = None,
) -> SuiteConfig:
    """Read, override and validate a suite."""
    path = suite_path(name_or_path)
    raw = read_yaml(path)
    if budget:
        raw = apply_budget(raw, budget)
    suite = parse_suite(raw, str(path))
    if methods:
        by_label = {m.label: m for m in suite.methods}
        chosen = []
        for name in methods:
            if name in by_label:
                chosen.append(by_label[name])
            else:
                from methods import METHODS

                METHODS.get(name)  # unknown names raise with the valid list
                chosen.append(MethodEntry(name, name))
        suite = dataclasses.replace(suite, methods=tuple(chosen))
    if seeds:
        suite = dataclasses.replace(suite, seeds=tuple(seeds))
    if data_root:
        suite = dataclasses.replace(
            suite, targets=tuple(dataclasses.replace(t, data_root=data_root) for t in suite.targets)
        )
    # Checkpoints of real sources: --source-ckpt wins, then the suite's path, then $GTB_SOURCE_CKPT.
    sources = {}
    for name, spec in suite.sources.items():
        if not spec.kind.startswith("toy"):
            spec = dataclasses.replace(spec, path=source_ckpt or spec.path or os.environ.get("GTB_SOURCE_CKPT"))
        sources[name] = spec
    return dataclasses.replace(suite, sources=sources)


def parse_suite(raw: dict, where: str = "suite") -> SuiteConfig:
    from benchmark.features import FEATURES
    from datasets import DATASETS
    from methods import METHODS

    _check_keys(raw, where, SUITE_KEYS, required=("name", "targets", "methods"))
    resolution = int(raw.get("resolution", 256))
    channels = int(raw.get("image_channels", 3))
    backbone_raw = dict(raw.get("backbone") or {})
    _check_keys(backbone_raw, f"{where}: backbone", [f.name for f in fields(BackboneConfig)])
    backbone = _build(BackboneConfig, {"resolution": resolution, "image_channels": channels, **backbone_raw}, where)

    sources = {}
    for name, spec in (raw.get("sources") or {}).items():
        spec = dict(spec or {})
        _check_keys(spec, f"{where}: sources.{name}", ("kind", "path", "options"), required=("kind",))
        sources[name] = SourceConfig(name, spec["kind"], spec.get("path"), dict(spec.get("options") or {}))
    default_source = raw.get("source") or (next(iter(sources)) if sources else None)
    if default_source is None:
        raise BenchmarkError(f"{where}: no sources defined")
    if default_source not in sources:
        raise BenchmarkError(f"{where}: source {default_source!r} is not among sources: {', '.join(sources)}")

    fx = _named(raw.get("feature_extractor", "inception"), f"{where}: feature_extractor")
    FEATURES.get(fx["name"])
    perceptual = _named(raw["perceptual"], f"{where}: perceptual") if raw.get("perceptual") else {}
    if perceptual:
        FEATURES.get(perceptual["name"])

    targets = []
    for i, t in enumerate(raw.get("targets") or []):
        t = dict(t or {})
        _check_keys(t, f"{where}: targets[{i}]", [f.name for f in fields(TargetConfig)], required=("name", "dataset"))
        DATASETS.get(t["dataset"])
        shots = t.get("shots", [10])
        t["shots"] = tuple(shots if isinstance(shots, list) else [shots])
        if t.get("classes") is not None:
            t["classes"] = tuple(t["classes"])
        targets.append(_build(TargetConfig, t, f"{where}: targets[{i}]"))
    if not targets:
        raise BenchmarkError(f"{where}: no targets")
    if len({t.name for t in targets}) != len(targets):
        raise BenchmarkError(f"{where}: target names must be unique")

    entries = []
    for i, m in enumerate(raw.get("methods") or []):
        m = {"name": m} if isinstance(m, str) else dict(m or {})
        _check_keys(m, f"{where}: methods[{i}]", ("name", "label", "options", "source"), required=("name",))
        METHODS.get(m["name"])
        named = [m["source"]] if m.get("source") else []
        named += list((m.get("options") or {}).get("sources") or [])
        for source_name in named:
            if source_name not in sources:
                raise BenchmarkError(
                    f"{where}: methods[{i}] uses unknown source {source_name!r}; sources: {', '.join(sources)}"
                )
        entries.append(
            MethodEntry(m["name"], m.get("label") or m["name"], dict(m.get("options") or {}), m.get("source"))
        )
    if len({m.label for m in entries}) != len(entries):
        raise BenchmarkError(f"{where}: method labels must be unique (give variants a 'label')")

    seeds = raw.get("seeds", [0])
    seeds = tuple(int(s) for s in (seeds if isinstance(seeds, list) else [seeds]))
    train = _build(TrainConfig, dict(raw.get("train") or {}), f"{where}: train")
    evaluation = _build(EvalConfig, dict(raw.get("eval") or {}), f"{where}: eval")
    return SuiteConfig(
        name=str(raw["name"]),
        resolution=resolution,
        image_channels=channels,
        backbone=backbone,
        sources=sources,
        source=default_source,
        feature_extractor=fx["name"],
        feature_options=dict(fx.get("options") or {}),
        targets=tuple(targets),
        methods=tuple(entries),
        seeds=seeds,
        train=train,
        eval=evaluation,
        description=str(raw.get("description", "")),
        budgets=dict(raw.get("budgets") or {}),
        path=where,
        perceptual=perceptual.get("name"),
        perceptual_options=dict(perceptual.get("options") or {}),
        executor=raw.get("executor"),
    )


def _named(value, where: str) -> dict:
    """A registry entry given as ``name`` or ``{name: ..., options: {...}}``."""
    value = {"name": value} if isinstance(value, str) else dict(value or {})
    _check_keys(value, where, ("name", "options"), required=("name",))
    return value


SUITE_KEYS = (
    "name",
    "description",
    "resolution",
    "image_channels",
    "backbone",
    "sources",
    "source",
    "feature_extractor",
    "perceptual",
    "targets",
    "methods",
    "seeds",
    "train",
    "eval",
    "budgets",
    "executor",
)


def _check_keys(d: Any, where: str, valid, required=()) -> None:
    if not isinstance(d, dict):
        raise BenchmarkError(f"{where}: expected a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - set(valid))
    if unknown:
        raise BenchmarkError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    missing = [k for k in required if k not in d]
    if missing:
        raise BenchmarkError(f"{where}: missing required key(s) {', '.join(missing)}")


def _build(cls, values: dict, where: str):
    _check_keys(values, where, [f.name for f in fields(cls)])
    try:
        return cls(**values)
    except BenchmarkError as err:
        raise BenchmarkError(f"{where}: {err}") from None
    except (TypeError, ValueError) as err:
        raise BenchmarkError(f"{where}: {err}") from None


def _positive(obj, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise BenchmarkError(f"{name} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------------------------
# Serialisation and hashing


def to_plain(obj: Any) -> Any:
    """Dataclasses, tuples and dicts -> JSON/YAML-safe plain data."""
    if dataclasses.is_dataclass(obj):
        if isinstance(obj, BackboneConfig):
            return obj.to_dict()
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def config_hash(obj: Any, n: int = 8) -> str:
    return hashlib.sha1(json.dumps(to_plain(obj), sort_keys=True).encode()).hexdigest()[:n]
