"""Intra-cluster LPIPS: the diversity score of few-shot adaptation (Ojha et al., CDC, CVPR 2021).

Definition (``shared/PROTOCOLS.md``, "Intra-cluster LPIPS"; higher is more diverse):

1. Generate images from fixed seeds (1,000 in CDC, AdAM and RICK; here ``eval.n_fake`` of the
   evaluation's fixed latents).
2. Assign each generated image to the training image at the smallest LPIPS-VGG (v0.1) distance:
   one cluster per training image (10 for a 10-shot target). Ties go to the first training image.
3. Keep at most ``max_per_cluster`` (50) images per cluster: CDC keeps a random 50; here a seeded
   random 50 (``torch.randperm`` with a generator seeded by ``seed`` and the cluster's index), so
   the value is reproducible. A cluster of 50 or fewer keeps all of its images.
4. In each cluster of at least 2 images, the mean LPIPS over all unordered pairs (i < j; LPIPS
   is symmetric). Clusters with fewer than 2 images are dropped.
5. The score is the mean over the kept clusters; the spread is their standard deviation
   (population, ``np.std``'s ddof=0, as CDC's ``feat_cluster.py`` reports ``np.std``).

Images are compared at the resolution they are given (CDC resizes to 256 px, which a 256 px
generator already is). The distance is ``benchmark.features.lpips_vgg.LPIPSDistance``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

MAX_PER_CLUSTER = 50


@dataclass
class IntraLPIPS:
    """Intra-cluster LPIPS and what it rests on.

    Args:
        mean: mean over kept clusters of the mean pairwise LPIPS within each.
        std: population standard deviation of the per-cluster values.
        per_cluster: training-image index -> its cluster's mean pairwise LPIPS (kept clusters only).
        sizes: training-image index -> how many generated images were nearest to it (before the cap).
    """

    mean: float
    std: float
    per_cluster: dict[int, float] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)


def assign_clusters(fake_images: torch.Tensor, train_images: torch.Tensor, distance, batch_size: int = 64):
    """Index (M,) of the training image at the smallest LPIPS from each generated image."""
    distances = distance.pairwise(fake_images, train_images, batch_size=batch_size)
    return distances.argmin(dim=1)


def cluster_members(assignment: torch.Tensor, cluster: int, max_per_cluster: int, seed: int) -> torch.Tensor:
    """The generated images kept for one cluster: all of them, or a seeded random ``max_per_cluster``."""
    members = torch.nonzero(assignment == cluster).flatten()
    if len(members) > max_per_cluster:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + cluster)
        members = members[torch.randperm(len(members), generator=generator)[:max_per_cluster]].sort().values
    return members


def mean_pairwise_lpips(images: torch.Tensor, distance, batch_size: int = 64) -> float:
    """Mean LPIPS over all unordered pairs of ``images`` (at least 2)."""
    n = len(images)
    i, j = torch.triu_indices(n, n, offset=1)
    device = next(distance.parameters()).device
    values = []
    with torch.no_grad():
        for start in range(0, len(i), batch_size):
            a, b = i[start : start + batch_size], j[start : start + batch_size]
            values.append(distance(images[a].to(device), images[b].to(device)).double().cpu())
    return float(torch.cat(values).mean())


def intra_cluster_lpips(
    fake_images: torch.Tensor,
    train_images: torch.Tensor,
    distance,
    max_per_cluster: int = MAX_PER_CLUSTER,
    seed: int = 0,
    batch_size: int = 64,
) -> IntraLPIPS:
    """Intra-cluster LPIPS of generated images around the training images (definition in the module docstring).

    Args:
        fake_images: (M, C, H, W) generated images in [-1, 1].
        train_images: (K, C, H, W) the target's training images in [-1, 1], same size; one cluster each.
        distance: an ``LPIPSDistance`` (or any module mapping two (B, C, H, W) batches to (B,) distances
            with a ``pairwise`` method).
        max_per_cluster: images kept per cluster (50 in CDC).
        seed: seeds the choice of the kept images of a larger cluster.
        batch_size: image pairs per LPIPS call.

    Raises:
        ValueError: no cluster has 2 images (fewer generated images than needed to form a pair).
    """
    if fake_images.shape[1:] != train_images.shape[1:]:
        raise ValueError(
            f"generated images {tuple(fake_images.shape[1:])} and training images "
            f"{tuple(train_images.shape[1:])} differ in shape"
        )
    assignment = assign_clusters(fake_images, train_images, distance, batch_size)
    sizes = torch.bincount(assignment, minlength=len(train_images)).tolist()
    per_cluster = {}
    for cluster, size in enumerate(sizes):
        if size < 2:
            continue  # a pair needs two images: the cluster is dropped, as in CDC
        members = cluster_members(assignment, cluster, max_per_cluster, seed)
        per_cluster[cluster] = mean_pairwise_lpips(fake_images[members], distance, batch_size)
    if not per_cluster:
        raise ValueError(
            f"intra-cluster LPIPS: no training image is nearest to 2 of the {len(fake_images)} generated images"
        )
    values = np.array(list(per_cluster.values()), dtype=np.float64)
    return IntraLPIPS(float(values.mean()), float(values.std()), per_cluster, dict(enumerate(sizes)))
