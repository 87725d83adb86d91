"""Helpers for method tests: build a method on the tiny source and train it a few steps."""

from __future__ import annotations

import dataclasses

import torch

from benchmark.config import TrainConfig
from benchmark.trainer import TrainData, Trainer
from methods import TargetSpec, build_method


def toy_target(conditional: bool = False, n_classes: int = 1, n_images: int = 6) -> TargetSpec:
    return TargetSpec(n_classes=n_classes, conditional=conditional, resolution=32, image_channels=1, n_images=n_images)


def toy_data(target: TargetSpec, seed: int = 0) -> TrainData:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (target.n_images, 1, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.arange(target.n_images) % target.n_classes
    return TrainData(images, labels)


def quick_config(**overrides) -> TrainConfig:
    base = dict(steps=3, batch_size=4, eval_every=100, log_every=1, hflip=False, r1_every=1)
    base.update(overrides)
    return dataclasses.replace(TrainConfig(), **base)


def train_briefly(name: str, source, target: TargetSpec, steps: int = 3, seed: int = 0, **options):
    """Build ``name`` and train it ``steps`` steps; returns (method, state before, trainer)."""
    torch.manual_seed(seed)
    method = build_method(name, source, target, **options)
    before = {k: v.detach().clone() for k, v in method.named_parameters()}
    trainer = Trainer(method, toy_data(target, seed), quick_config(steps=steps), seed=seed, progress=False)
    trainer.run()
    return method, before, trainer


def changed(method, before: dict) -> dict[str, bool]:
    """Parameter name -> whether training changed it."""
    params = dict(method.named_parameters())
    return {k: not torch.equal(params[k].detach(), v) for k, v in before.items()}
