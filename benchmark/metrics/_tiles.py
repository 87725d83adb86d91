"""Shared machinery for the metrics: features on a device, and pairwise work in float64 tiles.

Every pairwise metric here (PRDC, KMMD, KID, nearest neighbours) needs sums or order statistics
over N x M distances. Materialising that matrix costs 20 GB at N = M = 50k, so the metrics walk
it in `tile_size` x `tile_size` blocks and keep only per-row summaries. Features stay on the
device in their own precision and each tile is cast to float64 when used (`rows`), so memory is
the input plus O(N k + tile_size^2) rather than a float64 copy of every set.

Products run in float64 because the references (sklearn's distances behind prdc, clean-fid's
covariances) are float64, and an H100 runs float64 GEMM at tens of TFLOP/s. On the CPU, GEMM
and symmetric eigendecompositions go through numpy: torch's CPU wheel links MKL, which on this
project's AMD hosts ran float64 GEMM at 35-70 GFLOP/s against ~100 for numpy's OpenBLAS, and a
2048 x 2048 eigh in 1.8-4 s against 1 s (2 cores). Meanwhile torch's element-wise work runs on
one thread (`cpu_threads`): OpenBLAS workers spin for a while after each GEMM, and a
multi-threaded torch op started in that window waits for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

DEFAULT_TILE_SIZE = 2048  # CPU: a 2048^3 float64 GEMM keeps OpenBLAS near peak; a block is 32 MB
CUDA_TILE_SIZE = 4096  # GPU: a quarter of the launches per walk; a block is 128 MB


def resolve_device(device: str | torch.device | None, *arrays) -> torch.device:
    """The device to compute on: the one asked for, else that of the first tensor, else the CPU."""
    if device is not None:
        return torch.device(device)
    for array in arrays:
        if isinstance(array, torch.Tensor):
            return array.device
    return torch.device("cpu")


def resolve_tile_size(tile_size: int | None, device: torch.device) -> int:
    """The tile size asked for, else the default for the device."""
    if tile_size is not None:
        return tile_size
    return CUDA_TILE_SIZE if device.type == "cuda" else DEFAULT_TILE_SIZE


@contextmanager
def cpu_threads(device: torch.device):
    """Run torch on one thread while computing on the CPU (see the module docstring), then restore."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def is_float32(array) -> bool:
    """Whether features arrive as float32, which decides prdc's (sklearn's) distance rounding."""
    return array.dtype in (np.float32, torch.float32)


def as_features(array, device: torch.device, name: str = "features") -> torch.Tensor:
    """A (N, D) float32 or float64 tensor on `device`, from numpy or torch, without a copy if possible.

    float32 and float64 keep their precision (float32 crosses the bus at half the size); other
    dtypes become float64. NaN or inf anywhere is refused (see `check_finite`).
    """
    tensor = torch.as_tensor(array).detach()
    if tensor.ndim != 2 or tensor.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {tuple(tensor.shape)}")
    tensor = tensor.to(device)
    tensor = tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.to(torch.float64)
    check_finite(tensor, name)
    return tensor


def non_finite_rows(array) -> torch.Tensor:
    """Indices of the rows (entries, for a vector) of `array` that hold NaN or inf, in order."""
    tensor = torch.as_tensor(array).detach()
    if not tensor.is_floating_point():
        return torch.zeros(0, dtype=torch.int64)
    finite = torch.isfinite(tensor)
    if finite.ndim > 1:
        finite = finite.flatten(1).all(dim=1)
    return torch.nonzero(~finite).flatten().cpu()


def check_finite(array, name: str) -> None:
    """Refuse NaN or inf with a one-line ValueError naming the array and its first bad row.

    Without this check one NaN does not fail loudly: FID's eigendecomposition stops with
    "Eigenvalues did not converge", while PRDC and KID return normal-looking numbers, since a
    comparison with NaN is simply false.
    """
    bad = non_finite_rows(array)
    if len(bad):
        unit, one = ("entries", "entry") if torch.as_tensor(array).ndim == 1 else ("rows", "row")
        raise ValueError(
            f"'{name}' holds NaN or inf in {len(bad)} of {len(array)} {unit}, the first at {one} {int(bad[0])}; "
            "metrics need finite input"
        )


def rows(features: torch.Tensor, start: int, stop: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Rows [start, stop) of a feature set, in float64 unless asked, as a fresh copy.

    Copied, never a view: a diagonal block then multiplies two buffers rather than one buffer by
    itself, which BLAS may round differently (seen here: 1 ulp), and a fake copy of a real point
    must give bitwise the distances the point itself gives, or an exact tie at a k-NN radius
    breaks either way. The copy is O(rows x D) beside the block's O(rows^2 x D) product.
    """
    return features[start:stop].to(dtype, copy=True)


def as_float64(array, device: torch.device, name: str = "array") -> torch.Tensor:
    """Any array-like (vector or matrix) as a float64 tensor on `device`; NaN or inf is refused."""
    tensor = torch.as_tensor(array).detach().to(device).to(torch.float64)
    check_finite(tensor, name)
    return tensor


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b; CPU tensors go through numpy's BLAS (see the module docstring for why)."""
    if a.device.type == "cpu":
        return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))
    return a @ b


