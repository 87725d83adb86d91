"""benchmarks/train_speed.py: both sides start from the same networks; the official step trains what ours trains."""

from __future__ import annotations

import torch

from benchmark.config import TrainConfig
from benchmark.nets import parameters_of
from benchmarks.train_speed import TINY_BACKBONE, OfficialStep, build, default_setup, random_source


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {k for k, v in module.named_parameters() if not torch.equal(v.detach(), before[k])}


def test_both_sides_build_the_same_networks():
    source = random_source(TINY_BACKBONE)
    setup = default_setup("minegan", "cpu", TINY_BACKBONE, batch=4)
    a, b = build(setup, source), build(setup, source)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_official_step_trains_the_methods_parameters_only():
    source = random_source(TINY_BACKBONE)
    setup = default_setup("freezed", "cpu", TINY_BACKBONE, batch=4)
    method = build(setup, source)
    step = OfficialStep(method, setup.data(), TrainConfig(), torch.device("cpu"), seed=0)
    g_before, d_before = _snapshot(method.G), _snapshot(method.D)
    ema_before = _snapshot(method.G_ema)
    frozen = {n for n, p in method.D.named_parameters() if not p.requires_grad}  # (the step toggles the rest)
    from_rgb = {id(p) for p in parameters_of(method.D, ["from_rgb"])}
    assert frozen and from_rgb <= {id(p) for n, p in method.D.named_parameters() if n in frozen}
    step(0, setup.batch)
    assert not _changed(method.D, d_before) & frozen  # FreezeD's frozen blocks stay
    assert _changed(method.D, d_before) and _changed(method.G, g_before)
    assert _changed(method.G_ema, ema_before)  # the moving average followed


def test_official_hypermod_step_builds_weights_per_sample():
    source = random_source(TINY_BACKBONE)
    setup = default_setup("hypermod", "cpu", TINY_BACKBONE, batch=4)
    method = build(setup, source)
    step = OfficialStep(method, setup.data(), TrainConfig(), torch.device("cpu"), seed=0)
    assert method.G.per_sample and bool(method.G.task.classes_split)
    hyper = {n for n, p in method.G.named_parameters() if p.requires_grad}
    before = _snapshot(method.G)
    step(0, setup.batch)
    assert _changed(method.G, before) == hyper  # the hypernetworks and the task network, nothing else
