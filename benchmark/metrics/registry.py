"""The metrics registry: every value a cell records, registered once, with the group that computes it.

A *group* is what a suite names in ``eval.metrics`` (``prdc``); it computes its *metrics*
together (precision, recall, density, coverage). Each metric carries its name in tables and the
direction that is better; each group the images it needs and how it computes from features. The
evaluator (``benchmark.evaluate``), the evaluation-size checks and the report derive everything
from this table, so a new metric is one entry here. Groups run, and tables list metrics, in the
order they are registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from benchmark.metrics.fid import feature_statistics, frechet_distance_from_stats
from benchmark.metrics.intra_class import intra_class_fid
from benchmark.metrics.kid import kid
from benchmark.metrics.kmmd import kmmd
from benchmark.metrics.memorization import closest_pairs, memorization
from benchmark.metrics.prdc import prdc
from benchmark.registry import Registry

METRICS: Registry[MetricGroup] = Registry(
    "metric",
    contract="a MetricGroup: the metrics it records (name, display name, direction), the real and generated "
    "images it needs, and compute(Scoring) -> {metric: value}",
)


@dataclass(frozen=True)
class Metric:
    """One value a cell records.

    Args:
        name: its key in metrics.jsonl, the results store and the tidy CSV ("fid").
        display: its name in tables and plots ("FID").
        direction: "lower" or "higher" is better; None: not ranked (no arrow, never bold).
        diagnostic: recorded beside the metrics to explain them in a footnote, never a table column.
    """

    name: str
    display: str
    direction: str | None = None
    diagnostic: bool = False


@dataclass
class Scoring:
    """What a group computes from: one evaluation's features and the evaluator's fixed inputs.

    ``per_class`` and ``pairs`` are where a group leaves what it gives besides values: per-class
    FIDs, and the generated samples nearest to training images.
    """

    real: torch.Tensor
    fake: torch.Tensor
    config: Any  # the suite's EvalConfig
    device: torch.device
    real_labels: torch.Tensor
    fake_labels: torch.Tensor
    conditional: bool
    n_classes: int
    train: torch.Tensor
    heldout: torch.Tensor | None
    references: dict[str, Any]  # per group, what its ``reference`` computed from the real features once
    per_class: dict[str, float] = field(default_factory=dict)
    pairs: list = field(default_factory=list)


@dataclass(frozen=True)
class MetricGroup:
    """What a suite names in ``eval.metrics``: metrics computed together, and the images they need.

    Args:
        name: the name in ``eval.metrics``.
        metrics: the values it records (a diagnostic among them is recorded only when it has something to say).
        compute: ``compute(scoring) -> {metric: value}``.
        min_images: real and generated images it needs (each class's, when ``per_class``), given the eval config.
        subject: how a size error names it, given the eval config ("PRDC with k=5").
        fix: what a size error suggests besides dropping the group.
        per_class: computed per class; only on a conditional target with more than one class.
        reference: computed once from the real features, for every evaluation (``Scoring.references``).
    """

    name: str
    metrics: tuple[Metric, ...]
    compute: Callable[[Scoring], dict[str, float]]
    min_images: Callable[[Any], int] = lambda config: 2
    subject: Callable[[Any], str] | None = None
    fix: str = "raise eval.n_fake"
    per_class: bool = False
    reference: Callable[[torch.Tensor, torch.device], Any] | None = None

    def describe(self, config) -> str:
        return self.subject(config) if self.subject else " and ".join(m.display for m in self.metrics)

    def applies(self, conditional: bool, n_classes: int) -> bool:
        return not self.per_class or (conditional and n_classes > 1)


def register(group: MetricGroup) -> MetricGroup:
    return METRICS.register(group.name)(group)


def _fid(s: Scoring) -> dict[str, float]:
    fake_statistics = feature_statistics(s.fake, device=s.device)
    return {"fid": frechet_distance_from_stats(*s.references["fid"], *fake_statistics, device=s.device)}


def _kid(s: Scoring) -> dict[str, float]:
    cfg = s.config
    return {
        "kid": kid(s.real, s.fake, num_subsets=cfg.kid_subsets, max_subset_size=cfg.kid_subset_size, device=s.device)
    }


def _kmmd(s: Scoring) -> dict[str, float]:
    return {"kmmd": kmmd(s.real, s.fake, device=s.device)}


def _prdc(s: Scoring) -> dict[str, float]:
    values, zero_radii = prdc(s.real, s.fake, k=s.config.prdc_k, device=s.device, return_zero_radii=True)
    if zero_radii:  # recorded so the table can say which PRDC values rest on duplicated features
        values[PRDC_ZERO_RADII] = zero_radii
    return values


def _intra_fid(s: Scoring) -> dict[str, float]:
    value, by_class = intra_class_fid(s.real, s.real_labels, s.fake, s.fake_labels, device=s.device)
    s.per_class.update({str(k): float(v) for k, v in by_class.items()})
    return {"intra_fid": value}


def _memorization(s: Scoring) -> dict[str, float]:
    """The ratio where real images outside training exist (a few-shot split); on a whole-data-set target
    nothing scales the distance, so the raw distance is recorded under its own name."""
    memo = memorization(s.train, s.fake, heldout=s.heldout, device=s.device)
    s.pairs[:] = closest_pairs(s.fake, s.train, n=min(8, len(s.fake)), device=s.device)
    if "ratio" in memo:
        return {"memorization": memo["ratio"]}
    return {"memorization_distance": memo["fake_to_train"]}


# k-NN radii of 0 (duplicated features) behind a PRDC value: a footnote, not a metric.
PRDC_ZERO_RADII = "prdc_zero_radii"
_FEW = "FID, KID and KMMD"  # the three share one size rule and one message

register(
    MetricGroup(
        "fid",
        (Metric("fid", "FID", "lower"),),
        _fid,
        subject=lambda config: _FEW,
        reference=lambda real, device: feature_statistics(real, device=device),
    )
)
register(MetricGroup("kid", (Metric("kid", "KID", "lower"),), _kid, subject=lambda config: _FEW))
# The biased estimate of the squared kernel MMD (benchmark/metrics/kmmd.py); Xu et al. report its square root.
register(MetricGroup("kmmd", (Metric("kmmd", "KMMD (squared)", "lower"),), _kmmd, subject=lambda config: _FEW))
register(
    MetricGroup(
        "prdc",
        (
            Metric("precision", "Precision", "higher"),
            Metric("recall", "Recall", "higher"),
            Metric("density", "Density", "higher"),
            Metric("coverage", "Coverage", "higher"),
            Metric(PRDC_ZERO_RADII, "PRDC zero radii", diagnostic=True),
        ),
        _prdc,
        min_images=lambda config: config.prdc_k + 1,
        subject=lambda config: f"PRDC with k={config.prdc_k}",
        fix="lower eval.prdc_k, raise eval.n_fake",
    )
)
register(
    MetricGroup(
        "intra_fid",
        (Metric("intra_fid", "Intra-FID", "lower"),),
        _intra_fid,
        subject=lambda config: "intra-class FID",
        per_class=True,
    )
)
# Not ranked: a ratio well below 1 signals copying, above 1 is not "better". Two metrics, one meaning each:
# ``memorization`` is the ratio (generated -> training over held-out real -> training nearest-neighbour
# distance), recorded where the reference set has images outside training; ``memorization_distance`` is
# the raw mean generated -> training distance in the extractor's feature space (e.g. Inception units),
# recorded on whole-data-set targets, where every real image is a training image.
register(
    MetricGroup(
        "memorization",
        (Metric("memorization", "Memorization"), Metric("memorization_distance", "Train NN distance")),
        _memorization,
        min_images=lambda c: 1,
    )
)


def all_metrics() -> list[Metric]:
    """Every registered metric, in registration order."""
    return [m for group in METRICS.values() for m in group.metrics]


def metric(name: str) -> Metric | None:
    """The registered metric of that name, or None (a value recorded by something else)."""
    return next((m for m in all_metrics() if m.name == name), None)


def direction(name: str) -> str | None:
    """'lower' or 'higher' is better; None for an unranked, diagnostic or unknown metric."""
    found = metric(name)
    return found.direction if found else None


def display_name(name: str) -> str:
    found = metric(name)
    return found.display if found else name


def metric_id(name: str, n_fake: int | None, extractor: str | None) -> str:
    """The metric with its sample count and feature extractor, stylegan2-ada's ``fid50k_full`` idea:
    ``fid1k_digits-classifier`` (1,000 generated images, digits-classifier features)."""
    count = "" if n_fake is None else f"{n_fake // 1000}k" if n_fake % 1000 == 0 else str(n_fake)
    return f"{name}{count}_{extractor}" if extractor else f"{name}{count}"
