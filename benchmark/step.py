"""What one training step hands a method: the real batch, the fakes' latents and the step context.

These are the harness's types (the trainer makes them, every method reads them); methods import
them from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Batch:
    """Real training images in [-1, 1], their labels (None when unconditional) and dataset indices."""

    images: torch.Tensor
    labels: torch.Tensor | None
    indices: torch.Tensor


@dataclass
class Latents:
    """Inputs for one generator call: z, labels, and an optional second z with its crossover block."""

    z: torch.Tensor
    labels: torch.Tensor | None = None
    mix_z: torch.Tensor | None = None
    crossover: int | None = None

    def as_kwargs(self) -> dict:
        return {"labels": self.labels, "mix_z": self.mix_z, "crossover": self.crossover}


@dataclass
class StepContext:
    """What the harness hands a method for one step.

    Attributes:
        step: global step index (0-based).
        stage: the current stage's name.
        sample_latents: draws a ``Latents`` for a given batch size from the seeded training RNG
            (style mixing with the suite's probability, uniform labels when conditional).
        r1_gamma: R1 weight; ``r1_every`` > 1 means lazy R1 (the penalty is scaled up to match).
        do_r1: whether this D step applies R1.
        trainable: the parameters each optimizer steps now, for ``backward(inputs=...)``.
        generator: the training RNG, for any extra randomness a method needs.
    """

    step: int
    stage: str
    sample_latents: Callable[..., Latents]
    r1_gamma: float
    r1_every: int
    do_r1: bool
    trainable: dict[str, list[nn.Parameter]]
    generator: torch.Generator


def backward(terms: dict[str, torch.Tensor], params: list[nn.Parameter]) -> dict[str, torch.Tensor]:
    """Sum the loss terms, backpropagate into ``params`` only, return the detached terms."""
    total = sum(terms.values())
    if params and total.requires_grad:
        total.backward(inputs=params)
    return {k: v.detach() for k, v in terms.items()}
