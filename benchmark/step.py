"""What one training step hands a method's hooks: the real batch, the fakes' latents, the fakes and the context.

These are the harness's types (the trainer and ``benchmark.method.accumulate_gradients`` make
them, every method reads them). ``benchmark.method`` re-exports them with the contract, so a
method imports everything it needs from that one module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from benchmark.schedule import Schedule, Stage


@dataclass
class Batch:
    """Real training images in [-1, 1], their labels (None when unconditional) and dataset indices."""

    images: torch.Tensor
    labels: torch.Tensor | None
    indices: torch.Tensor


@dataclass
class Latents:
    """Inputs for one generator call: z, labels, and an optional second z with its crossover block.

    ``crossover`` is an int, or a 0-d integer tensor on the device when G is compiled (see
    ``Trainer.sample_latents``).
    """

    z: torch.Tensor
    labels: torch.Tensor | None = None
    mix_z: torch.Tensor | None = None
    crossover: int | torch.Tensor | None = None

    def as_kwargs(self) -> dict:
        return {"labels": self.labels, "mix_z": self.mix_z, "crossover": self.crossover}


@dataclass
class Fakes:
    """What ``Method.generate`` made: images in [-1, 1], the latents they came from, and any
    features a loss needs beside them (a generator's block outputs, one batch per source, ...).

    ``images`` is None only when the fakes are not one batch of images; the method's
    ``fake_logits`` then reads ``features``.
    """

    images: torch.Tensor | None
    latents: Latents
    features: dict[str, Any] = field(default_factory=dict)


@dataclass
class PathLength:
    """StyleGAN2's path-length regularization as a run holds it (``TrainConfig.pl_*``).

    ``mean`` is the running mean of the path lengths, a 0-d tensor on the training device, which
    each path-length step updates and the trainer checkpoints.
    """

    weight: float
    every: int
    batch_shrink: int
    decay: float
    mean: torch.Tensor


@dataclass
class StepContext:
    """What the harness hands each hook of a method for one phase of one step.

    Attributes:
        step: global step index (0-based).
        stage: the current stage.
        phase: "D" or "G".
        sample_latents: draws a ``Latents`` for a given batch size (and optionally given labels)
            from the seeded training RNG: style mixing with the suite's probability, uniform
            labels when conditional.
        r1_gamma: R1 weight (``train.r1_gamma``).
        r1_every: R1 runs every n-th step, scaled by n (``train.r1_every``).
        trainable: the parameters each optimizer steps now, for ``backward(inputs=...)``.
        generator: the training RNG, for any extra randomness a method needs.
        lazy_regularization: R1 and the path-length penalty run as steps of their own
            (``benchmark.method.accumulate_regularization``), not inside the D and G steps.
        path_length: the path-length regularization (None when off).
        ada: adaptive discriminator augmentation (``benchmark.augment``; None when ``train.ada`` is off).
            ``augment`` applies it; the default ``Method.discriminate`` does, so every image D sees
            passes through it.
    """

    step: int
    stage: Stage
    phase: str
    sample_latents: Callable[..., Latents]
    r1_gamma: float
    r1_every: int
    trainable: dict[str, list[nn.Parameter]]
    generator: torch.Generator
    lazy_regularization: bool = False
    path_length: PathLength | None = None
    ada: Any = None  # benchmark.augment.AdaptiveAugment

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` as D should see them: ADA-augmented with probability p when ADA is on, else as they are."""
        return images if self.ada is None else self.ada(images, self.generator)


@dataclass
class StepEnd:
    """What ``Method.after_step`` sees once a step is over: its optimizer updates and G's EMA update are done.

    Attributes:
        step: the step just finished (0-based); the next one is ``step + 1``.
        schedule: the run's stages laid out in steps (``schedule.at(step + 1)`` is the next step's span).
        images: the whole training set, uint8 (N, C, H, W) on the training device (read it, never write it).
        labels: its labels (N,), or None.
        ema_decay: the decay of G's moving average at this step (the one the harness used, or would use in
            a stage without a G phase).
    """

    step: int
    schedule: Schedule
    images: torch.Tensor
    labels: torch.Tensor | None
    ema_decay: float


def backward(terms: dict[str, torch.Tensor], params: list[nn.Parameter]) -> dict[str, torch.Tensor]:
    """Sum the loss terms, backpropagate into ``params`` only, return the detached terms."""
    total = sum(terms.values())
    if params and total.requires_grad:
        total.backward(inputs=params)
    return {k: v.detach() for k, v in terms.items()}
