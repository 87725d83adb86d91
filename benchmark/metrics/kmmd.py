"""Kernel MMD with a Gaussian kernel (KMMD), as reported by BSA and MineGAN.

Noguchi & Harada (ICCV 2019, "Image generation from small datasets via batch statistics
adaptation") and MineGAN's tables report KMMD on Inception features, lower is better; no metric
library ships it, and the BSA repository (nogu-atsu/small-dataset-image-generation, every
commit) holds training code only. Kernel MMD as a GAN metric comes from Xu et al., "An
empirical study on evaluation metrics of generative adversarial networks" (2018), whose code
(xuqiantong/GAN-Metrics, metric.py `mmd`) fixes the kernel as

    k(a, b) = exp(-||a - b||^2 / (2 sigma^2)),  sigma^2 = mean over all real pairs of ||x_i - x_j||^2

and uses the biased (V-statistic) estimate mean K_xx + mean K_yy - 2 mean K_xy. This module
uses that bandwidth rule by default. It depends on the real set only, so every method scored on
one dataset is measured with the same kernel (a median heuristic over the pooled sets would
change the kernel with each generator), and it has a closed form,
mean_ij ||x_i - x_j||^2 = 2 mean_i ||x_i - mean(x)||^2, that costs O(N D) rather than N^2.

Returned: the biased estimate of the squared MMD, clamped at 0 (it is a squared RKHS norm, so
negative values are rounding). It is exactly 0 for identical sets. Xu et al. report its square
root; take `kmmd(...) ** 0.5` to compare with their numbers. Kernel sums are accumulated over
float64 tiles, memory O(tile_size^2).
"""

from __future__ import annotations

import torch

from benchmark.metrics._tiles import (
    DEFAULT_TILE_SIZE,
    as_features,
    cpu_threads,
    cross_tiles,
    resolve_device,
    resolve_tile_size,
    rows,
    squared_distances,
    squared_norms,
    tiles,
    upper_tiles,
)


def mean_pairwise_squared_distance(features: torch.Tensor, tile_size: int = DEFAULT_TILE_SIZE) -> float:
    """Mean of ||x_i - x_j||^2 over all ordered pairs (i, j), self-pairs included."""
    ranges = tiles(len(features), tile_size)
    mean = sum(rows(features, start, stop).sum(dim=0) for start, stop in ranges) / len(features)
    spread = sum(((rows(features, start, stop) - mean) ** 2).sum() for start, stop in ranges)
    return float(2 * spread / len(features))


def _gaussian_kernel_sum(a, b, a_sq, b_sq, scale: float, zero_diagonal: bool) -> torch.Tensor:
    distances = squared_distances(a, b, a_sq, b_sq)
    if zero_diagonal:
        distances.fill_diagonal_(0)  # k(x, x) = 1 exactly, whatever the expansion's rounding
    return distances.mul_(-scale).exp_().sum()


def _mean_kernel_within(x: torch.Tensor, scale: float, tile_size: int) -> torch.Tensor:
    norms = squared_norms(x, tile_size)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for (r0, r1), (c0, c1), row_tile, column_tile in upper_tiles(x, tile_size):
        block_sum = _gaussian_kernel_sum(row_tile, column_tile, norms[r0:r1], norms[c0:c1], scale, r0 == c0)
        total += block_sum if r0 == c0 else 2 * block_sum
    return total / len(x) ** 2


def _mean_kernel_between(x: torch.Tensor, y: torch.Tensor, scale: float, tile_size: int) -> torch.Tensor:
    x_norms, y_norms = squared_norms(x, tile_size), squared_norms(y, tile_size)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for (r0, r1), (c0, c1), x_tile, y_tile in cross_tiles(x, y, tile_size):
        total += _gaussian_kernel_sum(x_tile, y_tile, x_norms[r0:r1], y_norms[c0:c1], scale, False)
    return total / (len(x) * len(y))


def kmmd(real, fake, bandwidth: float | None = None, device=None, tile_size: int | None = None) -> float:
    """Squared Gaussian-kernel MMD between real and generated features (lower is better).

    Args:
        real: (N, D) real features, numpy array or torch tensor.
        fake: (M, D) generated features.
        bandwidth: kernel width sigma in feature units; None uses Xu et al.'s rule,
            sigma^2 = mean squared distance between real features (see the module docstring).
        device: where to compute; defaults to the inputs' device, else the CPU.
        tile_size: rows per block of the kernel sums; None: 2048 on the CPU, 4096 on CUDA.
    """
    device = resolve_device(device, real, fake)
    tile_size = resolve_tile_size(tile_size, device)
    with cpu_threads(device):
        real = as_features(real, device, "real")
        fake = as_features(fake, device, "fake")
        if real.shape[1] != fake.shape[1]:
            raise ValueError(f"feature sizes differ: real {real.shape[1]}, fake {fake.shape[1]}")
        if bandwidth is None:
            sigma_squared = mean_pairwise_squared_distance(real, tile_size)
            if sigma_squared == 0:
                raise ValueError("all real features are identical; pass an explicit bandwidth")
        elif bandwidth > 0:
            sigma_squared = float(bandwidth) ** 2
        else:
            raise ValueError(f"bandwidth must be positive, got {bandwidth}")
        scale = 1 / (2 * sigma_squared)

        mmd_squared = (
            _mean_kernel_within(real, scale, tile_size)
            + _mean_kernel_within(fake, scale, tile_size)
            - 2 * _mean_kernel_between(real, fake, scale, tile_size)
        )
        return max(float(mmd_squared), 0.0)
