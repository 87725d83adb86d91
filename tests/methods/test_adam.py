"""AdAM: the KML reshape, the quantile rule on the saved Fisher, fine-tuned filters unmodulated, resumable probing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.trainer import Trainer
from methods.adam import ConvModulation, LinearModulation
from tests.methods.helpers import make_method, quick_config, toy_data, toy_target


class _Killed(Exception):
    pass


def _trainer(source, steps=4, probe_steps=3, checkpoint_dir=None, seed=0, **cfg) -> Trainer:
    target = toy_target()
    torch.manual_seed(seed)
    method = make_method("adam", source, target, probe_steps=probe_steps, fisher_samples=6, quantile=50)
    recipe = {**source.config.recipe, "r1_every": 2, "pl_every": 2}
    config = quick_config(**{**recipe, "steps": steps, "eval_every": 100, "mixing_prob": 0.5, **cfg})
    return Trainer(method, toy_data(target, seed), config, seed=seed, checkpoint_dir=checkpoint_dir, progress=False)


def test_the_kernel_modulation_is_the_official_reshape_of_outer_u_v():
    weight = torch.randn(1, 4, 3, 3, 3)
    kml = ConvModulation(weight)
    kml.u.data.normal_(), kml.v.data.normal_()
    expected = weight * (1 + torch.ger(kml.u, kml.v).view(1, 4, 3, 3, 3))  # model_adam.py, not a transpose
    assert torch.equal(kml(weight), expected)
    assert not torch.allclose(kml(weight), weight * (1 + torch.ger(kml.v, kml.u).view(1, 4, 3, 3, 3)))
    linear = torch.randn(5, 7)
    fc = LinearModulation(linear)
    assert fc.u.shape == (7,) and fc.v.shape == (5,)
    assert torch.equal(fc(linear), linear * (1 + torch.ger(fc.v, fc.u)))
    assert kml.u.abs().max() > 0 and ConvModulation(weight).u.abs().max() < 1e-5  # N(0, 1e-7^2) at init


def _official_rule(method) -> dict[str, torch.Tensor]:
    """AdAM_main_adaptation.py's decisions, recomputed with numpy from the saved Fisher."""
    pools: dict[str, list] = {}
    for unit in method.units:
        f = {r: v.double().numpy() for r, v in method.fisher(unit).items()}
        score = f["u"].mean() + f["v"]
        if "b" in f:
            score = (score + f["b"]) / 2
        pools.setdefault(unit.pool, []).append((unit.key, score))
    rule = {}
    for entries in pools.values():
        line = np.percentile(np.concatenate([s for _, s in entries], axis=None), q=method.quantile)
        rule.update({key: torch.from_numpy(score > line) for key, score in entries})
    return rule


def test_after_probing_the_modulated_kernels_are_the_quantile_rule_on_the_saved_fisher(tiny_source_stylegan2):
    trainer = _trainer(tiny_source_stylegan2)
    trainer.run()
    method = trainer.method
    assert method.probed and method.restarted
    assert any(method.fisher(u)["v"].sum() > 0 for u in method.units)
    rule = _official_rule(method)
    for unit in method.units:
        assert torch.equal(method.modulated(unit), rule[unit.key]), unit.key
    pools = {u.pool for u in method.units}
    assert pools == {"G conv", "G affine", "D conv"}
    for pool in pools:  # the quantile splits each pool
        flags = torch.cat([method.modulated(u) for u in method.units if u.pool == pool])
        assert 0 < flags.sum() < len(flags), pool


def test_fine_tuned_filters_have_zero_modulation_throughout_and_modulated_bases_stay(tiny_source_stylegan2):
    trainer = _trainer(tiny_source_stylegan2, steps=4)
    method = trainer.method
    source = {k: v.clone() for k, v in method._source_G.items()}
    names = {id(p): n for n, p in method.G.named_parameters()}
    checked = []
    original = method.after_step

    def after_step(end):
        original(end)
        if not method.restarted:
            return
        ema = dict(method.G_ema.named_parameters())
        for unit in method.units:
            fine_tuned = ~method.modulated(unit)
            for role in ("v", "b"):
                if role in unit.kml:
                    assert (unit.kml[role][fine_tuned] == 0).all(), (unit.key, role)
                    name = names.get(id(unit.kml[role]))
                    if name is not None:
                        assert (ema[name][fine_tuned] == 0).all(), (unit.key, role, "ema")
            if unit.key.startswith("G."):
                for p, dim in unit.base:  # a modulated filter's own weights stay the source's
                    index = [slice(None)] * p.ndim
                    index[dim] = method.modulated(unit)
                    assert torch.equal(p[tuple(index)], source[names[id(p)]][tuple(index)]), unit.key
        checked.append(end.step)

    method.after_step = after_step
    trainer.run()
    assert checked == [3, 4, 5, 6]  # every step of the main adaptation (probing took steps 0-2)
    bases = [p for u in method.units if u.key.startswith("G.") for p, _ in u.base]
    moved = [not torch.equal(p, source[names[id(p)]]) for p in bases]
    assert any(moved)  # the fine-tuned filters did train


def test_the_main_stage_restarts_from_the_source(tiny_source_stylegan2):
    trainer = _trainer(tiny_source_stylegan2, steps=1)
    method = trainer.method
    restart = method.restart
    states = []

    def recording():
        restart()
        states.append({k: v.clone() for k, v in method.G.state_dict().items()})

    method.restart = recording
    trainer.run()
    for k, v in states[0].items():
        if not k.endswith((".v", ".b")):
            assert torch.equal(v, method._source_G[k]), k


def test_a_run_killed_during_probing_resumes_to_the_same_fisher(tiny_source_stylegan2, tmp_path):
    reference = _trainer(tiny_source_stylegan2, steps=2, probe_steps=4)
    reference.run()
    interrupted = _trainer(tiny_source_stylegan2, steps=2, probe_steps=4, checkpoint_dir=tmp_path, checkpoint_every=1)
    original = interrupted.method.after_step

    def killed(end):
        if end.step == 2:
            raise _Killed  # in the middle of probing, after step 1's checkpoint
        original(end)

    interrupted.method.after_step = killed
    with pytest.raises(_Killed):
        interrupted.run()
    assert not interrupted.method.probed
    resumed = _trainer(tiny_source_stylegan2, steps=2, probe_steps=4, checkpoint_dir=tmp_path, checkpoint_every=1)
    assert resumed.resume() == 2
    resumed.run()
    ours, theirs = reference.method.importance.state_dict(), resumed.method.importance.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    for key, value in reference.method.state_dict().items():
        assert torch.equal(value, resumed.method.state_dict()[key]), key
