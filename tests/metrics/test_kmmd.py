"""KMMD against a dense numpy evaluation of the same formula."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from benchmark.metrics import kmmd


def _dense_kmmd(real, fake, sigma_squared=None):
    """Biased squared MMD with a Gaussian kernel, from full distance matrices (Xu et al.'s `mmd`)."""
    real_real = cdist(real, real, "sqeuclidean")
    if sigma_squared is None:
        sigma_squared = real_real.mean()
    kernel = lambda squared: np.exp(-squared / (2 * sigma_squared))  # noqa: E731
    return (
        kernel(real_real).mean()
        + kernel(cdist(fake, fake, "sqeuclidean")).mean()
        - 2 * kernel(cdist(real, fake, "sqeuclidean")).mean()
    )


def _features(seed, n_real=220, n_fake=180, dim=24):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_real, dim)), 1.1 * rng.standard_normal((n_fake, dim)) + 0.2


def test_matches_dense_formula_with_default_bandwidth():
    real, fake = _features(0)
    assert kmmd(real, fake, tile_size=50) == pytest.approx(_dense_kmmd(real, fake), rel=1e-6)


@pytest.mark.parametrize("bandwidth", [0.5, 3.0, 20.0])
def test_matches_dense_formula_with_explicit_bandwidth(bandwidth):
    real, fake = _features(1)
    expected = _dense_kmmd(real, fake, sigma_squared=bandwidth**2)
    assert kmmd(real, fake, bandwidth=bandwidth) == pytest.approx(expected, rel=1e-6)


def test_zero_for_identical_sets_and_growing_with_shift():
    real, _ = _features(2)
    assert kmmd(real, real.copy()) == pytest.approx(0, abs=1e-12)
    resample = _features(3)[0]
    shifts = [kmmd(real, resample + shift) for shift in (0.0, 0.3, 1.0)]
    assert shifts[0] < shifts[1] < shifts[2]


def test_rejects_bad_bandwidth():
    real, fake = _features(4)
    with pytest.raises(ValueError, match="bandwidth"):
        kmmd(real, fake, bandwidth=0)
    with pytest.raises(ValueError, match="identical"):
        kmmd(np.ones((10, 3)), fake[:, :3])
