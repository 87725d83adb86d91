"""Intra-class FID is the mean of per-class frechet_distance."""

import numpy as np
import pytest
import torch

from benchmark.metrics import frechet_distance, intra_class_fid


def test_mean_of_per_class_fids():
    rng = np.random.default_rng(0)
    real_labels, fake_labels = rng.integers(0, 3, 300), rng.integers(0, 3, 240)
    real = rng.standard_normal((300, 6)) + real_labels[:, None]
    fake = rng.standard_normal((240, 6)) + 1.3 * fake_labels[:, None]
    mean, per_class = intra_class_fid(real, real_labels, fake, torch.from_numpy(fake_labels))
    assert sorted(per_class) == [0, 1, 2]
    for label, value in per_class.items():
        expected = frechet_distance(real[real_labels == label], fake[fake_labels == label])
        assert value == pytest.approx(expected, rel=1e-12)
    assert mean == pytest.approx(np.mean(list(per_class.values())), rel=1e-12)
    # Swapping labels on the fake side must hurt: pooled FID cannot see this, intra-class can.
    swapped, _ = intra_class_fid(real, real_labels, fake, (fake_labels + 1) % 3)
    assert swapped > mean


def test_class_missing_on_one_side_is_an_error():
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((20, 3)), rng.standard_normal((20, 3))
    with pytest.raises(ValueError, match="class 1 has 10 real and 0 generated"):
        intra_class_fid(real, np.repeat([0, 1], 10), fake, np.repeat([0, 2], 10))
