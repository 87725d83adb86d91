"""Toy sources: StyleGANs the harness pretrains itself on a class subset, cached by a config hash.

The MineGAN MNIST protocol: the source sees the digits except the target classes, so the
target is a genuinely new domain. Pretraining is ordinary training from random weights through
the shared trainer (so it is seeded, shows progress and resumes if interrupted); the result, the
trained generator, its moving average and the discriminator (what a rosinality training
checkpoint holds), is cached under a hash of everything that shaped it, so a suite pretrains
each source once.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import torch

from benchmark.config import TrainConfig
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_torch_save, config_hash, read_cached
from benchmark.method import Method, TargetSpec
from benchmark.sources.base import SOURCES, Source
from benchmark.trainer import TrainData, Trainer
from datasets import build_dataset
from datasets.preprocess import prepare_images

log = logging.getLogger(__name__)


@SOURCES.register("toy-pretrain")
def pretrain_toy_source(
    path=None,
    *,
    backbone,
    dataset: str = "mnist5k",
    classes: list | None = None,
    data_root: str | None = None,
    steps: int = 2000,
    batch_size: int = 32,
    lr: float = 0.002,
    r1_gamma: float = 10.0,
    r1_every: int = 4,
    mixing_prob: float = 0.9,
    ema_decay: float = 0.999,
    mapping_lr_mult: float = 0.01,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    name: str = "toy",
) -> Source:
    """Pretrain (or load from the cache) a StyleGAN on ``dataset`` restricted to ``classes``.

    Args:
        backbone: the suite's backbone config (any registered backbone); pretraining runs its
            recipe (``backbone.recipe``) under the options below.
        dataset, classes, data_root: the source domain (a registered loader's train split and a
            class subset; by default the toy suite's MNIST digits).
        steps, batch_size, lr, r1_gamma, r1_every, mixing_prob, ema_decay, mapping_lr_mult, seed: the
            pretraining recipe (``mapping_lr_mult`` 0.01 is StyleGAN's, for runs of millions of images).
        cache_dir: where ``sources/<name>-<hash>.pt`` is kept (no caching when None).
    """
    if path is not None:
        raise BenchmarkError(f"source {name!r}: toy-pretrain sources are trained by the harness; remove 'path'")
    # The recipe is hashed as written here and passed to the trainer from this one dict.
    train = {
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "r1_gamma": r1_gamma,
        "r1_every": r1_every,
        "mixing_prob": mixing_prob,
        "ema_decay": ema_decay,
        "mapping_lr_mult": mapping_lr_mult,
        "ema_rampup": True,  # training from scratch: early weights should not dominate the average
    }
    recipe = {
        "format": 2,  # 2: the trained G is cached beside its EMA
        "backbone": backbone.to_dict(),
        "dataset": dataset,
        "classes": list(classes) if classes is not None else None,
        "train": {**train, "seed": seed},
    }
    key = config_hash(recipe, 12)
    cached = Path(cache_dir) / "sources" / f"{name}-{key}.pt" if cache_dir else None
    state = read_cached(cached, map_location="cpu") if cached is not None and cached.exists() else None
    if state is None:  # no cache, or a damaged one (warned about): pretrain again
        state = _pretrain(name, backbone, dataset, classes, data_root, train, seed, cached, cache_dir, device, progress)
    return Source(
        name,
        backbone,
        state["g_state"],
        state["d_state"],
        {"kind": "toy-pretrain", "path": str(cached) if cached else None, "hash": key, **recipe},
        state["g_ema_state"],
    )


pretrain_toy_source.trained_by_harness = True


class _FromRandomWeights(Method):
    """The source's own training: every weight of an unconditional G and D, from random initialisation."""

    name = "source-pretraining"

    def __init__(self, source: Source, target: TargetSpec):
        super().__init__(source, target)
        self.G = source.build_generator(pretrained=False)
        self.D = source.build_discriminator(pretrained=False)


def _pretrain(name, backbone, dataset, classes, data_root, train, seed, cached, cache_dir, device, progress) -> dict:
    """Train the source (checkpointing under ``<cached>.partial`` so a killed run resumes); returns its state."""
    loader = build_dataset(dataset, data_root, classes=classes)
    prepared = prepare_images(loader, backbone.resolution, backbone.image_channels, cache_dir=cache_dir)
    names = ",".join(prepared.class_names)
    log.info(
        "pretraining source %r on %d %s images (%s) for %d steps", name, len(prepared), dataset, names, train["steps"]
    )
    torch.manual_seed(seed)
    target = TargetSpec(len(prepared.class_names), False, backbone.resolution, backbone.image_channels, len(prepared))
    method = _FromRandomWeights(Source.untrained(backbone), target)
    config = dataclasses.replace(
        TrainConfig(**backbone.recipe),  # the backbone's own recipe (StyleGAN2's lazy R1 and path length) ...
        **train,  # ... under the source's options
        hflip=False,
        eval_every=max(train["steps"] // 4, 1),
        eval_at_start=False,
        log_every=100,
    )
    partial = cached.with_suffix(".partial") if cached is not None else None
    trainer = Trainer(
        method,
        TrainData(prepared.images, None),
        config,
        device,
        seed,
        partial,
        None,
        progress,
        desc=f"pretrain source {name}",
    )
    trainer.run()
    state = {
        "g_state": {k: v.cpu() for k, v in method.G.state_dict().items()},
        "g_ema_state": {k: v.cpu() for k, v in method.G_ema.state_dict().items()},
        "d_state": {k: v.cpu() for k, v in method.D.state_dict().items()},
    }
    if cached is not None:
        atomic_torch_save(state, cached)
        log.info("cached source %r at %s", name, cached)
        shutil.rmtree(partial, ignore_errors=True)
    return state
