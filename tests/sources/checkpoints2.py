"""Synthetic rosinality/stylegan2-pytorch weights and inputs from fixed formulas (no RNG), for pinned numbers.

The v1 helper (``checkpoints.layout_state``) fills tensors with views of one sine wave, which makes
every weight matrix rank 2: a StyleGAN2 filled that way gives nearly the same image for every z
and the same logit for every image, so pins would not test the latent path. Here each tensor
reads integer-hashed values from its own offset in a pool (exactly reproducible: int64
arithmetic only), uniform with unit variance like the original's ``randn`` initialisation, so
the filled networks behave like freshly initialised ones and their outputs depend on every input.
"""

from __future__ import annotations

import functools
import math

import torch

_MASK = 2**32 - 1
_POOL = 1_048_583  # a prime: tensors tile the pool with a period no row length divides


@functools.cache
def _pool() -> torch.Tensor:
    """_POOL values, uniform on [-sqrt 3, sqrt 3) (unit variance), from an integer hash of the index."""
    k = torch.arange(_POOL, dtype=torch.int64)
    h = (k * k + k * 40503) & _MASK
    h = (h * 1103515245 + 12345) & _MASK  # 1103515245 < 2**31, so the product stays below 2**63
    h = h ^ (h >> 13)
    h = (h * 1103515245 + 12345) & _MASK
    h = h ^ (h >> 16)
    return ((h.double() / 2**32 * 2 - 1) * math.sqrt(3)).float()


def hashed(n: int, seed: int) -> torch.Tensor:
    """n float32 values of unit variance: the hashed pool read from an offset that depends on ``seed``."""
    index = (torch.arange(n, dtype=torch.int64) + seed * 104_729) % _POOL
    return _pool()[index]


def hashed_state(layout: dict[str, tuple[int, ...]], lr_mlp: float = 0.01, seed: int = 0) -> dict[str, torch.Tensor]:
    """Values for every key of ``layout``, the i-th key from seed ``seed + i``.

    Mapping weights (``style.N.weight``) are divided by ``lr_mlp``, as rosinality stores them
    (its EqualLinear initialises randn / lr_mul and multiplies by lr_mul at forward time).
    """
    state = {}
    for i, (key, shape) in enumerate(layout.items()):
        value = hashed(math.prod(shape), seed + i).view(shape)
        if key.startswith("style.") and key.endswith(".weight"):
            value = value / lr_mlp
        state[key] = value
    return state


def parameter_layout(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Parameters only, in registration order: buffers (blur kernels, stored noise) keep their values."""
    return {k: tuple(p.shape) for k, p in net.named_parameters()}


def pinned_latents(batch: int, style_dim: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """z and a second latent for style mixing, (B, style_dim) each."""
    n = batch * style_dim
    return hashed(n, 101).view(batch, style_dim), hashed(n, 102).view(batch, style_dim)


def pinned_noise(batch: int, resolution: int) -> list[torch.Tensor]:
    """One (B, 1, r, r) map per StyledConv: 4, 8, 8, 16, 16, ... px."""
    n_noises = 2 * (int(math.log2(resolution)) - 1) - 1
    sizes = [4 * 2 ** ((i + 1) // 2) for i in range(n_noises)]
    return [hashed(batch * s * s, 200 + i).view(batch, 1, s, s) for i, s in enumerate(sizes)]


def pinned_images(batch: int, resolution: int, channels: int = 3) -> torch.Tensor:
    return hashed(batch * channels * resolution * resolution, 300).view(batch, channels, resolution, resolution)


def pinned_truncation_latent(style_dim: int = 512) -> torch.Tensor:
    """A stand-in for mean_latent: a fixed z-like vector that the test maps through the network."""
    return hashed(8 * style_dim, 400).view(8, style_dim)
