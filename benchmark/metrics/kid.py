"""Kernel Inception Distance (Binkowski et al., 2018), as clean-fid computes it.

KID is an unbiased estimate of the squared MMD under the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets; unlike FID it has no bias that grows
as the sample shrinks, which matters for few-shot targets. The reference is clean-fid's
`kernel_distance(real, fake, num_subsets, max_subset_size)`, and this draws the same subsets:
for each subset, m fake rows then m real rows without replacement, from a legacy
`np.random.RandomState(seed)`. So `kid(real, fake, seed=s)` equals clean-fid's value after
`np.random.seed(s)`.

Precision: clean-fid computes everything in the features' dtype; for float32 features its
kernel sums lose 1e-6 to 1e-3 relative, the more the smaller KID is (measured against the same
formula in float64). Here the kernel values are always summed in float64. The Gram products
run in float64, except for float32 features on the CPU, where float32 products (what clean-fid
does) keep the time at clean-fid's (float64 ones took ~1.4x as long) and stay within ~1e-10
absolute of the float64 result. On CUDA they stay float64: FP64 tensor
cores on an H100 match IEEE float32 throughput, and a global TF32 setting cannot leak in.
Each subset's kernel sums are accumulated tile by tile, so memory is O(tile_size^2).
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.metrics._tiles import (
    as_features,
    cpu_threads,
    cross_tiles,
    is_float32,
    matmul,
    resolve_device,
    resolve_tile_size,
    upper_tiles,
)


def subset_indices(n_real: int, n_fake: int, num_subsets: int, subset_size: int, seed: int):
    """The (fake, real) row indices of each subset, in clean-fid's order of RNG calls."""
    rng = np.random.RandomState(seed)
    for _ in range(num_subsets):
        fake_rows = rng.choice(n_fake, subset_size, replace=False)
        real_rows = rng.choice(n_real, subset_size, replace=False)
        yield fake_rows, real_rows


def _cubic_kernel_sum(a: torch.Tensor, b: torch.Tensor, skip_diagonal: bool = False) -> torch.Tensor:
    """Sum of (a_i.b_j / d + 1)^3 over one block in float64, without the i == j terms if asked."""
    kernel = matmul(a, b.T).to(torch.float64).div_(a.shape[1]).add_(1).pow_(3)
    total = kernel.sum()
    return total - kernel.diagonal().sum() if skip_diagonal else total


def _off_diagonal_sum(x: torch.Tensor, product_dtype: torch.dtype, tile_size: int) -> torch.Tensor:
    """Sum of k(x_i, x_j) over i != j, visiting only the upper half of the kernel matrix."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for (r0, _), (c0, _), row_tile, column_tile in upper_tiles(x, tile_size, product_dtype):
        on_diagonal = r0 == c0
        block_sum = _cubic_kernel_sum(row_tile, column_tile, skip_diagonal=on_diagonal)
        total += block_sum if on_diagonal else 2 * block_sum
    return total


def _cross_sum(x: torch.Tensor, y: torch.Tensor, product_dtype: torch.dtype, tile_size: int) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for _, _, x_tile, y_tile in cross_tiles(x, y, tile_size, product_dtype):
        total += _cubic_kernel_sum(x_tile, y_tile)
    return total


def kid(
    real,
    fake,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
    device=None,
    tile_size: int | None = None,
) -> float:
    """KID between real and generated features (lower is better; can be slightly negative).

    Args:
        real: (N, D) real features, numpy array or torch tensor.
        fake: (M, D) generated features.
        num_subsets: number of random subsets averaged (clean-fid's default 100).
        max_subset_size: subset size cap; the size is min(N, M, max_subset_size).
        seed: seed of the subset draws; same seed, same subsets as clean-fid after np.random.seed.
        device: where to compute; defaults to the inputs' device, else the CPU.
        tile_size: rows per block of each subset's kernel matrices; None: the device default.
    """
    device = resolve_device(device, real, fake)
    tile_size = resolve_tile_size(tile_size, device)
    with cpu_threads(device):
        float32_products = device.type == "cpu" and is_float32(real) and is_float32(fake)
        product_dtype = torch.float32 if float32_products else torch.float64
        real = as_features(real, device, "real")
        fake = as_features(fake, device, "fake")
        if real.shape[1] != fake.shape[1]:
            raise ValueError(f"feature sizes differ: real {real.shape[1]}, fake {fake.shape[1]}")
        m = min(len(real), len(fake), max_subset_size)
        if m < 2:
            raise ValueError(f"KID needs subsets of at least 2 points, got {m}")

        total = torch.zeros((), dtype=torch.float64, device=device)
        for fake_rows, real_rows in subset_indices(len(real), len(fake), num_subsets, m, seed):
            x = fake[torch.from_numpy(fake_rows).to(device)]
            y = real[torch.from_numpy(real_rows).to(device)]
            within = _off_diagonal_sum(x, product_dtype, tile_size) + _off_diagonal_sum(y, product_dtype, tile_size)
            total += within / (m - 1) - 2 * _cross_sum(x, y, product_dtype, tile_size) / m
        return float(total / num_subsets / m)
