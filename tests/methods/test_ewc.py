"""EWC's defining properties: at lambda 0 it is fine-tuning; its Fisher information is non-negative,
estimated once from the source, and read back (not recomputed) on resume."""

from __future__ import annotations

import pytest
import torch

from benchmark.trainer import Trainer
from methods.regularized import EWC
from tests.methods.helpers import make_method, quick_config, toy_data, toy_target


def _trainer(name: str, source, steps: int = 3, checkpoint_dir=None, **options) -> Trainer:
    target = toy_target()
    torch.manual_seed(0)
    method = make_method(name, source, target, **options)
    config = quick_config(**{**source.config.recipe, "steps": steps, "eval_every": 2, "r1_every": 2, "pl_every": 2})
    return Trainer(method, toy_data(target), config, seed=0, checkpoint_dir=checkpoint_dir, progress=False)


def test_at_lambda_zero_an_ewc_step_is_fine_tuning_bit_for_bit(tiny_source_stylegan2):
    tgan, ewc = _trainer("transfergan", tiny_source_stylegan2), _trainer("ewc", tiny_source_stylegan2, lambda_ewc=0)
    tgan.run()
    ewc.run()
    theirs = ewc.method.state_dict()
    assert bool(theirs["fisher_ready"])  # estimated all the same: its draws never touch the training RNG
    for key, value in tgan.method.state_dict().items():
        assert torch.equal(value, theirs[key]), key


def test_the_fisher_is_non_negative_estimated_once_and_restored_on_resume(tiny_source_stylegan2, tmp_path, monkeypatch):
    calls = []
    estimate = EWC.estimate_fisher
    monkeypatch.setattr(EWC, "estimate_fisher", lambda self: (calls.append(1), estimate(self))[1])
    first = _trainer("ewc", tiny_source_stylegan2, steps=2, checkpoint_dir=tmp_path, fisher_samples=8)
    first.run()
    assert len(calls) == 1
    method = first.method
    fisher = {n: method.fisher_of(n).clone() for n in method.penalized}
    assert all((f >= 0).all() for f in fisher.values())
    assert sum(f.sum() for f in fisher.values()) > 0
    moved = [n for n in method.penalized if method.fisher_of(n).any()]
    assert len(moved) > len(method.penalized) // 2  # most of G's tensors carry information

    resumed = _trainer("ewc", tiny_source_stylegan2, steps=4, checkpoint_dir=tmp_path, fisher_samples=8)
    assert resumed.resume() == 2
    resumed.run()
    assert len(calls) == 1  # read from the checkpoint, not recomputed
    assert all(torch.equal(resumed.method.fisher_of(n), f) for n, f in fisher.items())

    # deterministic: a fresh estimate from the source gives the same F
    again = make_method("ewc", tiny_source_stylegan2, toy_target(), fisher_samples=8)
    again.estimate_fisher()
    assert all(torch.equal(again.fisher_of(n), f) for n, f in fisher.items())


def test_the_penalty_is_the_fisher_weighted_squared_drift(tiny_source_stylegan2):
    method = make_method("ewc", tiny_source_stylegan2, toy_target(), fisher_samples=2)
    method.estimate_fisher()
    assert method.ewc_penalty().item() == 0
    name = method.penalized[0]
    with torch.no_grad():
        dict(method.G.named_parameters())[name].add_(0.5)
    expected = (method.fisher_of(name) * 0.25).sum()
    assert method.ewc_penalty().item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(RuntimeError, match="before G leaves"):
        method.estimate_fisher()
