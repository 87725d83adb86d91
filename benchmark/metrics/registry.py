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
from benchmark.metrics.intra_lpips import intra_cluster_lpips
from benchmark.metrics.kid import kid
from benchmark.metrics.kmmd import kmmd
from benchmark.metrics.memorization import closest_pairs, memorization
from benchmark.metrics.ppl import perceptual_path_length
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
    # For groups that compute from more than the suite's features (``MetricGroup.extractor`` / ``network``):
    features: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # extractor -> (real, fake)
    networks: dict[str, Any] = field(default_factory=dict)  # group name -> its network (LPIPS)
    fake_images: torch.Tensor | None = None  # the generated images in [-1, 1], on the CPU
    train_images: torch.Tensor | None = None  # the few-shot training images in [-1, 1]
    method: Any = None  # the method being scored (its EMA generator is what PPL walks along)


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
        reference: computed once from the real features, for every evaluation (``Scoring.references``);
            from its own extractor's features when it names one.
        extractor: its own feature network (a registered extractor, built from its default weights
            file); its real and generated features are in ``Scoring.features[extractor]`` and the
            metric ids name it. None: the suite's features (``Scoring.real``, ``Scoring.fake``).
        network: ``network(device)`` builds another network it computes with (LPIPS), once per
            process, given in ``Scoring.networks[name]``; such a group also reads the generated and
            training images or the method from ``Scoring``.
        max_real: at most this many real images (a subset seeded by ``eval.seed``) for its own
            extractor's features, given the eval config; None: all of the evaluation split.
        network_name: the name ``network`` goes by in metric ids ("lpips-vgg").
        uses_reference: whether it scores the generated images against the evaluation split's real
            images (FID, KID, PRDC, ...); intra-LPIPS and PPL do not, so training images among the
            reference images cannot reward copying in them.
        preflight: what ``--dry-run`` checks of ``network``'s weights file without loading it (a line
            saying what was found, else a one-line BenchmarkError).
        describe_convention: one sentence for a table caption naming how its values are computed.
    """

    name: str
    metrics: tuple[Metric, ...]
    compute: Callable[[Scoring], dict[str, float]]
    min_images: Callable[[Any], int] = lambda config: 2
    subject: Callable[[Any], str] | None = None
    fix: str = "raise eval.n_fake"
    per_class: bool = False
    reference: Callable[[torch.Tensor, torch.device], Any] | None = None
    extractor: str | None = None
    network: Callable[[torch.device], Any] | None = None
    max_real: Callable[[Any], int | None] = lambda config: None
    preflight: Callable[[], str] | None = None
    network_name: str = ""
    describe_convention: str = ""
    uses_reference: bool = True

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


def _fid_on_own_features(group: str, extractor: str) -> Callable[[Scoring], dict[str, float]]:
    """FID of a convention with its own feature network: its real statistics were computed once."""

    def compute(s: Scoring) -> dict[str, float]:
        fake_statistics = feature_statistics(s.features[extractor][1], device=s.device)
        return {group: frechet_distance_from_stats(*s.references[group], *fake_statistics, device=s.device)}

    return compute


def _intra_lpips(s: Scoring) -> dict[str, float]:
    """CDC's intra-cluster LPIPS (definition: ``benchmark.metrics.intra_lpips``) of the first
    ``eval.intra_lpips_n`` generated images around the training images, and its spread over clusters."""
    n = min(s.config.intra_lpips_n, len(s.fake_images))  # the first of the fixed evaluation latents
    result = intra_cluster_lpips(
        s.fake_images[:n],
        s.train_images,
        s.networks["intra_lpips"],
        max_per_cluster=s.config.intra_lpips_per_cluster,
        seed=s.config.seed,
        batch_size=s.config.batch_size,
    )
    return {"intra_lpips": result.mean, "intra_lpips_std": result.std}


def _ppl(s: Scoring) -> dict[str, float]:
    """NVIDIA's perceptual path length (``benchmark.metrics.ppl``) of the method's EMA generator."""
    cfg = s.config
    if s.method is None:
        raise ValueError("ppl walks along the generator; the evaluator passes the method")
    G = s.method.G_ema if hasattr(s.method, "G_ema") else s.method.G  # the EMA generator, as samples come from
    value = perceptual_path_length(
        G,
        s.networks["ppl"],
        cfg.ppl_samples,
        space=cfg.ppl_space,
        sampling=cfg.ppl_sampling,
        crop=cfg.ppl_crop,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=s.device,
    )
    return {"ppl": value}


def _lpips_network(device):
    from benchmark.features.lpips_vgg import build_lpips  # imports lpips only where a suite asks for it

    return build_lpips(device=device)


def _lpips_preflight() -> str:
    from benchmark.features.lpips_vgg import preflight_lpips

    return preflight_lpips()


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
        describe_convention="FID: this benchmark's default, on the features named above (with inception: "
        "clean-fid's convention, its TorchScript Inception on PIL-bicubic-resized 8-bit images), generated images "
        "against the evaluation split.",
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
# The field's two other FID conventions (shared/PROTOCOLS.md, "Two FID conventions"), each on its own
# network: separate metrics, so a table never puts them in one column with clean-fid's FID.
register(
    MetricGroup(
        "fid_cdc",
        (Metric("fid_cdc", "FID (CDC)", "lower"),),
        _fid_on_own_features("fid_cdc", "pytorch-fid-inception"),
        subject=lambda config: "FID in the CDC convention",
        reference=lambda real, device: feature_statistics(real, device=device),
        extractor="pytorch-fid-inception",
        describe_convention="FID (CDC): the CDC convention, pytorch-fid's FID Inception and bilinear resize on "
        "generated images round-tripped through 8-bit PNG, against the whole evaluation split.",
    )
)
register(
    MetricGroup(
        "fid_adam",
        (Metric("fid_adam", "FID (AdAM)", "lower"),),
        _fid_on_own_features("fid_adam", "torchvision-inception"),
        subject=lambda config: "FID in the AdAM convention",
        reference=lambda real, device: feature_statistics(real, device=device),
        extractor="torchvision-inception",
        max_real=lambda config: config.fid_max_real,
        describe_convention="FID (AdAM): the AdAM/RICK convention, torchvision's ImageNet Inception-v3 pool3 "
        "features of float images resized bilinearly to 299, against at most eval.fid_max_real real images; "
        "recorded at every evaluation (the best-value tables give the best of the run, the others the last).",
    )
)
register(
    MetricGroup(
        "intra_lpips",
        (Metric("intra_lpips", "Intra-LPIPS", "higher"), Metric("intra_lpips_std", "Intra-LPIPS std")),
        _intra_lpips,
        subject=lambda config: "intra-cluster LPIPS",
        network=_lpips_network,
        network_name="lpips-vgg",
        preflight=_lpips_preflight,
        uses_reference=False,
        describe_convention="Intra-LPIPS: mean pairwise LPIPS-VGG (v0.1) within the clusters of the first "
        "eval.intra_lpips_n generated images around their nearest training images (at most "
        "eval.intra_lpips_per_cluster each, a seeded random subset; clusters under 2 dropped), mean over clusters.",
    )
)
register(
    MetricGroup(
        "ppl",
        (Metric("ppl", "PPL", "lower"),),
        _ppl,
        min_images=lambda config: 1,
        subject=lambda config: "perceptual path length",
        network=_lpips_network,
        network_name="lpips-vgg",
        preflight=_lpips_preflight,
        uses_reference=False,
        describe_convention="PPL: NVIDIA's perceptual path length (epsilon 1e-4, LPIPS-VGG v0.1 / epsilon^2, "
        "1st-99th percentile mean) over eval.ppl_samples latent pairs.",
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


def group_of(name: str) -> MetricGroup | None:
    """The registered group that records metric ``name``, or None."""
    return next((g for g in METRICS.values() if any(m.name == name for m in g.metrics)), None)


def metric_id(name: str, n_fake: int | None, extractor: str | None) -> str:
    """The metric with its sample count and feature extractor, stylegan2-ada's ``fid50k_full`` idea:
    ``fid1k_digits-classifier`` (1,000 generated images, digits-classifier features). A metric whose
    group has its own network is named with that one (``fid_cdc5k_pytorch-fid-inception``, ``intra_lpips5k_lpips-vgg``;
    intra-LPIPS clusters the first ``eval.intra_lpips_n`` of the n_fake images)."""
    group = group_of(name)
    if group is not None and (group.extractor or group.network_name):
        extractor = group.extractor or group.network_name
    count = "" if n_fake is None else f"{n_fake // 1000}k" if n_fake % 1000 == 0 else str(n_fake)
    return f"{name}{count}_{extractor}" if extractor else f"{name}{count}"
