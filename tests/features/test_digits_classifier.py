"""The toy feature space: a digits classifier that knows digits, standardised, always in eval mode."""

import pytest
import torch

from benchmark.features import build_extractor
from benchmark.features.digits import _digits_tensors


@pytest.fixture(scope="module")
def classifier(cache_dir):
    return build_extractor("digits-classifier", cache_dir=cache_dir)


def test_classifier_recognises_held_out_digits(classifier):
    assert classifier.accuracy >= 0.9


def test_features_are_standardised_and_separate_classes(classifier):
    images, labels = _digits_tensors()
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
