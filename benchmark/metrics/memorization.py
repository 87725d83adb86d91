"""Memorisation: do generated images sit closer to the training images than unseen real ones do?

With 10-100 training images a transferred generator can score well on FID by replaying its
training set. The test compares two nearest-neighbour distances in feature space (Euclidean):
generated -> training set, and held-out real -> training set. Held-out images are real images
the generator never saw, so their distance is what "new image of this domain" looks like; a
ratio generated / held-out below 1 means generated images are closer to the training set than
new real images are, i.e. copying (the held-out baseline follows the data-copying test of
Meehan et al., AISTATS 2020). `closest_pairs` picks the pairs to show in a grid.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.metrics._tiles import (
    as_features,
    cpu_threads,
    cross_tiles,
    merge_smallest,
    resolve_device,
    resolve_tile_size,
    rows,
    squared_distances,
    squared_norms,
    tiles,
)


def _nearest(query: torch.Tensor, reference: torch.Tensor, k: int, tile_size: int):
    if not 1 <= k <= len(reference):
        raise ValueError(f"k must be in [1, {len(reference)}] (reference size), got {k}")
    if query.shape[1] != reference.shape[1]:
        raise ValueError(f"feature sizes differ: query {query.shape[1]}, reference {reference.shape[1]}")
    query_norms, reference_norms = squared_norms(query, tile_size), squared_norms(reference, tile_size)
    values = torch.full((len(query), k), float("inf"), dtype=torch.float64, device=query.device)
    indices = torch.zeros((len(query), k), dtype=torch.int64, device=query.device)
    for (q0, q1), (r0, r1), query_tile, reference_tile in cross_tiles(query, reference, tile_size):
        block = squared_distances(query_tile, reference_tile, query_norms[q0:q1], reference_norms[r0:r1])
        values[q0:q1], indices[q0:q1] = merge_smallest(values[q0:q1], indices[q0:q1], block, r0, k)
    # The expansion |q|^2 - 2 q.r + |r|^2 loses ~1e-7 |q| to cancellation, which would hide an
    # exact copy (distance 0). Recompute the k chosen distances directly: O(N k D).
    for q0, q1 in tiles(len(query), tile_size):
        neighbours = reference[indices[q0:q1]].to(torch.float64)
        values[q0:q1] = (rows(query, q0, q1)[:, None, :] - neighbours).norm(dim=2)
    return values, indices


def nearest_neighbours(
    query, reference, k: int = 1, device=None, tile_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest reference rows of every query row, by Euclidean distance.

    Args:
        query: (N, D) features to look up (e.g. generated).
        reference: (M, D) features to search (e.g. training set).
        k: neighbours per query row, 1 <= k <= M.
        device: where to compute; defaults to the inputs' device, else the CPU.
        tile_size: rows per block, memory O(N k + tile_size^2); None: 2048 on the CPU, 4096 on CUDA.

    Returns:
        (distances, indices): float64 and int64 numpy arrays of shape (N, k), nearest first,
        like sklearn's NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(query).
    """
    device = resolve_device(device, query, reference)
    tile_size = resolve_tile_size(tile_size, device)
    with cpu_threads(device):
        distances, indices = _nearest(
            as_features(query, device, "query"), as_features(reference, device, "reference"), k, tile_size
        )
        return distances.cpu().numpy(), indices.cpu().numpy()


def memorization(train, fake, heldout=None, device=None, tile_size: int | None = None) -> dict[str, float]:
    """Mean nearest-neighbour distances to the training set, and their ratio.

    Args:
        train: (N, D) features of the images the generator was trained on.
        fake: (M, D) generated features.
        heldout: optional (H, D) features of real images kept out of training.
        device: where to compute; defaults to the inputs' device, else the CPU.
        tile_size: rows per block; None: the device default.

    Returns:
        {"fake_to_train": mean distance of each generated row to its nearest training row};
        with `heldout`, also "heldout_to_train" (the same for held-out rows) and
        "ratio" = fake_to_train / heldout_to_train (below 1 suggests copying).
    """
    device = resolve_device(device, train, fake, heldout)
    tile_size = resolve_tile_size(tile_size, device)
    with cpu_threads(device):
        train = as_features(train, device, "train")
        fake_distances, _ = _nearest(as_features(fake, device, "fake"), train, 1, tile_size)
        result = {"fake_to_train": fake_distances.mean().item()}
        if heldout is not None:
            heldout_distances, _ = _nearest(as_features(heldout, device, "heldout"), train, 1, tile_size)
            result["heldout_to_train"] = heldout_distances.mean().item()
            if result["heldout_to_train"] == 0:
                raise ValueError("every held-out feature equals a training feature: the splits overlap")
            result["ratio"] = result["fake_to_train"] / result["heldout_to_train"]
        return result


def closest_pairs(fake, train, n: int = 16, device=None, tile_size: int | None = None) -> list[tuple[int, int, float]]:
    """The n generated rows closest to the training set, for a grid of suspected copies.

    Generated features come first, as the query does in `nearest_neighbours(query, reference)`.

    Args:
        fake: (M, D) generated features.
        train: (N, D) training features.
        n: how many pairs (fewer if M < n).
        device: where to compute; defaults to the inputs' device, else the CPU.
        tile_size: rows per block; None: the device default.

    Returns:
        [(fake index, nearest train index, distance)], closest first.
    """
    device = resolve_device(device, fake, train)
    fake, train = as_features(fake, device, "fake"), as_features(train, device, "train")  # errors name them so
    distances, indices = nearest_neighbours(fake, train, k=1, device=device, tile_size=tile_size)
    order = np.argsort(distances[:, 0], kind="stable")[:n]
    return [(int(i), int(indices[i, 0]), float(distances[i, 0])) for i in order]
