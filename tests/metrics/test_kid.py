"""KID against clean-fid's kernel_distance drawing the same subsets."""

import cleanfid.fid
import numpy as np
import pytest
import torch

from benchmark.metrics import kid


def _features(seed, n_real=300, n_fake=260, dim=32, dtype=np.float64):
    rng = np.random.default_rng(seed)
    real = rng.gamma(0.6, 0.6, (n_real, dim))  # non-negative, like pooled Inception features
    fake = rng.gamma(0.6, 0.7, (n_fake, dim))
    return real.astype(dtype), fake.astype(dtype)


def _cleanfid_kid(real, fake, seed, **kwargs):
    np.random.seed(seed)  # clean-fid draws its subsets from the global legacy RNG
    return cleanfid.fid.kernel_distance(real, fake, **kwargs)


@pytest.mark.parametrize(
    ("seed", "num_subsets", "max_subset_size"),
    [(0, 20, 100), (7, 5, 1000), (3, 10, 259)],  # 1000 and 259 exceed the fake set: whole-set subsets
)
def test_matches_cleanfid_with_the_same_subsets(seed, num_subsets, max_subset_size):
    real, fake = _features(seed)
    expected = _cleanfid_kid(real, fake, seed, num_subsets=num_subsets, max_subset_size=max_subset_size)
    ours = kid(real, fake, num_subsets=num_subsets, max_subset_size=max_subset_size, seed=seed)
    assert ours == pytest.approx(expected, rel=1e-6)


def test_float32_features_match_the_float64_reference():
    # float32 features take float32 products on the CPU (as clean-fid does) but float64 sums.
    real, fake = _features(1, dtype=np.float32)
    expected = _cleanfid_kid(real.astype(np.float64), fake.astype(np.float64), 1, num_subsets=10)
    assert kid(real, fake, num_subsets=10, seed=1) == pytest.approx(expected, rel=1e-6)


def test_different_seeds_draw_different_subsets_and_tiles_do_not_matter():
    real, fake = _features(2)
    base = kid(real, fake, num_subsets=4, max_subset_size=80, seed=2)
    assert kid(real, fake, num_subsets=4, max_subset_size=80, seed=3) != base
    tiny_tiles = kid(torch.from_numpy(real), torch.from_numpy(fake), 4, 80, seed=2, tile_size=9)
    assert tiny_tiles == pytest.approx(base, rel=1e-12)


def test_shifted_fakes_score_worse_than_real_samples():
    real, fake = _features(4)
    same_distribution = _features(5)[0]
    assert kid(real, fake + 1.0, num_subsets=5) > kid(real, fake, num_subsets=5)
    assert abs(kid(real, same_distribution, num_subsets=5)) < kid(real, fake, num_subsets=5)
