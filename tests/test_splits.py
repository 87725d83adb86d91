"""Few-shot manifests are reproducible from (shots, seed) and inspectable."""

import pytest

from benchmark.errors import BenchmarkError
from datasets import build_dataset
from datasets.preprocess import prepare_images
from datasets.splits import few_shot_manifest, manifest_indices, read_manifest, write_manifest


@pytest.fixture(scope="module")
def digits789(tmp_path_factory):
    """The toy suite's conditional target: the train split's 7s, 8s and 9s (400 each)."""
    loader = build_dataset("mnist5k", None, split="train", classes=[7, 8, 9])
    return prepare_images(loader, 32, 1, cache_dir=tmp_path_factory.mktemp("c"), progress=False)


def test_manifest_is_reproducible_and_balanced(digits789, tmp_path):
    a = few_shot_manifest(digits789, 10, seed=0)
    b = few_shot_manifest(digits789, 10, seed=0)
    c = few_shot_manifest(digits789, 10, seed=1)
    assert a == b and a != c
    assert {k: len(v) for k, v in a["files"].items()} == {"7": 10, "8": 10, "9": 10}
    indices = manifest_indices(digits789, a)
    assert sorted(digits789.labels[indices].tolist()) == [0] * 10 + [1] * 10 + [2] * 10
    write_manifest(a, tmp_path / "m.json")
    assert read_manifest(tmp_path / "m.json") == a


def test_classes_draw_independently(digits789):
    """Adding a class to a target leaves the other classes' picks unchanged."""
    only7 = prepare_images(build_dataset("mnist5k", None, split="train", classes=[7]), 32, 1, progress=False)
    assert few_shot_manifest(only7, 5, 3)["files"]["7"] == few_shot_manifest(digits789, 5, 3)["files"]["7"]


def test_too_few_images_is_an_error(digits789):
    assert len(few_shot_manifest(digits789, 400, 0)["files"]["9"]) == 400
    with pytest.raises(BenchmarkError, match="class '7' has 400 images, fewer than the 401 shots"):
        few_shot_manifest(digits789, 401, 0)


def test_all_images_when_shots_is_none(digits789):
    assert len(manifest_indices(digits789, few_shot_manifest(digits789, None, 0))) == len(digits789) == 1200
