"""PRDC against the prdc package's compute_prdc, including ties and duplicated points."""

import numpy as np
import prdc as prdc_package
import pytest
import torch

from benchmark.metrics import prdc


def _reference(real, fake, k):
    return {name: float(value) for name, value in prdc_package.compute_prdc(real, fake, nearest_k=k).items()}


def _assert_equal(ours, reference):
    assert ours.keys() == reference.keys()
    for name, value in reference.items():
        assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("n_real", "n_fake", "dim", "k"),
    [(7, 9, 3, 5), (12, 30, 2, 1), (300, 250, 16, 5), (157, 200, 64, 3), (150, 140, 8, 10)],
)
def test_matches_prdc_package(dtype, n_real, n_fake, dim, k):
    rng = np.random.default_rng(n_real + dim)
    real = rng.standard_normal((n_real, dim)).astype(dtype)
    fake = (1.2 * rng.standard_normal((n_fake, dim)) + 0.2).astype(dtype)
    _assert_equal(prdc(real, fake, k=k, tile_size=64), _reference(real, fake, k))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_on_an_integer_grid(dtype):
    # Small integer coordinates give exact, heavily tied distances and many duplicated points:
    # the k-th neighbour counts duplicates, and "inside a ball" is a strict inequality.
    rng = np.random.default_rng(3)
    real = rng.integers(0, 3, (200, 4)).astype(dtype)
    fake = rng.integers(0, 4, (180, 4)).astype(dtype)
    _assert_equal(prdc(real, fake, k=5, tile_size=32), _reference(real, fake, 5))


def test_duplicated_points_and_fake_copies_of_real():
    rng = np.random.default_rng(4)
    real = np.repeat(rng.standard_normal((60, 16)), 3, axis=0)  # every real point three times
    fake = np.concatenate([real[:90], rng.standard_normal((50, 16))])
    _assert_equal(prdc(real, fake, k=5, tile_size=50), _reference(real, fake, 5))
    # A fake set equal to the real one: each real radius is tied by a fake copy of that
    # neighbour, which must not count as inside (density exactly 1, not (k + 1) / k).
    copy = rng.standard_normal((120, 8))
    ours = prdc(copy, copy.copy(), k=5, tile_size=50)
    _assert_equal(ours, _reference(copy, copy.copy(), 5))
    assert ours["density"] == 1.0


def test_torch_tensors_and_tile_sizes_agree():
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((45, 10)), rng.standard_normal((38, 10)) + 0.5
    expected = _reference(real, fake, 5)
    _assert_equal(prdc(torch.from_numpy(real), torch.from_numpy(fake)), expected)
    _assert_equal(prdc(real, fake, tile_size=2), expected)


def test_rejects_too_few_points_and_bad_k():
    with pytest.raises(ValueError, match="k=5"):
        prdc(np.random.rand(5, 3), np.random.rand(20, 3), k=5)
    with pytest.raises(ValueError, match="at least 1"):
        prdc(np.random.rand(5, 3), np.random.rand(20, 3), k=0)


@pytest.mark.parametrize(
    ("ball_edge", "fake_point"),
    [
        # |a - b|^2 = 1 + 2^-24 and |a - f|^2 = 1 + 2^-26 both round to 1.0 in float32.
        ((1, 2**-12, 0), (1, 2**-13, 0)),
        # 1 + 2^-11 + 2^-24 and 1 + 2^-11 both round to 1 + 2^-11 in float32.
        ((1 + 2**-12, 0, 0), (1, 2**-6, 2**-6)),
    ],
)
def test_float32_features_compare_float32_distances(ball_edge, fake_point):
    # sklearn computes float32 inputs' distances in float64 and stores them as float32. Here f
    # is strictly inside a's ball (radius |a - b|, a at the origin, k = 1) in float64 but on its
    # edge in float32, so whether f covers a depends on reproducing that rounding.
    real = np.array([(0, 0, 0), ball_edge, (5, 5, 5), (5, 6, 5)])
    fake = np.array([fake_point, (9, 9, 9), (9, 10, 9)])
    float32_result = prdc(real.astype(np.float32), fake.astype(np.float32), k=1)
    _assert_equal(float32_result, _reference(real.astype(np.float32), fake.astype(np.float32), 1))
    _assert_equal(prdc(real, fake, k=1), _reference(real, fake, 1))
    assert float32_result["coverage"] < prdc(real, fake, k=1)["coverage"]
