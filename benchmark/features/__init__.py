"""Feature extractors for metrics; importing this package registers the built-in ones."""

from benchmark.features import (  # noqa: F401  (registers)
    digits,
    inception,
    pytorch_fid_inception,
    torchvision_inception,
    vgg,
)
from benchmark.features.base import FEATURES, FeatureExtractor, build_extractor, check_extractor

__all__ = ["FEATURES", "FeatureExtractor", "build_extractor", "check_extractor"]
