"""Precision, recall, density and coverage (Naeem et al., ICML 2020), in tiles.

Hyper-Modulation reports these per class with k = 5, and they separate fidelity (precision,
density) from diversity (recall, coverage) where FID blends them. The reference is the `prdc`
package's `compute_prdc(real_features, fake_features, nearest_k)`; this module returns the
same numbers without its three N x N matrices (about 40 GB at 50k): one walk over real x real
and one over fake x fake keep each point's k-NN radius, and one walk over real x fake counts.

Definitions as in prdc: a point's radius is the (k+1)-th smallest distance to its own set with
itself included (distance 0), i.e. its k-th nearest other point; a fake point is "inside" real
point i when their distance is strictly below i's radius. Distances follow sklearn's precision:
float64, rounded to float32 when both inputs are float32 (what prdc compares), so ties and
near-ties resolve as in the reference.
"""

from __future__ import annotations

import logging

import torch

from benchmark.metrics._tiles import (
    DEFAULT_TILE_SIZE,
    as_features,
    cpu_threads,
    cross_tiles,
    euclidean_distances,
    is_float32,
    merge_smallest,
    resolve_device,
    resolve_tile_size,
    squared_norms,
    upper_tiles,
)

log = logging.getLogger(__name__)


def kth_neighbour_radii(
    features: torch.Tensor, k: int, round_to_float32: bool, tile_size: int = DEFAULT_TILE_SIZE
) -> torch.Tensor:
    """Each point's distance to its k-th nearest other point in the same set.

    Walks only the upper half of the symmetric distance matrix; each block updates both its
    rows' and its columns' running k+1 smallest distances.

    Args:
        features: (N, D) features on the compute device, N > k.
        k: neighbour rank (prdc's nearest_k).
        round_to_float32: use sklearn's float32 distance rounding.
        tile_size: rows per block.
    """
    n = features.shape[0]
    if n <= k:
        raise ValueError(f"need more than k={k} points to find a k-th neighbour, got {n}")
    norms = squared_norms(features, tile_size)
    dtype = torch.float32 if round_to_float32 else torch.float64
    smallest = torch.full((n, k + 1), float("inf"), dtype=dtype, device=features.device)
    for (r0, r1), (c0, c1), row_tile, column_tile in upper_tiles(features, tile_size):
        block = euclidean_distances(row_tile, column_tile, norms[r0:r1], norms[c0:c1], round_to_float32)
        if r0 == c0:
            block.fill_diagonal_(0)  # sklearn zeroes self-distances; rounding may not
        smallest[r0:r1], _ = merge_smallest(smallest[r0:r1], None, block, c0, k + 1)
        if r0 != c0:
            smallest[c0:c1], _ = merge_smallest(smallest[c0:c1], None, block.T, r0, k + 1)
    return smallest[:, k]


def prdc(
    real, fake, k: int = 5, device=None, tile_size: int | None = None, return_zero_radii: bool = False
) -> dict[str, float] | tuple[dict[str, float], int]:
    """Precision, recall, density and coverage of fake features against real ones.

    A point whose k nearest neighbours all coincide with it (duplicated features) has a k-NN
    radius of 0, and its ball holds nothing, since "inside" is a strict inequality: with
    ``np.ones((64, 16))`` for both sets all four values are 0 for a generator that reproduces the
    data exactly. The values stay those of the prdc package, which does the same, but any zero
    radius is logged as a warning with its count, and ``return_zero_radii`` hands the count to
    the caller (the evaluator records it, and tables explain it in a footnote).

    Args:
        real: (N, D) real features, numpy array or torch tensor.
        fake: (M, D) generated features.
        k: nearest_k of the reference (5 in Naeem et al. and Hyper-Modulation).
        device: where to compute; defaults to the inputs' device, else the CPU.
        tile_size: rows per block, memory O((N + M) k + tile_size^2) beyond the inputs;
            None: 2048 on the CPU, 4096 on CUDA.
        return_zero_radii: also return how many k-NN radii (real and generated together) are 0.

    Returns:
        dict with precision, recall, density, coverage, equal to
        prdc.compute_prdc(real, fake, nearest_k=k); with ``return_zero_radii``, (that dict, count).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    device = resolve_device(device, real, fake)
    tile_size = resolve_tile_size(tile_size, device)
    with cpu_threads(device):
        real_round = is_float32(real)
        fake_round = is_float32(fake)
        cross_round = real_round and fake_round
        real = as_features(real, device, "real")
        fake = as_features(fake, device, "fake")
        if real.shape[1] != fake.shape[1]:
            raise ValueError(f"feature sizes differ: real {real.shape[1]}, fake {fake.shape[1]}")

        real_radii = kth_neighbour_radii(real, k, real_round, tile_size)
        fake_radii = kth_neighbour_radii(fake, k, fake_round, tile_size)
        zero_real, zero_fake = int((real_radii == 0).sum()), int((fake_radii == 0).sum())
        if zero_real or zero_fake:
            log.warning(
                "PRDC: %d of %d real and %d of %d generated k-NN radii (k=%d) are 0, from duplicated features; "
                "such a ball holds nothing, so precision, recall, density and coverage are lower than the sets' "
                "overlap suggests (as in the prdc package)",
                zero_real, len(real), zero_fake, len(fake), k,
            )  # fmt: skip
        if cross_round:
            real_radii, fake_radii = real_radii.float(), fake_radii.float()
        else:
            real_radii, fake_radii = real_radii.double(), fake_radii.double()

        real_norms, fake_norms = squared_norms(real, tile_size), squared_norms(fake, tile_size)
        fake_inside_real = torch.zeros(len(fake), dtype=torch.bool, device=device)  # precision
        real_covered = torch.zeros(len(real), dtype=torch.bool, device=device)  # coverage
        real_inside_fake = torch.zeros(len(real), dtype=torch.bool, device=device)  # recall
        density_count = torch.zeros((), dtype=torch.int64, device=device)
        for (r0, r1), (f0, f1), real_tile, fake_tile in cross_tiles(real, fake, tile_size):
            distances = euclidean_distances(real_tile, fake_tile, real_norms[r0:r1], fake_norms[f0:f1], cross_round)
            within_real_ball = distances < real_radii[r0:r1, None]
            fake_inside_real[f0:f1] |= within_real_ball.any(dim=0)
            real_covered[r0:r1] |= within_real_ball.any(dim=1)
            density_count += within_real_ball.sum()
            real_inside_fake[r0:r1] |= (distances < fake_radii[None, f0:f1]).any(dim=1)

        values = {
            "precision": fake_inside_real.double().mean().item(),
            "recall": real_inside_fake.double().mean().item(),
            "density": density_count.item() / (k * len(fake)),
            "coverage": real_covered.double().mean().item(),
        }
        return (values, zero_real + zero_fake) if return_zero_radii else values
