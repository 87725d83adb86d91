"""The metrics registry: what the evaluator computes, the size checks refuse and the report shows comes from it.

Parametrized over the registry, so a new metric group is checked the moment it is registered.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.config import METRIC_GROUPS, EvalConfig
from benchmark.errors import BenchmarkError
from benchmark.evaluate import check_eval_sizes
from benchmark.metrics.registry import METRICS, all_metrics, direction, display_name, metric_id
from benchmark.nets.stylegan import BackboneConfig, StyledGenerator
from benchmark.report.data import KNOWN_METRICS
from benchmark.report.table import METRIC_NAMES
from tests.test_evaluate import STYLE_DIM, MeanFeatures, Noise, _evaluator, _images

GROUPS = METRICS.names()
# Groups with a network of their own (another Inception, LPIPS) need its weights file: opt-in, never a default.
OPT_IN = {g for g in GROUPS if METRICS.get(g).extractor or METRICS.get(g).network}


@pytest.fixture(scope="module")
def opt_in_networks(tmp_path_factory):
    """The opt-in groups' networks, cheap: the FID conventions' Inceptions as the stub features under their
    names (the real ones are tested in test_fid_conventions.py), LPIPS on a stand-in VGG16 file."""
    from benchmark import evaluate
    from benchmark.features import vgg
    from tests.features.standin import random_vgg16_state

    def stub(name, **options):
        return type(f"Stub{name}", (MeanFeatures,), {"name": name})()

    folder = tmp_path_factory.mktemp("weights")
    torch.save(random_vgg16_state(), folder / vgg.FILENAME)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(vgg.ENV_VAR, str(folder))
        patch.setattr(evaluate, "build_extractor", stub)
        patch.setattr(evaluate, "_SHARED_NETWORKS", {})  # nothing built here outlives the test
        yield


class Styled(nn.Module):
    """A method with a small StyleGAN generator (PPL walks along it), 1 channel at 32 px."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        config = BackboneConfig(resolution=32, style_dim=STYLE_DIM, n_mlp=1, image_channels=1, channels={
            r: 4 for r in (4, 8, 16, 32)})  # fmt: skip
        self.G = StyledGenerator(config)

    @torch.no_grad()
    def sample(self, z, labels=None):
        return torch.tanh(self.G(z)) * 0.9  # never 1.0: the stub features are NaN there


def test_every_metric_is_registered_once_with_a_direction_and_a_display_name():
    names = [m.name for m in all_metrics()]
    assert len(names) == len(set(names))
    assert all(m.direction in ("lower", "higher", None) and m.display for m in all_metrics())
    assert set(METRIC_GROUPS) == set(GROUPS) and set(EvalConfig().metrics) == set(GROUPS) - OPT_IN
    assert {"fid_cdc", "fid_adam", "intra_lpips", "ppl"} == OPT_IN
    assert tuple(m.name for m in all_metrics() if not m.diagnostic) == KNOWN_METRICS
    assert METRIC_NAMES["intra_fid"] == display_name("intra_fid") == "Intra-FID"
    assert direction("fid") == "lower" and direction("coverage") == "higher"
    assert direction("memorization") is None and direction("prdc_zero_radii") is None and direction("lpips") is None


@pytest.mark.parametrize("group", GROUPS)
def test_the_size_check_asks_what_the_group_needs(group):
    spec = METRICS.get(group)
    config = EvalConfig(n_fake=40, metrics=(group,))
    needed = spec.min_images(config)
    if spec.per_class:
        per_class = {"a": needed, "b": needed}
        check_eval_sizes(2 * needed, config, per_class)
        with pytest.raises(BenchmarkError, match=f"at least {needed} real images of every class"):
            check_eval_sizes(2 * needed, config, {"a": needed, "b": needed - 1})
        few = EvalConfig(n_fake=2 * needed - 1, metrics=(group,))
        with pytest.raises(BenchmarkError, match=f"at least {needed} generated images of every class"):
            check_eval_sizes(2 * needed, few, per_class)
        check_eval_sizes(1, few)  # unconditional: a per-class group does not apply
        return
    check_eval_sizes(needed, config)
    if needed > 1:
        with pytest.raises(BenchmarkError, match=f"at least {needed} real and generated images.*drop {group} from"):
            check_eval_sizes(needed - 1, config)


@pytest.mark.parametrize("conditional", [False, True])
def test_the_evaluator_records_each_configured_groups_metrics(conditional, opt_in_networks):
    reference, train = _images(24, 2), _images(6, 2, seed=1)
    for group in GROUPS:
        options = {"ppl": {"ppl_samples": 4}, "intra_lpips": {"intra_lpips_n": 12}}.get(group, {})
        method = Styled() if group in OPT_IN else Noise()
        evaluation = _evaluator(reference, train, conditional, metrics=(group,), **options)(method, step=0)
        spec = METRICS.get(group)
        expected = {m.name for m in spec.metrics if not m.diagnostic} if spec.applies(conditional, 2) else set()
        expected -= {"memorization_distance"}  # the ratio's stand-in where no real image is held out of training
        assert set(evaluation.metrics) - {m.name for m in spec.metrics if m.diagnostic} == expected, group


def test_memorization_is_a_ratio_or_a_distance_under_two_names_never_one():
    """A few-shot target (real images outside training) records the ratio as ``memorization``; a whole-data-set
    target, where every real image trains, records the raw feature-space distance as ``memorization_distance``,
    so one column and one metric id never mix a ratio with a distance."""
    reference, train = _images(24, 2), _images(6, 2, seed=1)
    few_shot = _evaluator(reference, train, False, metrics=("memorization",))(Noise(), step=0)
    whole = _evaluator(reference, reference, False, metrics=("memorization",))(Noise(), step=0)
    assert set(few_shot.metrics) == {"memorization"} and set(whole.metrics) == {"memorization_distance"}
    assert metric_id("memorization", 5000, "inception") != metric_id("memorization_distance", 5000, "inception")
    assert direction("memorization_distance") is None and display_name("kmmd") == "KMMD (squared)"


def test_metric_ids_carry_the_sample_count_and_the_extractor():
    assert metric_id("fid", 1000, "digits-classifier") == "fid1k_digits-classifier"
    assert metric_id("precision", 50_000, "inception") == "precision50k_inception"
    assert metric_id("kid", 48, "inception") == "kid48_inception"
    assert metric_id("fid", None, None) == "fid"
