"""The toy feature space: a digits classifier that knows digits, standardised, always in eval mode."""

import pytest
import torch

from benchmark.config import config_hash
from benchmark.features import build_extractor
from benchmark.features import digits as digits_module
from benchmark.features.digits import _digits_tensors, cache_key
from datasets import mnist5k


@pytest.fixture(scope="module")
def classifier(cache_dir):
    return build_extractor("digits-classifier", cache_dir=cache_dir)


def test_classifier_recognises_held_out_digits(classifier):
    """The stored accuracy is the test split's (digits it never trained on), recomputed here."""
    images, labels = _digits_tensors("test")
    assert len(images) == 1000
    with torch.no_grad():
        accuracy = (classifier.logits(images).argmax(1) == labels).float().mean().item()
    assert accuracy == pytest.approx(classifier.accuracy, abs=1e-6)
    assert accuracy >= 0.95


def test_the_cache_key_is_the_datas_not_the_old_sklearn_one(monkeypatch):
    key = cache_key(4, 0)
    assert key == cache_key(4, 0)
    assert key != cache_key(8, 0) and key != cache_key(4, 1)
    # The key before this data set (scikit-learn's digits) hashed the recipe alone.
    assert key != config_hash({"epochs": 8, "seed": 0, "input": 32, "arch": 2})
    assert key != config_hash({"epochs": 4, "seed": 0, "input": 32, "arch": 2})
    monkeypatch.setattr(mnist5k, "TEST_PER_CLASS", 50)  # the same recipe on another split of the data
    assert cache_key(4, 0) != key


def test_a_cached_classifier_is_loaded_by_its_key(classifier, cache_dir, monkeypatch):
    assert (cache_dir / f"digits-classifier-{cache_key(4, 0)}.pt").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the cache holds this classifier")

    monkeypatch.setattr(digits_module, "train_digits_classifier", no_training)
    assert build_extractor("digits-classifier", cache_dir=cache_dir).accuracy == classifier.accuracy


def test_features_are_standardised_and_separate_classes(classifier):
    images, labels = _digits_tensors("test")
    features = classifier.extract(images)
    assert features.shape == (len(images), classifier.dim)
    assert features.mean(0).abs().max() < 0.2
    assert 0.7 < features.var(0).mean() < 1.3
    centroids = torch.stack([features[labels == c].mean(0) for c in range(10)])
    within = torch.stack([(features[labels == c] - centroids[c]).norm(dim=1).mean() for c in range(10)]).mean()
    between = torch.cdist(centroids, centroids)[~torch.eye(10, dtype=bool)].mean()
    assert between > within  # classes are separated: an FID in this space sees the digit identity


def test_cache_round_trip_and_eval_mode(classifier, cache_dir):
    again = build_extractor("digits-classifier", cache_dir=cache_dir)
    for k, v in classifier.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    again.train()
    assert not again.training


def test_feature_maps_for_perceptual_losses(classifier):
    x = torch.zeros(2, 1, 32, 32, requires_grad=True)
    maps = classifier.feature_maps(x)
    assert [tuple(m.shape[1:]) for m in maps] == [(32, 16, 16), (64, 8, 8), (128, 4, 4)]
    sum(m.sum() for m in maps).backward()
    assert x.grad is not None
    rgb = classifier(torch.zeros(2, 3, 64, 64))  # any channel count and size
    assert rgb.shape == (2, 64)
