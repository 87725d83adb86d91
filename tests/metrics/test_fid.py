"""FID against clean-fid's own arithmetic and against a closed form."""

from types import SimpleNamespace

import cleanfid.fid
import numpy as np
import pytest
import scipy.linalg
import torch

from benchmark.metrics import feature_statistics, frechet_distance, frechet_distance_from_stats


@pytest.fixture
def cleanfid_frechet(monkeypatch):
    """clean-fid's frechet_distance, with scipy's sqrtm adapted to the `disp=False` call it makes.

    scipy deprecated `disp` and 1.18 removes it; clean-fid expects the (root, error) tuple that
    `disp=False` used to return. The shim keeps the rest of clean-fid's arithmetic unchanged.
    """

    def sqrtm(matrix, disp=True):
        root = scipy.linalg.sqrtm(matrix)
        if disp:
            return root
        error = np.linalg.norm(root @ root - matrix, "fro") / np.linalg.norm(matrix, "fro")
        return root, error

    monkeypatch.setattr(cleanfid.fid, "linalg", SimpleNamespace(sqrtm=sqrtm))
    return cleanfid.fid.frechet_distance


def _reference_fid(cleanfid_frechet, real, fake):
    mu1, sigma1 = np.mean(real, axis=0), np.cov(real, rowvar=False)
    mu2, sigma2 = np.mean(fake, axis=0), np.cov(fake, rowvar=False)
    return cleanfid_frechet(mu1, sigma1, mu2, sigma2)


@pytest.mark.parametrize(
    ("n_real", "n_fake", "dim"),
    [(500, 400, 16), (300, 600, 48), (40, 30, 64)],  # the last has rank-deficient covariances
)
def test_matches_cleanfid(cleanfid_frechet, n_real, n_fake, dim):
    rng = np.random.default_rng(dim)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    real = rng.standard_normal((n_real, dim)) @ mixing
    fake = rng.standard_normal((n_fake, dim)) @ (mixing + 0.2 * np.eye(dim)) + 0.3
    expected = _reference_fid(cleanfid_frechet, real, fake)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)


def test_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    var1, var2 = rng.uniform(0.1, 3, 10), rng.uniform(0.1, 3, 10)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    fid = frechet_distance_from_stats(mu1, np.diag(var1), mu2, np.diag(var2))
    assert fid == pytest.approx(expected, rel=1e-10)


def test_statistics_match_numpy_and_round_trip():
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((200, 8)), rng.standard_normal((150, 8)) + 1
    mu, sigma = feature_statistics(real, tile_size=7)
    np.testing.assert_allclose(mu, real.mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sigma, np.cov(real, rowvar=False), rtol=1e-12, atol=1e-14)
    from_cache = frechet_distance_from_stats(mu, sigma, *feature_statistics(fake))
    assert from_cache == pytest.approx(frechet_distance(real, fake), rel=1e-12)


def test_identical_sets_give_zero_and_torch_input_matches_numpy():
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((300, 12)), rng.standard_normal((300, 12)) * 2
    assert frechet_distance(real, real.copy()) == pytest.approx(0, abs=1e-9)
    assert frechet_distance(torch.from_numpy(real), torch.from_numpy(fake)) == pytest.approx(
        frechet_distance(real, fake), rel=1e-12
    )


def test_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.ones((5, 3)) * np.arange(5)[:, None], np.ones((5, 4)) * np.arange(5)[:, None])
