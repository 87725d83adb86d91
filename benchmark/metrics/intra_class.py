"""Intra-class FID: the mean over classes of FID between same-class real and generated features.

A conditional generator can match the pooled distribution while mixing classes up; per-class
FID catches that. Hyper-Modulation reports it per class (10k generated vs up to 10k real); the
mean over classes is the usual single number (Miyato & Koyama, cGANs with projection
discriminator, 2018). Each class's value is `frechet_distance` on that class's rows.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.metrics._tiles import as_features, check_finite, resolve_device
from benchmark.metrics.fid import frechet_distance


def _labels(labels, n: int, name: str) -> np.ndarray:
    labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name} must have one label per feature row ({n}), got shape {labels.shape}")
    check_finite(labels, name)
    return labels


def intra_class_fid(
    real, real_labels, fake, fake_labels, device=None, tile_size: int | None = None
) -> tuple[float, dict[int, float]]:
    """Mean and per-class FID between real and generated features of the same class.

    Args:
        real: (N, D) real features, numpy array or torch tensor.
        real_labels: (N,) integer class of each real row.
        fake: (M, D) generated features.
        fake_labels: (M,) class each generated row was conditioned on.
        device: where to compute; defaults to the inputs' device, else the CPU.
        tile_size: rows per block of the covariance accumulation; None: the device default.

    Returns:
        (mean over classes, {class: FID}) over every class present in either set. Raises
        ValueError if a class has fewer than 2 rows on one side (no covariance).
    """
    device = resolve_device(device, real, fake)
    real, fake = as_features(real, device, "real"), as_features(fake, device, "fake")  # bad rows named in the full sets
    real_labels = _labels(real_labels, len(real), "real_labels")
    fake_labels = _labels(fake_labels, len(fake), "fake_labels")
    per_class = {}
    for label in np.union1d(real_labels, fake_labels).tolist():
        real_rows = np.flatnonzero(real_labels == label)
        fake_rows = np.flatnonzero(fake_labels == label)
        if min(len(real_rows), len(fake_rows)) < 2:
            raise ValueError(
                f"class {label} has {len(real_rows)} real and {len(fake_rows)} generated rows; "
                "FID needs at least 2 of each"
            )
        real_part, fake_part = real[torch.from_numpy(real_rows)], fake[torch.from_numpy(fake_rows)]
        per_class[int(label)] = frechet_distance(real_part, fake_part, device=device, tile_size=tile_size)
    return float(np.mean(list(per_class.values()))), per_class
