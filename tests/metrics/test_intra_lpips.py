"""Intra-cluster LPIPS: a hand-built case, a direct computation with the lpips package, and the LPIPS network's file."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.features.lpips_vgg import build_lpips
from benchmark.features.vgg import ENV_VAR, FILENAME
from benchmark.metrics.intra_lpips import cluster_members, intra_cluster_lpips
from tests.features.standin import random_vgg16_state


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / FILENAME
    state = random_vgg16_state()
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def distance(vgg_file):
    return build_lpips(vgg_file[0])


@pytest.fixture(scope="module")
def reference_lpips(vgg_file):
    """The lpips package's own LPIPS-VGG v0.1 (random trunk, then the stand-in VGG16's conv weights)."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's `pretrained=` deprecation, inside lpips
        model = lpips.LPIPS(net="vgg", version="0.1", pnet_rand=True, verbose=False)
    slices = (4, 9, 16, 23, 30)
    trunk = {}
    for key, value in vgg_file[1].items():
        if key.startswith("features."):
            index = int(key.split(".")[1])
            slice_number = next(s for s, end in enumerate(slices, 1) if index < end)
            trunk[f"slice{slice_number}.{key.split('.', 1)[1]}"] = value
    model.net.load_state_dict(trunk)
    return model.eval()


def _images(n: int, seed: int, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_the_distance_is_the_lpips_packages(distance, reference_lpips):
    a, b = _images(4, 1), _images(4, 2)
    with torch.no_grad():
        torch.testing.assert_close(distance(a, b), reference_lpips(a, b).flatten())


def test_copies_of_one_training_image_give_zero_and_drop_the_other_clusters(distance):
    train = _images(3, 0)
    fake = train[1:2].repeat(6, 1, 1, 1)
    result = intra_cluster_lpips(fake, train, distance)
    assert result.per_cluster == {1: 0.0}
    assert result.sizes == {0: 0, 1: 6, 2: 0}
    assert (result.mean, result.std) == (0.0, 0.0)


def test_equals_a_direct_computation_with_lpips(distance, reference_lpips):
    train, fake = _images(3, 10), _images(12, 11)
    result = intra_cluster_lpips(fake, train, distance, max_per_cluster=50)

    with torch.no_grad():
        nearest = [int(np.argmin([float(reference_lpips(f[None], t[None])) for t in train])) for f in fake]
        clusters = {}
        for index, cluster in enumerate(nearest):
            clusters.setdefault(cluster, []).append(index)
        expected = {
            c: np.mean([float(reference_lpips(fake[i][None], fake[j][None])) for i, j in itertools.combinations(m, 2)])
            for c, m in clusters.items()
            if len(m) >= 2
        }
    assert len(expected) >= 2  # the case exercises a mean and a spread over clusters
    assert result.per_cluster.keys() == expected.keys()
    for cluster, value in expected.items():
        assert result.per_cluster[cluster] == pytest.approx(value, rel=1e-5)
    values = list(expected.values())
    assert result.mean == pytest.approx(np.mean(values), rel=1e-5)
    assert result.std == pytest.approx(np.std(values), rel=1e-4, abs=1e-7)


def test_a_large_cluster_keeps_a_seeded_random_fifty():
    assignment = torch.tensor([0] * 80 + [1] * 30)
    kept = cluster_members(assignment, 0, 50, seed=3)
    assert len(kept) == 50 and len(set(kept.tolist())) == 50 and (kept < 80).all()
    assert torch.equal(kept, cluster_members(assignment, 0, 50, seed=3))
    assert not torch.equal(kept, cluster_members(assignment, 0, 50, seed=4))
    assert torch.equal(cluster_members(assignment, 1, 50, seed=3), torch.arange(80, 110))


def test_no_pair_in_any_cluster_is_an_error(distance):
    train = _images(3, 0)
    with pytest.raises(ValueError, match="no training image is nearest to 2"):
        intra_cluster_lpips(train[:2], train, distance)


def test_a_missing_vgg16_file_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere.pth"))
    with pytest.raises(BenchmarkError, match=rf"no weights file at .*\${ENV_VAR}.*{FILENAME}"):
        build_lpips()


def test_building_lpips_never_downloads(vgg_file, monkeypatch):
    """lpips.LPIPS(net="vgg") would fetch torchvision's VGG16 in its constructor; the build here must not."""

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    build_lpips(vgg_file[0])
