"""Degenerate metric input: NaN or inf is refused by every public metric function, naming the array and row;
PRDC with k-NN radii of 0 keeps the prdc package's values but says how many radii are 0."""

import logging

import numpy as np
import prdc as prdc_package
import pytest
import torch

from benchmark import metrics as M

N, DIM = 64, 16
LABELS = np.arange(N) % 2
HELPERS = {"check_finite", "non_finite_rows"}

# Every public metric function, called with (real, fake); a new one fails the test below until it is added.
CALLS = {
    "closest_pairs": lambda real, fake: M.closest_pairs(fake, real),
    "feature_statistics": lambda real, fake: (M.feature_statistics(real), M.feature_statistics(fake)),
    "frechet_distance": lambda real, fake: M.frechet_distance(real, fake),
    "frechet_distance_from_stats": lambda real, fake: M.frechet_distance_from_stats(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    ),
    "intra_class_fid": lambda real, fake: M.intra_class_fid(real, LABELS, fake, LABELS),
    "kid": lambda real, fake: M.kid(real, fake, num_subsets=5, max_subset_size=32),
    "kmmd": lambda real, fake: M.kmmd(real, fake),
    "memorization": lambda real, fake: M.memorization(real, fake, heldout=_features(2)),
    "nearest_neighbours": lambda real, fake: M.nearest_neighbours(fake, real),
    "prdc": lambda real, fake: M.prdc(real, fake, k=5),
}

# The argument each function names when the real or the fake side is poisoned (default: "real" / "fake").
ARGUMENT_NAMES = {
    "closest_pairs": {"real": "train"},
    "feature_statistics": {"real": "features", "fake": "features"},
    "memorization": {"real": "train"},
    "nearest_neighbours": {"real": "reference", "fake": "query"},
}


def _features(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N, DIM))


def test_every_public_metric_function_is_covered():
    assert set(CALLS) == set(M.__all__) - HELPERS


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's own np.cov of the poisoned features
@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("side", ["real", "fake"])
def test_non_finite_input_is_one_line_naming_the_array_and_first_bad_row(name, bad, side):
    real, fake = _features(0), _features(1)
    poisoned = real if side == "real" else fake
    poisoned[37, 5] = bad
    poisoned[50, 0] = bad
    with pytest.raises(ValueError) as info:
        CALLS[name](real, fake)
    message = str(info.value)
    assert "\n" not in message and "NaN or inf" in message, message
    if name == "frechet_distance_from_stats":  # statistics, not features: the first bad mean entry
        assert f"'mu{1 if side == 'real' else 2}'" in message and "entry" in message, message
    else:
        named = ARGUMENT_NAMES.get(name, {}).get(side, side)
        assert message.startswith(f"'{named}' holds NaN or inf in 2 of 64 rows, the first at row 37"), message


def test_torch_tensors_are_checked_too():
    real, fake = torch.from_numpy(_features(0)), torch.from_numpy(_features(1)).float()
    fake[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"'fake' holds NaN or inf in 1 of 64 rows, the first at row 3"):
        M.frechet_distance(real, fake)
    with pytest.raises(ValueError, match="'fake_labels'"):
        M.intra_class_fid(real, LABELS, real, np.where(LABELS == 0, np.nan, 1.0))


def test_prdc_of_duplicated_features_matches_the_package_and_counts_zero_radii(caplog):
    real, fake = np.ones((64, 16)), np.ones((64, 16))
    reference = {k: float(v) for k, v in prdc_package.compute_prdc(real, fake, nearest_k=5).items()}
    with caplog.at_level(logging.WARNING, logger="benchmark.metrics.prdc"):
        values, zero_radii = M.prdc(real, fake, k=5, return_zero_radii=True)
    assert values == reference == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    assert zero_radii == 128
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "64 of 64 real and 64 of 64 generated k-NN radii (k=5) are 0" in warnings[0]
    assert M.prdc(real, fake, k=5) == reference  # the plain call still returns the dict alone


def test_prdc_counts_only_the_radii_that_are_zero(caplog):
    rng = np.random.default_rng(2)
    real = np.concatenate([np.repeat(rng.standard_normal((1, 8)), 6, axis=0), rng.standard_normal((40, 8))])
    fake = rng.standard_normal((30, 8))
    with caplog.at_level(logging.WARNING, logger="benchmark.metrics.prdc"):
        values, zero_radii = M.prdc(real, fake, k=5, return_zero_radii=True)
    assert zero_radii == 6  # the six copies of one point: each has five neighbours at distance 0
    assert "6 of 46 real and 0 of 30 generated" in caplog.text
    expected = {k: float(v) for k, v in prdc_package.compute_prdc(real, fake, nearest_k=5).items()}
    assert values == pytest.approx(expected, rel=1e-12)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="benchmark.metrics.prdc"):
        assert M.prdc(rng.standard_normal((30, 8)), fake, k=5, return_zero_radii=True)[1] == 0
    assert not caplog.records
