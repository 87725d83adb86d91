"""Evaluation: samples -> features -> metrics, with the same fixed latents for every cell.

Every method of a suite is scored on the same evaluation latents (seeded by ``eval.seed``) and
the same real features, so differences between rows come from the methods. Real features are
computed once per target and cached on disk under a hash of the extractor and the images. For a
conditional target, generated labels are balanced over the classes and intra-class FID compares
each class's samples with that class's real images.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark import metrics as M
from benchmark.config import EvalConfig
from benchmark.errors import BenchmarkError, abbreviate
from benchmark.features import FeatureExtractor, build_extractor
from benchmark.io import atomic_torch_save, read_cached
from benchmark.method import Method
from benchmark.metrics.registry import METRICS, Scoring
from datasets.preprocess import PreparedImages

log = logging.getLogger(__name__)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range generators produce."""
    return images.float() / 127.5 - 1


@dataclass
class Evaluation:
    """One evaluation's outcome: metric values, per-class FIDs and a grid of samples in [-1, 1]."""

    step: int
    metrics: dict[str, float]
    per_class: dict[str, float]
    grid: torch.Tensor
    nearest_pairs: torch.Tensor | None  # (2n, C, H, W): generated, nearest training image, ...


class Evaluator:
    """Scores a method's EMA generator against a target's real images.

    Args:
        extractor: the feature network (its ``name`` is recorded with every metric).
        reference: the full target split, the real side of every metric.
        train: the few-shot training images (memorisation compares samples to them).
        config: the protocol (sample count, metrics, PRDC k, KID subsets, seed).
        conditional: balance generated labels over classes and compute intra-class FID.
        style_dim: the latent size.
        device: where to sample and extract.
        cache_dir: where real features are cached (no caching when None).
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        reference: PreparedImages,
        train: PreparedImages,
        config: EvalConfig,
        conditional: bool,
        style_dim: int,
        device: str | torch.device = "cpu",
        cache_dir: str | Path | None = None,
    ):
        self.extractor = extractor
        self.config = config
        self.conditional = conditional
        self.device = torch.device(device)
        self.n_classes = len(reference.class_names)
        per_class = torch.bincount(reference.labels, minlength=self.n_classes).tolist()
        # Before any feature is extracted: a set too small for a metric fails now, in one line.
        check_eval_sizes(len(reference), config, dict(zip(reference.class_names, per_class)) if conditional else None)
        self.reference_labels = reference.labels
        self.real = self._features(reference.images, cache_dir, reference.paths)
        self.train_images = train.images
        self.train_features = self._features(train.images, cache_dir, train.paths)
        train_paths = set(train.paths)
        heldout = [i for i, p in enumerate(reference.paths) if p not in train_paths]
        self.heldout = self.real[heldout] if heldout else None
        self.groups = [g for g in METRICS.values() if g.name in config.metrics]
        # Groups with a network of their own (the FID conventions' Inceptions, LPIPS): built once per
        # process; their real features are cached like the suite's.
        device_name = str(self.device)
        self.own_extractors = {}
        for name in dict.fromkeys(g.extractor for g in self.groups if g.extractor):
            build = lambda name=name: build_extractor(name, cache_dir=cache_dir, device=self.device)  # noqa: E731
            self.own_extractors[name] = shared_network(("extractor", name, device_name), build)
        self.networks = {
            g.name: shared_network(("network", g.name, device_name), lambda g=g: g.network(self.device))
            for g in self.groups
            if g.network
        }
        self.own_real = {}
        for g in self.groups:
            if g.extractor:
                keep = real_subset(len(reference), g.max_real(config), config.seed)
                images, paths = reference.images[keep], [reference.paths[i] for i in keep.tolist()]
                self.own_real[g.name] = self._features(images, cache_dir, paths, self.own_extractors[g.extractor])
        # The real side of a metric is the same at every evaluation (FID's statistics): computed once.
        self.references = {
            g.name: g.reference(self.own_real.get(g.name, self.real), self.device) for g in self.groups if g.reference
        }
        generator = torch.Generator().manual_seed(config.seed)
        self.z = torch.randn(config.n_fake, style_dim, generator=generator)
        self.labels = torch.arange(config.n_fake) % self.n_classes
        self.noise_seed = int(torch.randint(2**31 - 1, (), generator=generator))

    @property
    def n_real(self) -> int:
        return len(self.real)

    def _features(self, images: torch.Tensor, cache_dir, paths: list[str], extractor=None) -> torch.Tensor:
        """Real images' features (the suite's extractor's, or ``extractor``'s), from the cache when it
        holds a readable, finite copy."""
        extractor = self.extractor if extractor is None else extractor
        key = hashlib.sha1(extractor.name.encode())
        key.update(images.numpy().tobytes())
        path = Path(cache_dir) / "features" / f"{extractor.name}-{key.hexdigest()[:16]}.pt" if cache_dir else None
        if path is not None and path.exists():
            cached = read_cached(path)  # None, with a warning, when the file is damaged
            fits = isinstance(cached, torch.Tensor) and cached.ndim == 2 and len(cached) == len(images)
            if fits and not len(M.non_finite_rows(cached)):
                return cached
            if cached is not None:
                log.warning("cached features %s do not fit the images or are not finite; computing them again", path)
        features = extractor.extract(to_unit_range(images), self.config.batch_size)
        bad = M.non_finite_rows(features)
        if len(bad):  # real images are valid pixels, so the feature network itself gives NaN or inf
            raise BenchmarkError(
                f"the {extractor.name} features of {len(bad)} of {len(images)} real images are NaN or inf, the "
                f"first of {paths[int(bad[0])]} (row {int(bad[0])}): the feature network's weights file is damaged "
                "or not the expected one"
            )
        if path is not None:
            atomic_torch_save(features, path)
        return features

    @torch.no_grad()
    def generate(self, method: Method) -> torch.Tensor:
        """All evaluation samples in [-1, 1] on the CPU, drawn without touching the training RNG."""
        out = []
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.noise_seed)
            for i in range(0, self.config.n_fake, self.config.batch_size):
                z = self.z[i : i + self.config.batch_size].to(self.device)
                labels = self.labels[i : i + self.config.batch_size].to(self.device) if self.conditional else None
                out.append(method.sample(z, labels).float().cpu())
        return torch.cat(out)

    def __call__(self, method: Method, step: int) -> Evaluation:
        was_training = method.training
        method.eval()
        fake_images = self.generate(method)
        method.train(was_training)
        fake = self.extractor.extract(fake_images, self.config.batch_size)
        values, per_class, pairs = self.score(fake, fake_images, method)
        nearest = None
        if pairs:
            train = to_unit_range(self.train_images)
            nearest = torch.stack([image for i, j, _ in pairs for image in (fake_images[i], train[j])])
        return Evaluation(step, values, per_class, fake_images[: self.config.grid], nearest)

    def score(
        self, fake: torch.Tensor, fake_images: torch.Tensor | None = None, method: Method | None = None
    ) -> tuple[dict[str, float], dict[str, float], list]:
        """Every configured metric on generated features ``fake`` (N, dim): values, per-class FIDs, closest pairs.

        ``fake_images`` (in [-1, 1]) and ``method`` are what groups with their own network compute from:
        their features, intra-cluster LPIPS, the generator PPL walks along.
        """
        bad = M.non_finite_rows(fake)
        if len(bad):  # the generator diverged: the cell fails as a diverged one, the suite goes on
            raise FloatingPointError(
                f"{len(bad)} of {len(fake)} generated images give NaN or inf features, the first at row {int(bad[0])}"
            )
        own = {}
        for group in self.groups:
            if group.extractor and group.extractor not in own:
                if fake_images is None:
                    raise ValueError(f"{group.name} computes from the generated images; pass fake_images")
                own[group.extractor] = (
                    self.own_real[group.name],
                    self.own_extractors[group.extractor].extract(fake_images, self.config.batch_size),
                )
        scoring = Scoring(
            self.real, fake, self.config, self.device, self.reference_labels, self.labels, self.conditional,
            self.n_classes, self.train_features, self.heldout, self.references, features=own,
            networks=self.networks, fake_images=fake_images, train_images=to_unit_range(self.train_images),
            method=method,
        )  # fmt: skip
        values: dict[str, float] = {}
        for group in self.groups:
            if group.applies(self.conditional, self.n_classes):
                values.update(group.compute(scoring))
        return {k: float(v) for k, v in values.items()}, scoring.per_class, scoring.pairs


# Networks of metric groups (an Inception per FID convention, LPIPS), built once per process and device.
_SHARED_NETWORKS: dict[tuple, object] = {}


def shared_network(key: tuple, build):
    """The network stored under ``key``, built by ``build()`` the first time."""
    if key not in _SHARED_NETWORKS:
        _SHARED_NETWORKS[key] = build()
    return _SHARED_NETWORKS[key]


def real_subset(n: int, limit: int | None, seed: int) -> torch.Tensor:
    """Indices of the real images a group compares with: all, or a seeded random ``limit`` of them, in order."""
    if limit is None or n <= limit:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


def check_eval_sizes(n_real: int, config: EvalConfig, per_class: dict[str, int] | None = None) -> None:
    """Fail before training, not at the first evaluation, when a set is too small for a metric.

    Each metric group of ``eval.metrics`` says how many real and generated images it needs
    (``MetricGroup.min_images``); a per-class group needs them of each class.

    Args:
        n_real: real images evaluated against (the target's evaluation split).
        config: the protocol (sample count, metrics, PRDC k).
        per_class: real images of each class in that split, for a conditional target: its
            per-class metrics (intra-class FID) compare each class's generated images, which get
            ``n_fake // n_classes`` or one more of the evaluation labels, with that class's real ones.
    """
    for group in METRICS.values():
        if group.name not in config.metrics:
            continue
        needed, subject = group.min_images(config), group.describe(config)
        if group.per_class:
            if per_class and len(per_class) > 1:
                _check_per_class_sizes(group.name, subject, needed, per_class, config.n_fake)
        elif min(n_real, config.n_fake) < needed:
            verb = "need" if " and " in subject else "needs"
            raise BenchmarkError(
                f"{subject} {verb} at least {needed} real and generated images; the target has {n_real} real "
                f"images and eval.n_fake is {config.n_fake}: {group.fix}, or drop {group.name} from eval.metrics"
            )


def _check_per_class_sizes(name: str, subject: str, needed: int, per_class: dict[str, int], n_fake: int) -> None:
    """A per-class metric (intra-class FID takes a covariance per class) needs its images of every class."""
    generated = n_fake // len(per_class)  # the fewest any class gets of the labels arange(n_fake) % n_classes
    few_real = [f"{label!r} ({n})" for label, n in per_class.items() if n < needed]
    if generated < needed:
        raise BenchmarkError(
            f"{subject} needs at least {needed} generated images of every class; eval.n_fake {n_fake} over "
            f"{len(per_class)} classes gives some class {generated}: raise eval.n_fake to at least "
            f"{needed * len(per_class)}, or drop {name} from eval.metrics"
        )
    if few_real:
        raise BenchmarkError(
            f"{subject} needs at least {needed} real images of every class; {len(few_real)} class(es) have fewer "
            f"in the evaluation split: {abbreviate(few_real, 5)}; choose other classes or an eval_split with more "
            f"images, or drop {name} from eval.metrics"
        )
