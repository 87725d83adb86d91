"""Suite YAML -> validated, frozen dataclasses. The one place where configuration is translated.

A suite names its sources, targets, methods, seeds, the training recipe and the evaluation
protocol. Every section is checked once here: an unknown key, a wrong type or a malformed file
is a :class:`BenchmarkError` naming the file and the key. Nothing mutates a config afterwards;
command-line overrides (``--methods``, ``--seeds``, ``--budget``) produce a new config through
``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import BenchmarkError
from benchmark.features import FEATURES
from benchmark.io import config_hash, to_plain  # noqa: F401  (re-exported: run folders hash resolved configs)
from benchmark.method import METHODS, Resource, named_sources
from benchmark.metrics.registry import METRICS, PRDC_ZERO_RADII, all_metrics  # noqa: F401  (PRDC_ZERO_RADII re-exported)
from benchmark.nets import backbone_config
from benchmark.protocol import ProtocolConfig, parse_protocol
from benchmark.schedule import check_method_options
from benchmark.sources.base import SOURCES, source_backbone, trained_by_harness
from datasets import DATASETS

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class TrainConfig:
    """The shared adversarial recipe (METHODS.md): FreezeD / MineGAN / Hyper-Modulation's StyleGAN v1 fine-tuning.

    Args:
        steps: optimisation steps per cell inside the budget (one step runs every phase of the
            current stage); a stage that extends the budget (a data-free self-alignment) adds to it.
        batch_size: real images per step.
        lr: Adam learning rate; the mapping network uses ``lr * mapping_lr_mult``.
        betas: Adam betas.
        mapping_lr_mult: StyleGAN v1's 0.01 for the mapping network.
        r1_gamma: R1 weight (penalty gamma / 2 * ||grad||^2).
        r1_every: apply R1 every n-th D step, scaled by n (1 = every step, as in the original).
        lazy_regularization: StyleGAN2's lazy regularization (rosinality stylegan2-pytorch
            train.py): R1 and the path-length penalty take optimizer steps of their own, every
            ``r1_every`` / ``pl_every`` steps, and each Adam's lr and betas are scaled by its
            network's ratio every / (every + 1). Off: R1 joins the D step's loss (StyleGAN v1).
        pl_weight: path-length regularization weight (StyleGAN2's 2; 0 turns it off). Needs
            ``lazy_regularization``.
        pl_every: the path-length step runs every n-th G step, scaled by n (StyleGAN2's 4).
        pl_batch_shrink: it runs on batch_size // n fakes (StyleGAN2's 2).
        pl_decay: update rate of the path lengths' running mean (StyleGAN2's 0.01).
        ema_decay: decay of the generator's moving average used for evaluation, constant from
            step 0 (FreezeD's and MineGAN's ``accumulate``, 0.999).
        ema_rampup: opt-in warm-up of the decay as min(ema_decay, (1 + t) / (10 + t)), for
            training from scratch; with ema_decay 0.999 it reaches the full decay at about step
            9,000. The official fine-tuning codes use none.
        mixing_prob: probability of style mixing per generator call.
        hflip: random horizontal flips of real images (off for digits).
        eval_every: evaluate (and checkpoint) every n steps, and at the end.
        eval_at_start: also evaluate the starting point (the source) at step 0.
        checkpoint_every: checkpoint every n steps (default: eval_every).
        log_every: write the losses to the run log every n steps.
        stage_scale: the factor every method's stage lengths are multiplied by; named budgets set
            it to their steps over the suite's (``--budget smoke``), and the dry run prints it.
        amp: opt-in bfloat16 autocast of each training step (changes the numbers; docs/performance.md).
        compile: opt-in ``torch.compile`` of G's and D's forward: true for the default backend
            (inductor), or a backend's name ("aot_eager" checks the tracing without code generation).
        fused_adam: on a CUDA device, Adam's fused kernel (the same update in one launch); never
            used on a CPU, whose numbers it therefore cannot change.
        cudnn_benchmark: on a CUDA device, let cuDNN time its convolution algorithms and keep the
            fastest (the same convolutions, not bit-reproducible across runs); no effect on a CPU.
        ada: adaptive discriminator augmentation (StyleGAN2-ADA; ``benchmark.augment``): D sees
            every image augmented with a probability p steered toward ``ada_target``. Off by
            default; a suite turns it on for one method entry with ``train: {ada: true}``
            (TGAN+ADA).
        ada_target: the r_t = E[sign(D(real))] that p steers toward (0.6, StyleGAN2-ADA's).
        ada_length: images over which p can move by 1 (500,000: rosinality's ``--ada_length``,
            NVlabs' ``ada_kimg`` 500).
        ada_every: D steps between two moves of p (4: NVlabs' ``ada_interval``).
    """

    steps: int = 5000
    batch_size: int = 8
    lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    mapping_lr_mult: float = 0.01
    r1_gamma: float = 10.0
    r1_every: int = 1
    lazy_regularization: bool = False
    pl_weight: float = 0.0
    pl_every: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    ema_decay: float = 0.999
    ema_rampup: bool = False
    mixing_prob: float = 0.9
    hflip: bool = True
    eval_every: int = 1000
    eval_at_start: bool = True
    checkpoint_every: int | None = None
    log_every: int = 50
    stage_scale: float = 1.0
    amp: bool = False
    compile: bool | str = False
    fused_adam: bool = True
    cudnn_benchmark: bool = True
    ada: bool = False
    ada_target: float = 0.6
    ada_length: int = 500_000
    ada_every: int = 4

    def __post_init__(self):
        _positive(self, "steps", "batch_size", "r1_every", "eval_every", "log_every", "pl_every", "pl_batch_shrink")
        if self.pl_weight < 0 or not 0 <= self.pl_decay <= 1:
            raise BenchmarkError(f"train: pl_weight must be >= 0 and pl_decay in [0, 1], got {self.pl_weight}, "
                                 f"{self.pl_decay}")  # fmt: skip
        if self.pl_weight and not self.lazy_regularization:
            raise BenchmarkError("train: pl_weight needs lazy_regularization: true (StyleGAN2's path-length steps)")
        if not isinstance(self.compile, (bool, str)) or self.compile == "":
            raise BenchmarkError(f"train: compile must be true, false or a torch.compile backend, got {self.compile!r}")
        _positive(self, "ada_length", "ada_every")
        if not 0 < self.ada_target < 1:
            raise BenchmarkError(f"train: ada_target must be in (0, 1), got {self.ada_target!r}")
        for name in ("amp", "fused_adam", "cudnn_benchmark", "lazy_regularization", "ada"):
            if not isinstance(getattr(self, name), bool):
                raise BenchmarkError(f"train: {name} must be true or false, got {getattr(self, name)!r}")
        if not 0 < self.stage_scale <= 1:
            raise BenchmarkError(f"train: stage_scale must be in (0, 1], got {self.stage_scale!r}")
        if not 0 <= self.mixing_prob <= 1 or not 0 <= self.ema_decay < 1:
            raise BenchmarkError("train: mixing_prob must be in [0, 1] and ema_decay in [0, 1)")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    def to_dict(self) -> dict:
        """Plain fields; the ADA settings only when ADA is on, so a run without it resolves (and hashes)
        as it did before ADA existed."""
        plain = {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if not self.ada:
            for name in ADA_FIELDS:
                plain.pop(name)
        return plain


ADA_FIELDS = ("ada", "ada_target", "ada_length", "ada_every")
# What a target, a method entry or a target's ``method_train`` may set under ``train``: a protocol's
# per-data-set or per-method length, batch and evaluation interval (AdAM's and RICK's iterations per
# target, RICK's batch 2 and evaluation every 50), TGAN+ADA's ADA, and the budget's stage scale that goes
# with a length. The rest of the recipe is one for every cell of a suite.
CELL_TRAIN_FIELDS = ("steps", "batch_size", "eval_every", "stage_scale", *ADA_FIELDS)


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation protocol.

    Args:
        n_fake: generated images per evaluation (5,000 in FreezeD / MineGAN).
        batch_size: images per generator / feature-extractor call.
        metrics: groups of the metrics registry (``benchmark.metrics.registry``): fid, kid, kmmd,
            prdc (precision, recall, density, coverage), intra_fid (per-class FID, conditional
            targets), memorization.
        prdc_k: nearest neighbours for PRDC (5, Naeem et al.).
        kid_subsets, kid_subset_size: clean-fid's defaults (100 subsets of up to 1,000).
        grid: sample images per PNG grid.
        seed: seed of the fixed evaluation latents, identical for every cell.
        fid_max_real: real images fid_adam compares with at most (AdAM / RICK: 5,000; a seeded subset).
        intra_lpips_n: generated images intra_lpips clusters (CDC, AdAM: 1,000), the first of the
            fixed evaluation latents (at most ``n_fake``).
        intra_lpips_per_cluster: images kept per cluster (CDC: a random 50; here seeded by ``seed``).
        ppl_samples: latent pairs of ppl (NVIDIA: 50,000).
        ppl_space, ppl_sampling, ppl_crop: NVIDIA's PPL options: "w" or "z", "end" or "full", and
            the face crop (stylegan2-ada's ``ppl2_wend``: w, end, no crop; ``ppl_wend``: with crop).
        preset: the evaluation preset it was built from (``EVAL_PRESETS``: clean, cdc-convention,
            adam-convention), recorded.
    """

    n_fake: int = 5000
    batch_size: int = 64
    metrics: tuple[str, ...] = ("fid", "kid", "kmmd", "prdc", "intra_fid", "memorization")
    prdc_k: int = 5
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    grid: int = 64
    seed: int = 2024
    fid_max_real: int = 5000
    intra_lpips_n: int = 1000
    intra_lpips_per_cluster: int = 50
    ppl_samples: int = 50_000
    ppl_space: str = "w"
    ppl_sampling: str = "end"
    ppl_crop: bool = False
    preset: str = "clean"

    def __post_init__(self):
        _positive(self, "n_fake", "batch_size", "prdc_k", "kid_subsets", "kid_subset_size", "grid")
        _positive(self, "fid_max_real", "intra_lpips_n", "intra_lpips_per_cluster", "ppl_samples")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        unknown = set(self.metrics) - set(METRIC_GROUPS)
        if unknown:
            raise BenchmarkError(f"eval.metrics: unknown {sorted(unknown)}; valid: {', '.join(METRIC_GROUPS)}")
        if self.ppl_space not in ("w", "z") or self.ppl_sampling not in ("end", "full"):
            raise BenchmarkError(
                f"eval.ppl_space must be w or z and eval.ppl_sampling end or full, got "
                f"{self.ppl_space!r} and {self.ppl_sampling!r}"
            )
        if self.preset not in EVAL_PRESETS:
            raise BenchmarkError(f"eval.preset: unknown {self.preset!r}; valid: {', '.join(EVAL_PRESETS)}")

    def to_dict(self) -> dict:
        """As plain data, without the fields added for intra-LPIPS, PPL and the FID presets while they hold
        their defaults: a cell's config hash (its run folder and results) stays what it was before them."""
        plain = {f.name: to_plain(getattr(self, f.name)) for f in fields(self)}
        for name in _EVAL_FIELDS_ADDED_LATER:
            if getattr(self, name) == _EVAL_DEFAULTS[name]:
                del plain[name]
        return plain


_EVAL_FIELDS_ADDED_LATER = (
    "fid_max_real", "intra_lpips_n", "intra_lpips_per_cluster", "ppl_samples", "ppl_space", "ppl_sampling",
    "ppl_crop", "preset",
)  # fmt: skip
_EVAL_DEFAULTS = {f.name: f.default for f in fields(EvalConfig)}


# Named evaluation presets (``eval: {preset: cdc-convention}``): the protocol of a paper family, its settings
# filled in under any the suite (or a budget) sets itself. ``clean`` is this benchmark's default.
# The FID convention is in the metric's name (fid, fid_cdc, fid_adam), so a value always says which.
EVAL_PRESETS: dict[str, dict] = {
    "clean": {},
    # CDC, RSSA, DCL: pytorch-fid on PNGs, 5,000 generated against the whole target set; intra-LPIPS.
    "cdc-convention": {"metrics": ("fid_cdc", "intra_lpips"), "n_fake": 5000},
    # AdAM, RICK: torchvision Inception, 5,000 generated against at most 5,000 reals, every eval step.
    "adam-convention": {"metrics": ("fid_adam", "intra_lpips"), "n_fake": 5000, "fid_max_real": 5000},
}


def apply_eval_preset(raw: dict, where: str) -> dict:
    """An ``eval`` mapping with its ``preset``'s settings under its own (which win); the preset's name kept."""
    preset = raw.get("preset")
    if preset is None:
        return raw
    if preset not in EVAL_PRESETS:
        raise BenchmarkError(f"{where}.preset: unknown {preset!r}; valid: {', '.join(EVAL_PRESETS)}")
    return {**EVAL_PRESETS[preset], **raw}


# Views of the metrics registry, where each metric is registered once: each group and the values it
# writes; diagnostics (recorded with the metrics, explained in a footnote, never a column); directions.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    group.name: tuple(m.name for m in group.metrics if not m.diagnostic) for group in METRICS.values()
}
DIAGNOSTICS = tuple(m.name for m in all_metrics() if m.diagnostic)
LOWER_IS_BETTER = {m.name for m in all_metrics() if m.direction == "lower"}
UNRANKED = {m.name for m in all_metrics() if m.direction is None and not m.diagnostic}


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
        source: the suite source this target's cells start from (default: the suite's ``source``;
            a method's own ``source`` still wins). MineGAN's MNIST protocol pretrains one source
            per held-out digit.
        method_options: per method label, options merged over that method's options for this
            target's cells only (a protocol's per-data-set freezing depths).
        eval: evaluation settings overriding the suite's ``eval`` for this target (e.g. a
            conditional target's sample count, per class).
        train: ``CELL_TRAIN_FIELDS`` settings for every cell of this target (a protocol's
            iterations on this data set).
        method_train: per method label, ``CELL_TRAIN_FIELDS`` settings for that method's cells on
            this target only (RICK's 1,750 Babies iterations where AdAM runs 1,500).
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
    source: str | None = None
    method_options: dict = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    method_train: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodEntry:
    """A method in a suite: the registered name, a table label, and its options.

    ``options`` go to the method's constructor; an option the method declares as
    ``Resource.SOURCES`` lists suite source names, which the runner loads for it. ``train`` sets
    ``CELL_TRAIN_FIELDS`` for this entry's cells only: TGAN+ADA is
    ``{name: transfergan, label: TGAN+ADA, train: {ada: true}}``; RICK's batch is
    ``{name: rick, train: {batch_size: 2}}``.
    """

    name: str
    label: str
    options: dict = field(default_factory=dict)
    source: str | None = None
    train: dict = field(default_factory=dict)


def cell_train(suite_train: TrainConfig, method: MethodEntry, target: TargetConfig | None = None) -> TrainConfig:
    """The train settings of ``method``'s cells on ``target``: the suite's recipe, then the target's
    ``train``, the method entry's ``train`` and the target's ``method_train`` for the entry's label, the
    narrowest last. Without ``target``, the suite's with the entry's.

    Raises:
        BenchmarkError: a merged setting is invalid (``TrainConfig``'s checks).
    """
    layers = [method.train]
    if target is not None:
        layers = [target.train, method.train, target.method_train.get(method.label) or {}]
    merged = {key: value for layer in layers for key, value in layer.items()}
    return dataclasses.replace(suite_train, **merged) if merged else suite_train


@dataclass(frozen=True)
class SuiteConfig:
    """A validated suite. ``perceptual`` names the feature network that perceptual losses (BSA,
    GLO) use: the digits classifier on the toy suite, VGG16 on real ones."""

    name: str
    resolution: int
    image_channels: int
    backbone: Any  # a registered backbone's config (benchmark.nets.BACKBONES)
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
    protocol: ProtocolConfig | None = None
    data_root: str | None = None
    executor: str | dict | None = None  # where cells run; checked by benchmark.slurm.resolve_executor

    def method(self, label: str) -> MethodEntry:
        for m in self.methods:
            if m.label == label:
                return m
        raise KeyError(label)

    def train_for(self, method: MethodEntry, target: TargetConfig | None = None) -> TrainConfig:
        """The train settings of ``method``'s cells on ``target`` (``cell_train``)."""
        return cell_train(self.train, method, target)

    def eval_for(self, target: TargetConfig) -> EvalConfig:
        """The evaluation protocol of ``target``'s cells: the suite's, with the target's overrides."""
        overrides = apply_eval_preset(target.eval, f"targets.{target.name}.eval")
        return dataclasses.replace(self.eval, **overrides) if overrides else self.eval


# --------------------------------------------------------------------------------------------
# Budgets: named overrides (``--budget smoke``) for any suite.

BUILTIN_BUDGETS: dict[str, dict] = {
    # Seconds per cell: every code path, no meaningful numbers.
    "smoke": {
        "train": {"steps": 4, "batch_size": 4, "eval_every": 2, "log_every": 1},
        "eval": {"n_fake": 48, "batch_size": 16, "grid": 16, "kid_subsets": 5, "kid_subset_size": 16},
        "sources": {"steps": 6, "batch_size": 4},
    },
    # A tenth of the suite's steps, evaluated as often (relative to its length) and as fully.
    "quick": {"scale": 0.1},
}
_SCALED_BY_BUDGET = ("steps", "eval_every", "checkpoint_every", "log_every")


def apply_budget(raw: dict, budget: str) -> dict:
    """Deep-merge a named budget (suite-defined or built-in) into the raw suite dict.

    A budget either sets sections outright or gives ``scale``: a fraction of the suite's
    ``train.steps`` (and of its evaluation, checkpoint and log intervals). Either way, when
    ``train.steps`` changes, ``train.stage_scale`` becomes new steps / suite steps, so every
    method's stage lengths shrink by the same factor as the budget.
    """
    budgets = {**BUILTIN_BUDGETS, **(raw.get("budgets") or {})}
    if budget not in budgets:
        raise BenchmarkError(f"unknown budget {budget!r}; valid budgets: {', '.join(sorted(budgets))}")
    overrides = dict(budgets[budget])
    train = dict(raw.get("train") or {})
    suite_steps = int(train.get("steps", TrainConfig.steps))
    scale = overrides.pop("scale", None)
    if scale is not None:
        if not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise BenchmarkError(f"budget {budget!r}: scale must be a number in (0, 1], got {scale!r}")
        defaults = {f.name: f.default for f in fields(TrainConfig)}
        scaled = {}
        for key in _SCALED_BY_BUDGET:
            value = train.get(key, defaults[key])
            if value is not None:
                scaled[key] = max(1, round(value * scale))
        overrides["train"] = {**scaled, **(overrides.get("train") or {})}
    merged = dict(raw)
    for section, values in overrides.items():
        if section == "sources":
            merged["sources"] = {
                name: {**spec, "options": {**(spec.get("options") or {}), **_applicable(spec, values)}}
                for name, spec in (raw.get("sources") or {}).items()
            }
        else:
            merged[section] = {**(raw.get(section) or {}), **values}
    steps = int((merged.get("train") or {}).get("steps", suite_steps))
    if steps != suite_steps and "stage_scale" not in (overrides.get("train") or {}):
        merged["train"] = {**merged["train"], "stage_scale": min(1.0, steps / suite_steps)}
    return merged


def _budget_over_target_eval(raw: dict, budget: str) -> dict:
    """A budget's eval settings also win over a target's own ``eval`` overrides (a smoke run of a
    per-class protocol must not generate 10,000 images per class)."""
    budgets = {**BUILTIN_BUDGETS, **(raw.get("budgets") or {})}
    overridden = set((budgets[budget] or {}).get("eval") or {})
    targets = [
        {**t, "eval": {k: v for k, v in (t.get("eval") or {}).items() if k not in overridden}}
        if isinstance(t, dict) and t.get("eval")
        else t
        for t in raw.get("targets") or []
    ]
    return {**raw, "targets": targets} if "targets" in raw else raw


def _budget_over_cell_train(raw: dict, budget: str) -> dict:
    """A budget reaches the targets' and method entries' own ``train`` too (``CELL_TRAIN_FIELDS``).

    A ``scale`` shortens their steps as it does the suite's. A setting the budget gives outright wins
    over theirs (a smoke run of RICK is 4 steps of the budget's batch); where it replaces their steps,
    their ``stage_scale`` becomes the budget's steps over theirs, as the suite's does in ``apply_budget``.
    """
    spec = {**BUILTIN_BUDGETS, **(raw.get("budgets") or {})}[budget]
    scale, outright = spec.get("scale"), dict(spec.get("train") or {})

    def counted(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    def over(train):
        if not isinstance(train, dict) or not train:
            return train  # absent, or not a mapping: parse_suite refuses the latter in one line
        train = dict(train)
        own = train.get("steps")
        if scale is not None:
            for key in _SCALED_BY_BUDGET:
                if counted(train.get(key)) and key not in outright:
                    train[key] = max(1, round(train[key] * scale))
        for key in outright:
            train.pop(key, None)
        if "steps" in outright and counted(own) and "stage_scale" not in outright:
            train["stage_scale"] = min(1.0, outright["steps"] / own)
        return train

    def over_target(target):
        if not isinstance(target, dict):
            return target
        target = dict(target)
        if "train" in target:
            target["train"] = over(target["train"])
        if isinstance(target.get("method_train"), dict):
            target["method_train"] = {label: over(train) for label, train in target["method_train"].items()}
        return target

    def over_method(method):
        if not isinstance(method, dict) or "train" not in method:
            return method
        return {**method, "train": over(method["train"])}

    out = dict(raw)
    if isinstance(raw.get("targets"), list):
        out["targets"] = [over_target(t) for t in raw["targets"]]
    if isinstance(raw.get("methods"), list):
        out["methods"] = [over_method(m) for m in raw["methods"]]
    return out


def _applicable(spec: dict, values: dict) -> dict:
    """Budget overrides only touch sources that the harness pretrains (a checkpoint has no steps)."""
    return values if trained_by_harness(spec.get("kind")) else {}


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
        nearest = difflib.get_close_matches(str(name_or_path).strip(), shipped_suites(), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(map(repr, nearest))}? " if nearest else ""
        raise BenchmarkError(f"unknown suite {name_or_path!r}; {hint}shipped suites: {', '.join(shipped_suites())}")
    return candidate


def shipped_suites() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> dict:
    """A suite file as data, refusing YAML that would mean something else than it says (see ``SuiteLoader``)."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.load(text, Loader=SuiteLoader)
        literal = yaml.load(text, Loader=yaml.BaseLoader)  # every scalar as written, for messages
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if isinstance(err, MisreadYAML):
            raise BenchmarkError(f"{path}{where}: {problem}") from None
        raise BenchmarkError(f"malformed YAML in {path}{where}: {problem}") from None
    except UnicodeDecodeError:
        raise BenchmarkError(f"cannot read {path}: not a UTF-8 text file") from None
    except OSError as err:
        raise BenchmarkError(f"cannot read {path}: {err.strerror}") from None
    if not isinstance(raw, dict):
        raise BenchmarkError(f"{path}: a suite must be a mapping of sections (name, targets, methods, ...)")
    check_as_written(raw, literal, str(path))
    return raw


# --------------------------------------------------------------------------------------------
# YAML read as written
#
# PyYAML follows YAML 1.1, where unquoted yes/no/on/off are booleans, 010 is octal 8, 1:30 is 90
# (base 60), 1e3 is a string, ~ is null, and a key given twice keeps its last value. A suite
# that lists class folders ``no`` and ``on`` then asks for classes False and True. The loader
# below reads numbers as YAML 1.2 does and refuses the forms nobody means; ``check_as_written``
# refuses a boolean, null or number wherever a name is meant, quoting what was written.


class MisreadYAML(yaml.constructor.ConstructorError):
    """YAML that parses, but into something other than what the file says."""


_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class SuiteLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.1's surprises fixed or refused.

    - ``1e3``, ``1.5e3`` and ``1e-4`` are floats, as in YAML 1.2 and every other tool (PyYAML
      reads them as strings, so ``lr: 1e-4`` reached the optimiser as text);
    - an integer with a leading zero (``010``, octal 8 in YAML 1.1) or in base 60 (``1:30``, 90)
      is an error that says what it would have been read as;
    - a key given twice in one mapping is an error (PyYAML keeps the last one silently).
    """

    def construct_yaml_int(self, node):
        value = super().construct_yaml_int(node)
        digits = node.value.replace("_", "").lstrip("+-")
        if ":" in digits:
            meant = f"the base-60 number {value}: quote it ('{node.value}') if it is a name"
        elif len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
            decimal = f"{'-' if node.value.startswith('-') else ''}{int(digits, 10)}"
            meant = f"the octal number {value}: write {decimal} for the number, or quote it ('{node.value}') for a name"
        else:
            return value
        raise MisreadYAML(None, None, f"{node.value} is read by YAML as {meant}", node.start_mark)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if (key_node.tag, key_node.value) in seen:
                    raise MisreadYAML(
                        None,
                        None,
                        f"the key {key_node.value!r} is given twice in one mapping, and YAML would keep only the last "
                        "one: merge the two",
                        key_node.start_mark,
                    )
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)


SuiteLoader.add_constructor("tag:yaml.org,2002:int", SuiteLoader.construct_yaml_int)
SuiteLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789."))

# Where a suite names something, and what else may stand there. "name": text (a number is kept
# when it reads as written); "class": a class name or index; "optional": a name, or null for the
# default; "count": shots per class, a positive integer or null (all images); "seed": an integer >= 0;
# "flag": a boolean (a quoted "no" is a non-empty string, which Python takes as true).
_EACH, _KEYS = "[*]", "{*}"
_AS_WRITTEN: tuple[tuple[tuple[str, ...], str], ...] = (
    (("name",), "name"),
    (("extends",), "name"),
    (("source",), "optional"),
    (("feature_extractor",), "name"),
    (("feature_extractor", "name"), "name"),
    (("perceptual",), "optional"),
    (("perceptual", "name"), "name"),
    (("sources", _KEYS), "name"),
    (("sources", _EACH, "kind"), "name"),
    (("sources", _EACH, "path"), "optional"),
    (("sources", _EACH, "options", "dataset"), "name"),
    (("sources", _EACH, "options", "classes", _EACH), "class"),
    (("targets", _EACH), "name"),  # a parent's target inherited by name (extends)
    (("targets", _EACH, "name"), "name"),
    (("targets", _EACH, "source"), "optional"),
    (("targets", _EACH, "dataset"), "name"),
    (("targets", _EACH, "classes"), "class"),
    (("targets", _EACH, "classes", _EACH), "class"),
    (("targets", _EACH, "split"), "name"),
    (("targets", _EACH, "eval_split"), "optional"),
    (("targets", _EACH, "data_root"), "optional"),
    (("targets", _EACH, "crop"), "name"),
    (("targets", _EACH, "shots"), "count"),
    (("targets", _EACH, "shots", _EACH), "count"),
    (("methods", _EACH), "name"),
    (("methods", _EACH, "name"), "name"),
    (("methods", _EACH, "label"), "optional"),
    (("methods", _EACH, "source"), "optional"),
    (("seeds",), "seed"),
    (("seeds", _EACH), "seed"),
    (("eval", "metrics"), "name"),
    (("eval", "metrics", _EACH), "name"),
    (("budgets", _KEYS), "name"),
    (("protocol", "name"), "name"),
    (("targets", _EACH, "conditional"), "flag"),
    (("methods", _EACH, "train", "ada"), "flag"),
    (("train", "hflip"), "flag"),
    (("train", "ema_rampup"), "flag"),
    (("train", "eval_at_start"), "flag"),
    (("sources", _EACH, "options", "check_trained"), "flag"),
)


def check_as_written(raw: dict, literal: dict | None = None, where: str = "suite") -> None:
    """Refuse a boolean, null or number where a suite names something, and malformed shots and seeds.

    Args:
        raw: the suite as loaded.
        literal: the same file loaded with every scalar as its text (``yaml.BaseLoader``), so a
            message can quote what was written; None for a suite built in code.
        where: the file, for messages.
    """
    # The source names in a method option that lists suite sources (``Resource.SOURCES``), as any source name.
    source_lists = {
        arg for name in METHODS for arg, kind in METHODS.get(name).resources.items() if kind is Resource.SOURCES
    }
    named = tuple((("methods", _EACH, "options", arg, _EACH), "name") for arg in sorted(source_lists))
    for path, kind in _AS_WRITTEN + named:
        for at, value, text in _scalars_at(raw, literal, path, ""):
            problem = _misread(value, text, kind)
            if problem:
                raise BenchmarkError(f"{where}: {at} {problem}")


def _scalars_at(raw, literal, path: tuple[str, ...], at: str):
    """(where, value, text as written or None) of every scalar at ``path`` (lists and mappings are skipped)."""
    if not path:
        if not isinstance(raw, (dict, list)):
            yield at, raw, literal if isinstance(literal, str) else None
        return
    step, rest = path[0], path[1:]
    if step == _EACH and isinstance(raw, (list, dict)):
        values = list(raw.values()) if isinstance(raw, dict) else raw
        texts = _same_shape(literal, raw)
        texts = list(texts.values()) if isinstance(texts, dict) else texts
        names = [f"{at}.{k}" for k in raw] if isinstance(raw, dict) else [f"{at}[{i}]" for i in range(len(raw))]
        for name, value, text in zip(names, values, texts or [None] * len(values)):
            yield from _scalars_at(value, text, rest, name)
    elif step == _KEYS and isinstance(raw, dict):
        texts = _same_shape(literal, raw)
        for key, text in zip(raw, texts or [None] * len(raw)):
            yield from _scalars_at(key, text, rest, f"{at} key")
    elif isinstance(raw, dict) and step in raw:
        texts = _same_shape(literal, raw)
        text = list(texts.values())[list(raw).index(step)] if texts else None
        yield from _scalars_at(raw[step], text, rest, f"{at}.{step}" if at else step)


def _same_shape(literal, raw):
    """``literal`` when it is the same kind of container with as many entries as ``raw`` (merge keys differ)."""
    return literal if type(literal) is type(raw) and len(literal) == len(raw) else None


def _misread(value, text: str | None, kind: str) -> str | None:
    """What is wrong with ``value`` at a place of ``kind``, or None."""
    written = f"is {text}, which YAML reads as" if text is not None else "was read by YAML as"
    shown = text if text is not None else str(value)
    if kind == "flag":
        return None if isinstance(value, bool) else f"is {value!r}: write true or false, without quotes"
    if isinstance(value, bool):
        if kind in ("count", "seed"):
            return f"{written} the boolean {str(value).lower()}: write a number"
        return f"{written} the boolean {str(value).lower()}: quote it ('{shown}') if it is a name"
    if value is None:
        if kind in ("optional", "count"):
            return None
        return f"{written} null (no value): give a name, quoted if it is ~ or null"
    shown_value = f"{text} (read as {value!r})" if text is not None and text != str(value) else repr(value)
    if kind == "count":
        if isinstance(value, int) and value > 0:
            return None
        return f"is {shown_value}: shots are whole numbers of images per class (or null for all), e.g. [10, 40]"
    if kind == "seed":
        if isinstance(value, int) and value >= 0:
            return None
        return f"is {shown_value}: seeds are whole numbers >= 0, e.g. seeds: [0, 1, 2]"
    if isinstance(value, float):
        return f"{written} the number {value}: quote it ('{shown}') if it is a name"
    if isinstance(value, int) and text is not None and text != str(value):
        return f"{written} the number {value}: quote it ('{text}') if it is a name"
    return None


def read_suite(name_or_path: str | Path) -> dict:
    """A suite's raw mapping with its ``extends`` chain merged in (parents first), before validation.

    ``extends: NAME`` names a suite or fragment under configs/ (``park2023``, ``base/ffhq256``);
    ``extends: PATH.yaml`` is a file, relative to the extending file. The child is deep-merged over
    its parent (:func:`merge_suites`). A missing parent or a cycle is a one-line error.
    """
    return _read_extended(suite_path(str(name_or_path)), ())


def _read_extended(path: Path, chain: tuple[Path, ...]) -> dict:
    raw = read_yaml(path)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str) or not parent:
        raise BenchmarkError(f"{path}: extends must name one suite or YAML file, got {parent!r}")
    parent_path = _parent_path(parent, path)
    seen = (*chain, path.resolve())
    if parent_path.resolve() in seen:
        cycle = " -> ".join(p.name for p in (*seen, parent_path.resolve()))
        raise BenchmarkError(f"{path}: extends forms a cycle: {cycle}")
    try:
        return merge_suites(_read_extended(parent_path, seen), raw)
    except BenchmarkError as err:
        if str(err).startswith(str(path)) or " extends " in str(err):
            raise
        raise BenchmarkError(f"{path}: {err}") from None


def _parent_path(parent: str, child: Path) -> Path:
    if Path(parent).suffix in (".yaml", ".yml"):
        candidate = child.parent / Path(parent).expanduser()
    else:
        candidate = CONFIG_DIR / f"{parent}.yaml"
    if not candidate.is_file():
        raise BenchmarkError(f"{child}: extends {parent!r}, but {candidate} does not exist")
    return candidate


def merge_suites(parent: dict, child: dict) -> dict:
    """``child`` over ``parent``: mappings merge key by key, other values (lists included) replace.

    One exception, so that a suite can reuse a parent's targets without copying them: the child's
    ``targets`` list decides which targets the suite has and in which order, and an entry that
    names a parent target (a bare name, or a mapping with its ``name``) inherits that target's
    settings, overriding only the keys it gives.
    """
    merged = _deep_merge(parent, child)
    if isinstance(child.get("targets"), list) and isinstance(parent.get("targets"), list):
        inherited = {t["name"]: t for t in parent["targets"] if isinstance(t, dict) and "name" in t}
        targets = []
        for entry in child["targets"]:
            name = entry if isinstance(entry, str) else entry.get("name") if isinstance(entry, dict) else None
            base = inherited.get(name) if isinstance(name, str) else None
            if isinstance(entry, str) and base is None:
                raise BenchmarkError(f"target {entry!r} is not a target of the suite this one extends")
            targets.append(entry if base is None else _deep_merge(base, {} if isinstance(entry, str) else entry))
        merged["targets"] = targets
    return merged


def _deep_merge(parent, child):
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for key, value in child.items():
            out[key] = _deep_merge(parent[key], value) if key in parent else value
        return out
    return child


def load_suite(
    name_or_path: str,
    *,
    methods: list[str] | None = None,
    seeds: list[int] | None = None,
    budget: str | None = None,
    data_root: str | None = None,
    source_ckpt: str | list[str] | None = None,
    target_folder: str | None = None,
    targets: list[str] | None = None,
) -> SuiteConfig:
    """Read, override and validate a suite.

    ``target_folder`` replaces the suite's targets by one: that folder, read by the ``folder`` data
    set (``--target-folder``); ``targets`` keeps only the named ones (``--targets``).
    ``source_ckpt`` is one path or several ``NAME=PATH`` (``source_paths``).
    """
    path = suite_path(name_or_path)
    raw = read_suite(path)
    if budget:
        raw = _budget_over_cell_train(_budget_over_target_eval(apply_budget(raw, budget), budget), budget)
    suite = parse_suite(raw, str(path))
    if methods:
        by_label = {m.label: m for m in suite.methods}
        chosen = []
        for name in methods:
            if name in by_label:
                chosen.append(by_label[name])
            else:
                METHODS.get(name)  # unknown names raise with the valid list
                chosen.append(MethodEntry(name, name))
        suite = dataclasses.replace(suite, methods=tuple(chosen))
    if seeds:
        suite = dataclasses.replace(suite, seeds=tuple(seeds))
    if data_root:
        suite = dataclasses.replace(
            suite,
            targets=tuple(dataclasses.replace(t, data_root=data_root) for t in suite.targets),
            data_root=data_root,  # also where harness-pretrained sources find a dataset that needs one
        )
    if target_folder:
        suite = dataclasses.replace(suite, targets=(folder_target(target_folder),))
    if targets:
        by_name = {t.name: t for t in suite.targets}
        unknown = [name for name in targets if name not in by_name]
        if unknown:
            raise BenchmarkError(f"--targets: unknown {', '.join(unknown)}; the suite's targets: {', '.join(by_name)}")
        suite = dataclasses.replace(suite, targets=tuple(by_name[name] for name in dict.fromkeys(targets)))
    return dataclasses.replace(suite, sources=source_paths(suite.sources, source_ckpt))


def source_paths(sources: dict[str, SourceConfig], source_ckpt: str | list[str] | None) -> dict[str, SourceConfig]:
    """The checkpoint of each real source (a source the harness pretrains has none).

    ``--source-ckpt NAME=PATH`` gives source NAME its file. A source whose suite path is a variable
    (``path: $GTB_CHURCH_CKPT``) otherwise reads that variable (kept as written when unset, so the
    preflight names it). Every other source takes a plain ``--source-ckpt PATH``, else the suite's
    path, else ``$GTB_SOURCE_CKPT``.
    """
    given = [source_ckpt] if isinstance(source_ckpt, str) else list(source_ckpt or [])
    named: dict[str, str] = {}
    plain: list[str] = []
    for value in given:
        name, sep, path = value.partition("=")
        if sep and name in sources:
            if not path:
                raise BenchmarkError(f"--source-ckpt {value}: no path after '='; give {name}=PATH")
            named[name] = path
        else:
            plain.append(value)
    if len(plain) > 1:
        raise BenchmarkError(
            f"--source-ckpt: {len(plain)} paths for the same sources ({', '.join(plain)}); give one, "
            f"or one per source as NAME=PATH (sources: {', '.join(sources)})"
        )
    resolved = {}
    for name, spec in sources.items():
        if not trained_by_harness(spec.kind):
            variable = spec.path[1:] if spec.path and spec.path.startswith("$") else None
            if name in named:
                path = named[name]
            elif variable:
                path = os.environ.get(variable) or spec.path
            else:
                # An empty variable is an unset one (a shell's `export GTB_SOURCE_CKPT=`), not the current folder.
                path = (plain[0] if plain else None) or spec.path or os.environ.get("GTB_SOURCE_CKPT") or None
            spec = dataclasses.replace(spec, path=path)
        resolved[name] = spec
    return resolved


def folder_target(path: str) -> TargetConfig:
    """A user's own folder as a suite's target: all its images train (they are the few shots) and are
    the evaluation set, unconditional; named after the folder."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise BenchmarkError(
            f"--target-folder {path} {problem}: pass a folder of images (one class), a folder of class "
            "folders, or an LMDB folder written by prepare_data.py"
        )
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).strip("-.") or "folder"
    return TargetConfig(name=name, dataset="folder", shots=(None,), data_root=str(folder))


def parse_suite(raw: dict, where: str = "suite") -> SuiteConfig:
    _check_keys(raw, where, SUITE_KEYS, required=("name", "targets", "methods"))
    check_as_written(raw, None, where)  # read_yaml ran it with the file's text; this covers suites built in code
    _check_shapes(raw, where)
    resolution = int(raw.get("resolution", 256))
    channels = int(raw.get("image_channels", 3))
    sources = {}
    for name, spec in (raw.get("sources") or {}).items():
        spec = _mapping(spec)
        _check_keys(spec, f"{where}: sources.{name}", ("kind", "path", "options"), required=("kind",))
        SOURCES.get(spec["kind"])
        sources[name] = SourceConfig(name, spec["kind"], spec.get("path"), dict(spec.get("options") or {}))
    default_source = raw.get("source") or (next(iter(sources)) if sources else None)
    if default_source is None:
        raise BenchmarkError(f"{where}: no sources defined")
    if default_source not in sources:
        raise BenchmarkError(f"{where}: source {default_source!r} is not among sources: {', '.join(sources)}")
    backbone = _suite_backbone(_mapping(raw.get("backbone") or {}), resolution, channels, sources, where)

    fx = _named(raw.get("feature_extractor", "inception"), f"{where}: feature_extractor")
    FEATURES.get(fx["name"])
    perceptual = _named(raw["perceptual"], f"{where}: perceptual") if raw.get("perceptual") else {}
    if perceptual:
        FEATURES.get(perceptual["name"])

    targets = []
    for i, t in enumerate(raw.get("targets") or []):
        t = _mapping(t)
        _check_keys(t, f"{where}: targets[{i}]", [f.name for f in fields(TargetConfig)], required=("name", "dataset"))
        DATASETS.get(t["dataset"])
        shots = t.get("shots", [10])
        t["shots"] = tuple(shots if isinstance(shots, list) else [shots])
        if t.get("classes") is not None:
            classes = t["classes"]  # one class may be written without brackets, like shots and seeds
            t["classes"] = tuple(classes if isinstance(classes, list) else [classes])
        for key in ("method_options", "eval", "method_train"):
            t[key] = t.get(key) or {}
        t["train"] = _cell_train_keys(t.get("train"), f"{where}: targets[{i}].train")
        targets.append(_build(TargetConfig, t, f"{where}: targets[{i}]"))
    if not targets:
        raise BenchmarkError(f"{where}: no targets")
    if len({t.name for t in targets}) != len(targets):
        raise BenchmarkError(f"{where}: target names must be unique")

    entries = []
    methods = raw["methods"] if not isinstance(raw["methods"], str) else [raw["methods"]]  # one may stand alone
    for i, m in enumerate(methods or []):
        m = {"name": m} if isinstance(m, str) else _mapping(m)
        _check_keys(m, f"{where}: methods[{i}]", ("name", "label", "options", "source", "train"), required=("name",))
        method_train = _cell_train_keys(m.get("train"), f"{where}: methods[{i}].train")
        options = dict(m.get("options") or {})
        check_method_options(m["name"], METHODS.get(m["name"]), options, f"{where}: methods[{i}]: ")
        named = [m["source"]] if m.get("source") else []
        named += named_sources(METHODS.get(m["name"]), options)
        for source_name in named:
            if source_name not in sources:
                raise BenchmarkError(
                    f"{where}: methods[{i}] uses unknown source {source_name!r}; sources: {', '.join(sources)}"
                )
        entries.append(
            MethodEntry(
                m["name"], m.get("label") or m["name"], dict(m.get("options") or {}), m.get("source"), method_train
            )
        )
    if len({m.label for m in entries}) != len(entries):
        raise BenchmarkError(f"{where}: method labels must be unique (give variants a 'label')")

    seeds = raw.get("seeds", [0])
    seeds = tuple(int(s) for s in (seeds if isinstance(seeds, list) else [seeds]))
    # The backbone's official recipe, then the suite's own train settings over it.
    train = _build(TrainConfig, {**backbone.recipe, **dict(raw.get("train") or {})}, f"{where}: train")
    for i, entry in enumerate(entries):
        try:
            cell_train(train, entry)
        except BenchmarkError as err:
            raise BenchmarkError(f"{where}: methods[{i}].train: {err}") from None
    eval_raw = dict(raw.get("eval") or {})
    if isinstance(eval_raw.get("metrics"), str):  # metrics: fid, not the letters f, i, d
        eval_raw["metrics"] = [eval_raw["metrics"]]
    evaluation = _build(EvalConfig, apply_eval_preset(eval_raw, f"{where}: eval"), f"{where}: eval")
    for i, target in enumerate(targets):
        _check_target_overrides(target, f"{where}: targets[{i}]", sources, entries, train, evaluation)
    protocol = parse_protocol(raw.get("protocol"), f"{where}: protocol", [m.label for m in entries])
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
        protocol=protocol,
        executor=raw.get("executor"),
    )


def _check_shapes(raw: dict, where: str) -> None:
    """Sections that must be a list or a mapping: a mapping where a list is meant iterates its keys."""
    if raw["targets"] is not None and not isinstance(raw["targets"], list):
        raise BenchmarkError(
            f"{where}: targets must be a list of targets (each '- name: ...' with its dataset), "
            f"got a {type(raw['targets']).__name__}"
        )
    if raw["methods"] is not None and not isinstance(raw["methods"], (list, str)):
        raise BenchmarkError(
            f"{where}: methods must be a list, e.g. methods: [{', '.join(METHODS.names()[:2])}], "
            f"got a {type(raw['methods']).__name__}"
        )
    if raw.get("sources") is not None and not isinstance(raw["sources"], dict):
        raise BenchmarkError(
            f"{where}: sources must be a mapping of names to sources (sources: {{name: {{kind: ...}}}}), "
            f"got a {type(raw['sources']).__name__}"
        )


def _mapping(value):
    """A copy of a mapping, {} for an empty entry, and anything else unchanged for _check_keys to refuse
    in one line (dict() of a string or number raised a bare ValueError or TypeError)."""
    if isinstance(value, dict):
        return dict(value)
    return {} if value is None else value


def _check_target_overrides(
    target: TargetConfig,
    where: str,
    sources: dict,
    methods: list[MethodEntry],
    train: TrainConfig,
    evaluation: EvalConfig,
) -> None:
    """A target's own source, per-method options, train and evaluation overrides name things that exist
    and give valid settings."""
    if target.source is not None and target.source not in sources:
        raise BenchmarkError(f"{where}: unknown source {target.source!r}; sources: {', '.join(sources)}")
    by_label = {m.label: m for m in methods}
    _check_keys(target.method_options, f"{where}: method_options", list(by_label))
    for label, options in target.method_options.items():
        entry = by_label[label]
        if not isinstance(options, dict):
            raise BenchmarkError(f"{where}: method_options.{label}: expected a mapping, got {type(options).__name__}")
        check_method_options(entry.name, METHODS.get(entry.name), options, f"{where}: method_options.{label}: ")
    _check_keys(target.method_train, f"{where}: method_train", list(by_label))
    # Each layer on its own first, so an error names the setting at fault; then each cell's merge.
    layers = {f"{where}.train": target.train}
    layers.update({f"{where}.method_train.{label}": own for label, own in target.method_train.items()})
    for place, own in layers.items():
        try:  # the merge cell_train makes, one layer at a time
            dataclasses.replace(train, **_cell_train_keys(own, place))
        except (BenchmarkError, TypeError, ValueError) as err:
            raise BenchmarkError(f"{place}: {err}") from None
    for entry in methods:
        try:
            cell_train(train, entry, target)
        except BenchmarkError as err:
            raise BenchmarkError(f"{where}: {entry.label}'s train on this target: {err}") from None
    _check_keys(target.eval, f"{where}: eval", [f.name for f in fields(EvalConfig)])
    _build(EvalConfig, {**to_plain(evaluation), **apply_eval_preset(target.eval, f"{where}: eval")}, f"{where}: eval")


def _cell_train_keys(value, where: str) -> dict:
    """A target's or method entry's own ``train``: a mapping of ``CELL_TRAIN_FIELDS`` only (values are
    checked once merged, by ``cell_train``)."""
    value = _mapping(value)
    if not isinstance(value, dict):
        raise BenchmarkError(f"{where}: expected a mapping such as {{steps: 1500}}, got {type(value).__name__}")
    recipe = {f.name for f in fields(TrainConfig)}
    misspelt = sorted(set(value) - recipe)
    if misspelt:
        nearest = difflib.get_close_matches(misspelt[0], CELL_TRAIN_FIELDS, n=2, cutoff=0.5)
        hint = f"did you mean {', '.join(map(repr, nearest))}? " if nearest else ""
        raise BenchmarkError(
            f"{where}: unknown key(s) {', '.join(misspelt)}; {hint}valid here: {', '.join(CELL_TRAIN_FIELDS)}"
        )
    shared = sorted(set(value) - set(CELL_TRAIN_FIELDS))
    if shared:
        raise BenchmarkError(
            f"{where}: {', '.join(shared)} cannot be set per target or method (the suite's train sets it "
            f"for every cell); valid here: {', '.join(CELL_TRAIN_FIELDS)}"
        )
    return value


def _named(value, where: str) -> dict:
    """A registry entry given as ``name`` or ``{name: ..., options: {...}}``."""
    value = {"name": value} if isinstance(value, str) else _mapping(value)
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
    "protocol",
    "executor",
)


def _suite_backbone(raw: dict, resolution: int, channels: int, sources: dict[str, SourceConfig], where: str):
    """The suite's backbone: the one its sources' loaders declare (a rosinality StyleGAN2 file is a
    StyleGAN2), else the ``backbone:`` section's ``name`` (harness-pretrained sources), else stylegan1.
    Every source of a suite must share it: methods mix sources' networks (MineGAN's multi-source D)."""
    declared = {name: source_backbone(spec.kind) for name, spec in sources.items()}
    named = sorted({b for b in declared.values() if b is not None})
    if len(named) > 1:
        shown = ", ".join(f"{n} ({b})" for n, b in declared.items() if b is not None)
        raise BenchmarkError(f"{where}: sources on different backbones: {shown}; a suite runs on one backbone")
    if named:
        if raw.get("name", named[0]) != named[0]:
            raise BenchmarkError(
                f"{where}: backbone: name {raw['name']!r} but the sources are {named[0]} files; "
                f"drop backbone.name (the source decides it)"
            )
        raw = {**raw, "name": named[0]}
    return backbone_config({"resolution": resolution, "image_channels": channels, **raw}, f"{where}: backbone")


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
