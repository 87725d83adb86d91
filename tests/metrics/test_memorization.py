"""Nearest neighbours against sklearn, and the copy detector on planted copies."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from benchmark.metrics import closest_pairs, memorization, nearest_neighbours


@pytest.mark.parametrize(("k", "tile_size"), [(1, 16), (4, 1000)])
def test_nearest_neighbours_match_sklearn(k, tile_size):
    rng = np.random.default_rng(k)
    reference, query = rng.standard_normal((150, 12)), rng.standard_normal((90, 12))
    distances, indices = nearest_neighbours(query, reference, k=k, tile_size=tile_size)
    expected_distances, expected_indices = NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(query)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)


def test_copies_of_training_images_are_flagged():
    rng = np.random.default_rng(0)
    train, heldout = rng.standard_normal((100, 16)), rng.standard_normal((60, 16))
    copies = train[rng.permutation(100)[:40]]
    result = memorization(train, copies, heldout=heldout, tile_size=32)
    assert result["fake_to_train"] == 0.0
    assert result["heldout_to_train"] > 1
    assert result["ratio"] < 1
    novel = memorization(train, rng.standard_normal((40, 16)), heldout=heldout)
    assert novel["ratio"] == pytest.approx(1, abs=0.2)
    assert memorization(train, copies).keys() == {"fake_to_train"}
    with pytest.raises(ValueError, match="splits overlap"):
        memorization(train, copies, heldout=train[:10])


def test_closest_pairs_find_the_planted_copies():
    rng = np.random.default_rng(1)
    train = rng.standard_normal((80, 8))
    fake = rng.standard_normal((50, 8)) * 3
    fake[[5, 17, 42]] = train[[10, 3, 70]] + 1e-3 * rng.standard_normal((3, 8))
    pairs = closest_pairs(fake, train, n=3)
    assert sorted((fake_index, train_index) for fake_index, train_index, _ in pairs) == [
        (5, 10),
        (17, 3),
        (42, 70),
    ]
    distances = [distance for _, _, distance in pairs]
    assert distances == sorted(distances) and distances[-1] < 0.01
