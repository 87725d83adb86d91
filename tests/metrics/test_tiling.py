"""Every tiled metric gives the same result with tiny tiles and with one tile for everything."""

import numpy as np
import pytest

from benchmark.metrics import feature_statistics, kid, kmmd, memorization, nearest_neighbours, prdc

TINY, WHOLE = 3, 10_000


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    return rng.standard_normal((61, 7)), rng.standard_normal((47, 7)) + 0.4


def test_prdc(features):
    assert prdc(*features, tile_size=TINY) == prdc(*features, tile_size=WHOLE)


def test_kmmd(features):
    assert kmmd(*features, tile_size=TINY) == pytest.approx(kmmd(*features, tile_size=WHOLE), rel=1e-12)


def test_kid(features):
    tiny = kid(*features, num_subsets=3, max_subset_size=40, tile_size=TINY)
    whole = kid(*features, num_subsets=3, max_subset_size=40, tile_size=WHOLE)
    assert tiny == pytest.approx(whole, rel=1e-12)


def test_statistics(features):
    for tiny, whole in zip(feature_statistics(features[0], tile_size=TINY), feature_statistics(features[0])):
        np.testing.assert_allclose(tiny, whole, rtol=1e-12, atol=1e-15)


def test_neighbours(features):
    tiny = nearest_neighbours(*features, k=3, tile_size=TINY)
    whole = nearest_neighbours(*features, k=3, tile_size=WHOLE)
    np.testing.assert_array_equal(tiny[1], whole[1])
    np.testing.assert_allclose(tiny[0], whole[0], rtol=1e-12)
    assert memorization(*features, tile_size=TINY) == memorization(*features, tile_size=WHOLE)
