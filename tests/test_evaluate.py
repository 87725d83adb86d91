"""The evaluator's input checks: real features as strictly as generated ones, per-class sizes before training,
the count of PRDC's zero radii recorded, and damaged feature caches rebuilt."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.config import PRDC_ZERO_RADII, EvalConfig
from benchmark.errors import BenchmarkError
from benchmark.evaluate import Evaluator, check_eval_sizes
from benchmark.features import FeatureExtractor
from datasets.preprocess import PreparedImages

STYLE_DIM = 4


class MeanFeatures(FeatureExtractor):
    """Per-channel means and stds of 4 x 4 cells: 2 x 16 features; NaN for images whose corner pixel is 1."""

    name = "test-features"
    dim = 32

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # extract() asks a parameter for the device

    def forward(self, images):
        cells = images.unfold(2, 8, 8).unfold(3, 8, 8).flatten(-2)
        features = torch.cat([cells.mean(-1).flatten(1), cells.std(-1).flatten(1)], dim=1)
        poisoned = images[:, 0, 0, 0] == 1.0
        return torch.where(poisoned[:, None], torch.full_like(features, float("nan")), features)


class Constant(nn.Module):
    """A 'generator' that returns the same image for every latent: all generated features coincide."""

    def sample(self, z, labels=None):
        return torch.zeros(len(z), 1, 32, 32)


class Noise(nn.Module):
    def sample(self, z, labels=None):
        return torch.tanh(z.repeat_interleave(256, dim=1)[:, : 32 * 32].view(-1, 1, 32, 32))


def _images(n: int, n_classes: int, poison: int | None = None, seed: int = 0) -> PreparedImages:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 255, (n, 1, 32, 32), generator=generator, dtype=torch.uint8)
    if poison is not None:
        images[poison, 0, 0, 0] = 255  # -> 1.0 in [-1, 1]: the stub gives NaN features for it
    labels = torch.arange(n) % n_classes
    return PreparedImages(images, labels, [f"img/{i:03d}.png" for i in range(n)], [f"c{i}" for i in range(n_classes)])


def _evaluator(reference, train, conditional=False, cache_dir=None, **eval_options):
    config = EvalConfig(**{"n_fake": 40, "batch_size": 16, "kid_subsets": 2, "kid_subset_size": 8, **eval_options})
    return Evaluator(MeanFeatures(), reference, train, config, conditional, STYLE_DIM, "cpu", cache_dir)


def test_real_features_that_are_not_finite_stop_with_the_image_named():
    reference = _images(30, 3, poison=17)
    with pytest.raises(BenchmarkError) as info:
        _evaluator(reference, reference.subset(range(6)))
    message = str(info.value)
    assert "\n" not in message and "1 of 30 real images are NaN or inf" in message
    assert "img/017.png (row 17)" in message


def test_generated_features_that_are_not_finite_fail_the_cell_naming_the_row():
    reference = _images(30, 3)
    evaluator = _evaluator(reference, reference.subset(range(6)))
    fake = torch.randn(40, 32)
    fake[9, 3] = float("inf")
    expected = "1 of 40 generated images give NaN or inf features, the first at row 9"
    with pytest.raises(FloatingPointError, match=expected):
        evaluator.score(fake)


def test_zero_prdc_radii_are_recorded_with_the_metrics():
    reference = _images(30, 3)
    evaluator = _evaluator(reference, reference.subset(range(6)), metrics=("prdc",))
    copies = evaluator(Constant(), step=0).metrics
    assert copies[PRDC_ZERO_RADII] == 40  # every generated radius: forty identical features
    assert copies["precision"] == 0.0 and copies["recall"] == 0.0
    assert PRDC_ZERO_RADII not in evaluator(Noise(), step=0).metrics  # recorded only when there is one


class Unused(MeanFeatures):
    def forward(self, images):
        raise AssertionError("features were extracted before the size check")


def test_per_class_sizes_are_checked_before_any_feature_is_extracted():
    reference = _images(30, 3)
    config = EvalConfig(n_fake=5, prdc_k=3)
    with pytest.raises(BenchmarkError, match=r"eval.n_fake 5 over 3 classes gives some class 1: raise eval.n_fake"):
        Evaluator(Unused(), reference, reference.subset(range(6)), config, True, STYLE_DIM)
    _evaluator(reference, reference.subset(range(6)), conditional=False, n_fake=5, prdc_k=3)  # no per-class metric


def test_check_eval_sizes_per_class():
    config = EvalConfig(n_fake=5, prdc_k=3)
    check_eval_sizes(30, config)  # without per-class counts (unconditional): only the pooled sizes
    with pytest.raises(BenchmarkError) as info:
        check_eval_sizes(30, config, {"a": 10, "b": 10, "c": 10})
    assert "intra-class FID needs at least 2 generated images of every class" in str(info.value)
    assert "raise eval.n_fake to at least 6, or drop intra_fid from eval.metrics" in str(info.value)
    roomy = EvalConfig(n_fake=60, prdc_k=3)
    with pytest.raises(BenchmarkError, match=r"2 class\(es\) have fewer in the evaluation split: 'b' \(1\), 'c' \(0\)"):
        check_eval_sizes(30, roomy, {"a": 29, "b": 1, "c": 0})
    check_eval_sizes(30, roomy, {"a": 28, "b": 2})
    check_eval_sizes(30, EvalConfig(n_fake=5, prdc_k=3, metrics=("fid", "prdc")), {"a": 10, "b": 10, "c": 10})
    check_eval_sizes(30, config, {"a": 30})  # one class: no intra-class FID is computed


def test_a_damaged_feature_cache_is_rebuilt(tmp_path):
    reference = _images(30, 3)
    first = _evaluator(reference, reference.subset(range(6)), cache_dir=tmp_path)
    caches = sorted((tmp_path / "features").glob("*.pt"))
    assert len(caches) == 2
    caches[0].write_bytes(b"<html>not features</html>")
    torch.save(torch.full((len(torch.load(caches[1])), 32), float("nan")), caches[1])
    second = _evaluator(reference, reference.subset(range(6)), cache_dir=tmp_path)
    assert torch.equal(first.real, second.real) and torch.equal(first.train_features, second.train_features)
    assert all(torch.isfinite(torch.load(c)).all() for c in caches)
