"""Helpers for method tests: build a method on the tiny source and train it a few steps."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from benchmark.config import TrainConfig
from benchmark.features import FeatureExtractor
from benchmark.method import METHODS, TargetSpec, TrainingSet, build_method, provide_resources
from benchmark.trainer import TrainData, Trainer


class TinyPerceptual(FeatureExtractor):
    """A stand-in perceptual network: two fixed random conv layers (seeded), as feature maps."""

    name = "tiny-perceptual"
    dim = 8

    def __init__(self, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2), nn.ReLU())
        self.eval()

    def feature_maps(self, images: torch.Tensor, input_scale: str | None = None) -> list[torch.Tensor]:
        assert input_scale is None, "the stand-in has one input scale"
        first = self.body[1](self.body[0](images.mean(1, keepdim=True)))
        return [first, self.body[3](self.body[2](first))]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.feature_maps(images)[-1].mean((2, 3))


TEST_STAGE_SCALE = 1e-3  # a preparation step (RSSA's inversion: 4,002 steps) runs a few steps in tests


def toy_training_set(target: TargetSpec, seed: int = 0, cache_dir=None) -> TrainingSet:
    """The toy training images as ``Resource.TRAINING_SET`` gives them, preparation steps cut short."""
    data = toy_data(target, seed)
    return TrainingSet(data.images, data.labels, cache_dir, TEST_STAGE_SCALE)


def make_method(name: str, source, target: TargetSpec, **options):
    """``build_method``, giving a method that declares a perceptual network the tiny stand-in and one that
    declares the training set the toy images (as the runner gives the suite's); tests pass any other
    sources in as loaded ``Source`` objects."""
    provided = provide_resources(
        METHODS.get(name), {}, source=None, perceptual=TinyPerceptual, training_set=lambda: toy_training_set(target)
    )
    return build_method(name, source, target, **{**provided, **options})


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
    """Build ``name`` and train it ``steps`` steps, every stage shortened to one step as a named
    budget would (the last takes the rest); returns (method, state before, trainer)."""
    torch.manual_seed(seed)
    method = make_method(name, source, target, **options)
    before = {k: v.detach().clone() for k, v in method.named_parameters()}
    config = quick_config(steps=steps, stage_scale=1e-6)
    trainer = Trainer(method, toy_data(target, seed), config, seed=seed, progress=False)
    trainer.run()
    return method, before, trainer


def changed(method, before: dict) -> dict[str, bool]:
    """Parameter name -> whether training changed it."""
    params = dict(method.named_parameters())
    return {k: not torch.equal(params[k].detach(), v) for k, v in before.items()}