def symmetric_eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix; numpy's LAPACK on the CPU."""
    if matrix.device.type == "cpu":
        values, vectors = np.linalg.eigh(matrix.numpy())
        return torch.from_numpy(values), torch.from_numpy(vectors)
    return torch.linalg.eigh(matrix)


def symmetric_eigvalsh(matrix: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of a symmetric matrix; numpy's LAPACK on the CPU."""
    if matrix.device.type == "cpu":
        return torch.from_numpy(np.linalg.eigvalsh(matrix.numpy()))
    return torch.linalg.eigvalsh(matrix)


def squared_norms(x: torch.Tensor, tile_size: int = DEFAULT_TILE_SIZE) -> torch.Tensor:
    """Row-wise squared Euclidean norms in float64, a tile of rows at a time."""
    parts = []
    for start, stop in tiles(len(x), tile_size):
        part = rows(x, start, stop)
        parts.append((part * part).sum(dim=1))
    return torch.cat(parts)


def squared_distances(a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 by sklearn's expansion, clamped at 0.

    The two norms are added first so that the (i, j) and (j, i) entries are bitwise equal: a
    symmetric walk that fills one half from the other then agrees with a full computation,
    which matters for the exact ties that duplicated points create.
    """
    return matmul(a, b.T).mul_(-2).add_(a_sq[:, None] + b_sq[None, :]).clamp_min_(0)


def euclidean_distances(
    a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor, round_to_float32: bool
) -> torch.Tensor:
    """Euclidean distances with sklearn's precision semantics.

    For float32 inputs sklearn computes squared distances in float64, stores them as float32
    and takes the square root in float32; prdc compares those float32 values, so near-ties
    resolve by float32 rounding. `round_to_float32` reproduces that; otherwise all is float64.
    """
    distances = squared_distances(a, b, a_sq, b_sq)
    if round_to_float32:
        distances = distances.to(torch.float32)
    return distances.sqrt_()


def tiles(n: int, tile_size: int) -> list[tuple[int, int]]:
    """[start, stop) row ranges of at most `tile_size` rows covering range(n)."""
    if tile_size < 1:
        raise ValueError(f"tile_size must be positive, got {tile_size}")
    return [(start, min(start + tile_size, n)) for start in range(0, n, tile_size)]


def upper_tiles(x: torch.Tensor, tile_size: int, dtype: torch.dtype = torch.float64) -> Iterator[tuple]:
    """The upper half of x's self-pairs as ((r0, r1), (c0, c1), row tile, column tile), c0 >= r0.

    Tiles come in `dtype`; a row tile is cast once for its whole row of blocks.
    """
    ranges = tiles(len(x), tile_size)
    for i, (r0, r1) in enumerate(ranges):
        row_tile = rows(x, r0, r1, dtype)
        for c0, c1 in ranges[i:]:
            # A separate column tile even on the diagonal (see `rows`).
            yield (r0, r1), (c0, c1), row_tile, rows(x, c0, c1, dtype)


def cross_tiles(
    x: torch.Tensor, y: torch.Tensor, tile_size: int, dtype: torch.dtype = torch.float64
) -> Iterator[tuple]:
    """All blocks of x against y as ((r0, r1), (c0, c1), x tile, y tile), in `dtype`."""
    for r0, r1 in tiles(len(x), tile_size):
        row_tile = rows(x, r0, r1, dtype)
        for c0, c1 in tiles(len(y), tile_size):
            yield (r0, r1), (c0, c1), row_tile, rows(y, c0, c1, dtype)


def merge_smallest(
    values: torch.Tensor, indices: torch.Tensor | None, block: torch.Tensor, offset: int, k: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Merge a block of candidate distances into each row's running k smallest (ascending).

    Args:
        values: (rows, k) running smallest distances, +inf where not yet filled.
        indices: (rows, k) their column indices, or None when only values are needed.
        block: (rows, cols) new distances, whose column 0 is global column `offset`.
        offset: global index of the block's first column.
        k: how many to keep.
    """
    keep = min(k, block.shape[1])
    block_values, block_indices = block.topk(keep, dim=1, largest=False)
    merged = torch.cat([values, block_values.to(values.dtype)], dim=1)
    values, order = merged.topk(k, dim=1, largest=False, sorted=True)
    if indices is None:
        return values, None
    merged_indices = torch.cat([indices, block_indices + offset], dim=1)
    return values, merged_indices.gather(1, order)
