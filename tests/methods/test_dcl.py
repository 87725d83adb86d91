"""dcl: the InfoNCE term against a direct computation, and with both weights 0 a step is fine-tuning's."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.method import build_method
from benchmark.trainer import Trainer
from methods.dcl import info_nce
from tests.methods.helpers import quick_config, toy_data, toy_target, train_briefly


def _cos(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def test_info_nce_equals_a_direct_computation_with_shared_negatives():
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    p = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
    n = torch.tensor([[-1.0, 0.5], [0.3, -2.0], [1.0, 1.0]])
    tau = 0.5
    expected = 0.0
    for i in range(2):
        pos = math.exp(_cos(a[i], p[i]) / tau)
        neg = sum(math.exp(_cos(a[i], n[k]) / tau) for k in range(3))
        expected += -math.log(pos / (pos + neg)) / 2
    assert info_nce(a, p, n, tau).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_in_batch_negatives_are_the_other_positives():
    torch.manual_seed(0)
    a, p = torch.randn(3, 2, 2, 2), torch.randn(3, 2, 2, 2)  # feature maps, flattened inside
    tau = 0.07
    fa, fp = a.flatten(1), p.flatten(1)
    expected = 0.0
    for i in range(3):
        pos = math.exp(_cos(fa[i], fp[i]) / tau)
        neg = sum(math.exp(_cos(fa[i], fp[j]) / tau) for j in range(3) if j != i)
        expected += -math.log(pos / (pos + neg)) / 3
    assert info_nce(a, p, None, tau).item() == pytest.approx(expected, rel=1e-5)


def _one_step(name, source, **options):
    target = toy_target()
    torch.manual_seed(0)
    method = build_method(name, source, target, **options)
    recipe = {**source.config.recipe, "r1_every": 2}
    if recipe.get("lazy_regularization"):
        recipe["pl_every"] = 2
    trainer = Trainer(method, toy_data(target), quick_config(**recipe, steps=1), seed=0, progress=False)
    trainer.run()
    return method


def test_with_both_weights_zero_a_step_is_fine_tunings(backbone_source):
    ours = _one_step("dcl", backbone_source, lambda_g=0, lambda_d=0)
    theirs = _one_step("transfergan", backbone_source)
    for net in ("G", "D"):
        mine, reference = dict(getattr(ours, net).named_parameters()), dict(getattr(theirs, net).named_parameters())
        assert mine.keys() == reference.keys()
        assert all(torch.equal(mine[k], reference[k]) for k in mine), net
    with_losses = _one_step("dcl", backbone_source)
    assert not torch.equal(next(with_losses.G.parameters()), next(theirs.G.parameters()))


def test_the_source_stays_frozen_and_out_of_checkpoints(tiny_source_stylegan2):
    method, _, _ = train_briefly("dcl", tiny_source_stylegan2, toy_target(), steps=2)
    assert not list(method.G_source.parameters())
    assert all(k.startswith(("G.", "D.", "G_ema.")) for k in method.state_dict())
    source = tiny_source_stylegan2.build_generator(ema=True)
    for k, b in method.G_source.named_buffers():
        if k in dict(source.named_parameters()):
            assert torch.equal(b, dict(source.named_parameters())[k])


def test_bad_options_are_one_line_errors(tiny_source_stylegan2):
    with pytest.raises(BenchmarkError, match="tau > 0"):
        build_method("dcl", tiny_source_stylegan2, toy_target(), tau=0)
    with pytest.raises(BenchmarkError, match="g_layers must be a non-empty list of resolutions"):
        build_method("dcl", tiny_source_stylegan2, toy_target(), g_layers=[64])
