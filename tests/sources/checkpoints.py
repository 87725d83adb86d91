"""Synthetic rosinality checkpoints in the original's exact key layout, small on disk.

Every tensor of the full 1024 px layout (all nine progression blocks, nine to_rgb and nine
from_rgb entries) is a view into one shared buffer at its own offset, so a checkpoint with
every key and shape of the original saves to a few MB, and no two tensors hold the same values
(a loader that picks the wrong block gives different numbers). The values are a fixed formula,
not an RNG, so numbers computed from them by the original code can be pinned in tests.
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.sources.rosinality import rosinality_discriminator_layout, rosinality_generator_layout

_SPREAD = 4099  # offsets are spread over this many positions


def filler(n: int, phase: float = 0.0) -> torch.Tensor:
    """Deterministic values in [-1, 1] (float32)."""
    return torch.sin(torch.arange(n, dtype=torch.float64) * 0.7 + phase).float()


def layout_state(layout: dict[str, tuple[int, ...]], phase: float = 0.0) -> dict[str, torch.Tensor]:
    """A state dict with exactly ``layout``'s keys and shapes, each a view into one shared buffer."""
    buffer = filler(max(torch.Size(s).numel() for s in layout.values()) + _SPREAD, phase)
    state = {}
    for i, (key, shape) in enumerate(layout.items()):
        numel = torch.Size(shape).numel()
        offset = (i * 131) % _SPREAD
        state[key] = buffer[offset : offset + numel].view(shape)
    return state


def generator_state(phase: float = 0.0) -> dict[str, torch.Tensor]:
    return layout_state(rosinality_generator_layout(), phase)


def discriminator_state(phase: float = 0.5) -> dict[str, torch.Tensor]:
    return layout_state(rosinality_discriminator_layout(), phase)


def training_checkpoint() -> dict:
    """train.py's checkpoint: generator (differs from g_running), discriminator, g_running, optimizers."""
    return {
        "generator": generator_state(phase=1.0),
        "discriminator": discriminator_state(),
        "g_optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "betas": (0.0, 0.99), "params": [0, 1]}]},
        "d_optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "betas": (0.0, 0.99), "params": [0, 1]}]},
        "g_running": generator_state(),
    }


def save(obj, path: Path) -> Path:
    torch.save(obj, path)
    return path


def pinned_inputs(batch: int, step: int) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """z (B, 512), per-block noise and images (B, 3, r, r) from fixed formulas (no RNG)."""
    z = torch.cos(torch.arange(batch * 512, dtype=torch.float64) * 1.3).float().view(batch, 512) * 1.5
    noise = [
        torch.sin(torch.arange(batch * 16 * 4**i, dtype=torch.float64) * 2.1 + i).float().view(batch, 1, 4 * 2**i, -1)
        for i in range(step + 1)
    ]
    size = 4 * 2**step
    images = torch.sin(torch.arange(batch * 3 * size * size, dtype=torch.float64) * 0.37).float()
    return z, noise, images.view(batch, 3, size, size)
