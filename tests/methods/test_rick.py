"""RICK: pruned filters stay zero (EMA included), frozen ones bit-identical; the sets are as stated and checkpointed."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.trainer import Trainer
from methods.importance import estimate_fisher
from methods.rick import filter_scores
from tests.methods.helpers import make_method, quick_config, toy_data, toy_target

# Small quantiles so that the tiny networks have both frozen and pruned filters in every pool.
OPTIONS = dict(warmup_steps=2, fisher_every=2, fisher_samples=4, fisher_quantile=70, prune_quantile=20)


def _trainer(source, steps=8, checkpoint_dir=None, seed=0, **cfg) -> Trainer:
    target = toy_target()
    torch.manual_seed(seed)
    method = make_method("rick", source, target, **OPTIONS)
    recipe = {**source.config.recipe, "r1_every": 2, "pl_every": 2}
    config = quick_config(**{**recipe, "steps": steps, "eval_every": 100, "mixing_prob": 0.5, **cfg})
    return Trainer(method, toy_data(target, seed), config, seed=seed, checkpoint_dir=checkpoint_dir, progress=False)


def _filters(p: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    return p.detach().movedim(dim, 0)[mask].clone()


def test_pruned_filters_stay_zero_frozen_filters_stay_bit_identical_and_the_pruned_set_only_grows(
    tiny_source_stylegan2,
):
    trainer = _trainer(tiny_source_stylegan2)
    method = trainer.method
    nets = {"G": method.G, "D": method.D}
    start = [p.detach().clone() for p in method.G.convs.parameters()]
    history = []  # per step after the warm-up: (frozen, pruned, values) of every layer
    original = method.after_step

    def after_step(end):
        original(end)
        if end.step + 1 < 2:
            return
        snapshot = {}
        for layer in method.layers:
            values = {name: nets[layer.net].get_parameter(name).detach().clone() for name, _ in layer.tensors}
            snapshot[layer.key] = (method.frozen(layer).clone(), method.pruned(layer).clone(), values)
            pruned = method.pruned(layer)
            for name, dim in layer.tensors:
                for net in [nets[layer.net], method.G_ema if layer.net == "G" else method.D_ema]:
                    assert (_filters(net.get_parameter(name), pruned, dim) == 0).all(), (layer.key, name)
        history.append(snapshot)

    method.after_step = after_step
    trainer.run()
    assert len(history) == 7
    pruned_total = sum(int(method.pruned(layer).sum()) for layer in method.layers)
    frozen_total = sum(int(method.frozen(layer).sum()) for layer in method.layers)
    assert pruned_total > 0 and frozen_total > 0
    for before, after in zip(history, history[1:]):
        for layer in method.layers:
            frozen0, pruned0, values0 = before[layer.key]
            frozen1, pruned1, values1 = after[layer.key]
            assert (pruned1 | ~pruned0).all(), f"{layer.key}: a pruned filter came back"
            still = frozen0 & frozen1 & ~pruned1  # frozen at both decisions: held at its value
            for name, dim in layer.tensors:
                assert torch.equal(_filters(values1[name], still, dim), _filters(values0[name], still, dim))
    # a frozen filter equals the value recorded when it was frozen
    for layer in method.layers:
        frozen = method.frozen(layer) & ~method.pruned(layer)
        for name, dim in layer.tensors:
            p = nets[layer.net].get_parameter(name)
            assert torch.equal(_filters(p, frozen, dim), _filters(method.at_freezing(layer, name), frozen, dim))
    # and the filters that fine-tune did train
    assert any(not torch.equal(p, q) for p, q in zip(start, method.G.convs.parameters()))


def test_the_sets_follow_the_quantile_rule(tiny_source_stylegan2):
    method = make_method("rick", tiny_source_stylegan2, toy_target(), **OPTIONS)
    method.attach_ema()
    data = toy_data(toy_target())
    # the official rule with numpy, on the Fisher of the same networks and seed, taken before decide() prunes
    wanted = {(lay.net, n) for lay in method.layers for n, _ in lay.tensors}
    g = {n: p for n, p in method.G_ema.named_parameters() if ("G", n) in wanted}
    d = {n: p for n, p in method.D_ema.named_parameters() if ("D", n) in wanted}
    gf, df = estimate_fisher(method.G_ema, method.D_ema, g, d, data.images, None, 0, 4, 0)
    method.decide(data.images, data.labels, 4)
    fishers = {"G": gf, "D": df}
    pools: dict[str, list] = {}
    for layer in method.layers:
        score = filter_scores([fishers[layer.net][n] for n, _ in layer.tensors], [dim for _, dim in layer.tensors])
        pools.setdefault(layer.pool, []).append((layer, score.double().numpy()))
    for entries in pools.values():
        pooled = np.concatenate([s for _, s in entries], axis=None)
        cut, prune = np.percentile(pooled, 70), np.percentile(pooled, 20)
        for layer, score in entries:
            assert np.array_equal(method.frozen(layer).numpy(), score > cut), layer.key
            expected = score < prune if layer.strict_prune else score <= prune
            assert np.array_equal(method.pruned(layer).numpy(), expected), layer.key


def test_the_frozen_and_pruned_sets_are_restored_from_a_checkpoint(tiny_source_stylegan2, tmp_path):
    trainer = _trainer(tiny_source_stylegan2, steps=5, checkpoint_dir=tmp_path, checkpoint_every=5)
    trainer.run()
    restored = _trainer(tiny_source_stylegan2, steps=5, checkpoint_dir=tmp_path, checkpoint_every=5, seed=1)
    assert not any(restored.method.pruned(layer).any() for layer in restored.method.layers)
    assert restored.resume() == 5
    for layer, theirs in zip(trainer.method.layers, restored.method.layers):
        assert torch.equal(trainer.method.frozen(layer), restored.method.frozen(theirs))
        assert torch.equal(trainer.method.pruned(layer), restored.method.pruned(theirs))
    assert any(restored.method.pruned(layer).any() for layer in restored.method.layers)
    assert trainer.method.extra_state() == restored.method.extra_state()
