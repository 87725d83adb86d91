"""Feature extractors for metrics; importing this package registers the built-in ones."""

from benchmark.features import digits, inception, vgg  # noqa: F401  (registers)
from benchmark.features.base import FEATURES, FeatureExtractor, build_extractor, check_extractor

__all__ = ["FEATURES", "FeatureExtractor", "build_extractor", "check_extractor"]
