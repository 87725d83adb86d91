"""Fréchet distance between Gaussian fits of two feature sets (FID; Heusel et al., 2017).

FID is the headline number of FreezeD, MineGAN, CDC and AdAM. The reference is clean-fid's
`frechet_distance(mu1, sigma1, mu2, sigma2)`: ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2),
with the covariance of `np.cov` (divisor N - 1). clean-fid takes sqrt(S1 S2) with
`scipy.linalg.sqrtm(..., disp=False)`, an argument scipy 1.18 removed, on a non-symmetric matrix
(a Schur decomposition on the CPU). Only the trace is needed, and S1 S2 is similar to the
symmetric positive semi-definite R S2 R with R = sqrt(S1), so tr sqrt(S1 S2) is the sum of the
square roots of R S2 R's eigenvalues: two symmetric eigendecompositions in float64, which run
on the GPU as well.

`feature_statistics` is public so a caller can cache the real set's (mu, sigma) once per
dataset and score every run with `frechet_distance_from_stats`.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.metrics._tiles import (
    as_features,
    as_float64,
    matmul,
    resolve_device,
    resolve_tile_size,
    rows,
    symmetric_eigh,
    symmetric_eigvalsh,
    tiles,
)


def _statistics(features: torch.Tensor, tile_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance (np.cov's N - 1 divisor), accumulated over row tiles."""
    n, dim = features.shape
    if n < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {n}")
    ranges = tiles(n, tile_size)
    mean = sum(rows(features, start, stop).sum(dim=0) for start, stop in ranges) / n
    covariance = torch.zeros(dim, dim, dtype=torch.float64, device=features.device)
    for start, stop in ranges:
        centred = rows(features, start, stop) - mean
        covariance += matmul(centred.T, centred)
    return mean, covariance / (n - 1)


def feature_statistics(features, device=None, tile_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set, as float64 numpy arrays ready to cache.

    Args:
        features: (N, D) numpy array or torch tensor, N >= 2.
        device: where to compute; defaults to the input's device, else the CPU.
        tile_size: rows per block of the covariance accumulation (memory O(tile_size D + D^2));
            None: 2048 on the CPU, 4096 on CUDA.

    Returns:
        (mu, sigma): shapes (D,) and (D, D), equal to np.mean(x, 0) and np.cov(x, rowvar=False).
    """
    device = resolve_device(device, features)
    tile_size = resolve_tile_size(tile_size, device)
    mean, covariance = _statistics(as_features(features, device), tile_size)
    return mean.cpu().numpy(), covariance.cpu().numpy()


def _frechet_from_tensors(mu1, sigma1, mu2, sigma2) -> float:
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"statistics differ in shape: mu {tuple(mu1.shape)} vs {tuple(mu2.shape)}, "
            f"sigma {tuple(sigma1.shape)} vs {tuple(sigma2.shape)}"
        )
    eigenvalues, eigenvectors = symmetric_eigh(sigma1)
    root1 = matmul(eigenvectors * eigenvalues.clamp_min(0).sqrt(), eigenvectors.T)
    product = matmul(matmul(root1, sigma2), root1)
    product = (product + product.T) / 2  # symmetric in exact arithmetic; eigvalsh reads one half
    # Tiny negative eigenvalues are rounding of a PSD matrix; clean-fid keeps only the real part.
    trace_sqrt_product = symmetric_eigvalsh(product).clamp_min(0).sqrt().sum()
    difference = mu1 - mu2
    fid = difference @ difference + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt_product
    return float(fid)


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2, device=None) -> float:
    """FID between two Gaussians given by their statistics.

    Args:
        mu1, sigma1: mean (D,) and covariance (D, D) of the first set (e.g. cached real stats).
        mu2, sigma2: those of the second set.
        device: where to run the eigendecompositions; defaults to the inputs' device, else CPU.
    """
    device = resolve_device(device, mu1, sigma1, mu2, sigma2)
    named = {"mu1": mu1, "sigma1": sigma1, "mu2": mu2, "sigma2": sigma2}
    mu1, sigma1, mu2, sigma2 = (as_float64(value, device, name) for name, value in named.items())
    return _frechet_from_tensors(mu1, sigma1, mu2, sigma2)


def frechet_distance(real, fake, device=None, tile_size: int | None = None) -> float:
    """FID between real and generated features (lower is better).

    Args:
        real: (N, D) real features, numpy array or torch tensor.
        fake: (M, D) generated features.
        device: where to compute; defaults to the inputs' device, else the CPU.
        tile_size: rows per block of the covariance accumulation; None: the device default.
    """
    device = resolve_device(device, real, fake)
    tile_size = resolve_tile_size(tile_size, device)
    real_stats = _statistics(as_features(real, device, "real"), tile_size)
    fake_stats = _statistics(as_features(fake, device, "fake"), tile_size)
    return _frechet_from_tensors(*real_stats, *fake_stats)
