"""Metrics on feature arrays: FID, KID, KMMD, precision/recall/density/coverage, intra-class FID
and memorisation.

Each is a plain function of (N, D) numpy arrays or torch tensors that runs on the device it is
given (CUDA or CPU) in tiles of at most `tile_size` rows, so no N x N matrix is ever held. On
the same float64 features they match their references (clean-fid's frechet_distance and
kernel_distance, the prdc package) to 1e-6 relative; prdc also on float32 features, whose
distance rounding it reproduces. On float32 features clean-fid computes means and KID kernels
in float32, and differs from these float64 results by up to ~1e-5 relative.

Every one refuses NaN or inf in its input with a one-line ValueError naming the argument and the
first bad row (`check_finite`): a NaN otherwise gives an eigensolver failure in FID and plausible
numbers in PRDC and KID.
"""

from benchmark.metrics._tiles import check_finite, non_finite_rows
from benchmark.metrics.fid import feature_statistics, frechet_distance, frechet_distance_from_stats
from benchmark.metrics.intra_class import intra_class_fid
from benchmark.metrics.kid import kid
from benchmark.metrics.kmmd import kmmd
from benchmark.metrics.memorization import closest_pairs, memorization, nearest_neighbours
from benchmark.metrics.prdc import prdc

__all__ = [
    "check_finite",
    "closest_pairs",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_stats",
    "intra_class_fid",
    "kid",
    "kmmd",
    "memorization",
    "nearest_neighbours",
    "non_finite_rows",
    "prdc",
]
