"""benchmarks/train_speed.py: both sides start from the same networks; the official step trains what ours trains."""

from __future__ import annotations

import pytest
import torch

from benchmark.config import TrainConfig
from benchmark.nets import parameters_of
from benchmarks.train_speed import (
    TINY_BACKBONE,
    OfficialStep,
    OfficialStyleGAN2Step,
    build,
    default_setup,
    random_source,
)


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


def test_official_stylegan2_step_runs_its_lazy_regularizers_as_train_py_does():
    """rosinality train.py: an R1 step every r1_every iterations, a path-length step every pl_every, each its own
    Adam step; Adam's lr and betas by the lazy ratios; ours' setup is the same networks on the StyleGAN2 backbone."""
    setup = default_setup("transfergan-stylegan2", "cpu", TINY_BACKBONE, batch=16)
    assert setup.method == "transfergan" and setup.backbone.name == "stylegan2" and setup.batch == 4
    method = build(setup, random_source(setup.backbone))
    config = TrainConfig(**{**setup.backbone.recipe, "r1_every": 2, "pl_every": 3})
    step = OfficialStyleGAN2Step(method, setup.data(), config, torch.device("cpu"), seed=0)
    assert step.opt_d.defaults["lr"] == pytest.approx(0.002 * 2 / 3)
    assert step.opt_g.defaults["betas"] == pytest.approx((0.0, 0.99 ** (3 / 4)))
    counts = {"G": 0, "D": 0}
    for name, opt in (("G", step.opt_g), ("D", step.opt_d)):
        original = opt.step
        opt.step = lambda *a, _o=original, _n=name, **k: (counts.__setitem__(_n, counts[_n] + 1), _o(*a, **k))[1]
    g_before, d_before = _snapshot(method.G), _snapshot(method.D)
    for i in range(4):
        step(i, setup.batch)
    assert counts == {"D": 4 + 2, "G": 4 + 2}  # R1 at 0, 2; path length at 0, 3
    assert step.mean_path_length.item() > 0 and {"r1", "path"} <= set(step.logged)
    assert _changed(method.G, g_before) and _changed(method.D, d_before)
