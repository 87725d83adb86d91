"""minegan: the miner-only stage, the conditional miner, and the multi-source selector."""

import pytest
import torch
from torch import nn

from benchmark.method import build_method
from benchmark.sources import Source
from benchmark.trainer import TrainData, Trainer
from methods.minegan import Selector
from tests.methods.helpers import quick_config, toy_data, toy_target


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _same(a: dict, b: dict) -> dict[str, bool]:
    return {k: torch.equal(a[k], b[k]) for k in a}


def test_miner_stage_keeps_g_bit_identical_then_g_trains(tiny_source):
    target = toy_target()
    torch.manual_seed(0)
    method = build_method("minegan", tiny_source, target, miner_steps=2)
    seen = {}

    def record(m, step):  # called at step 0, after the miner stage (2) and at the end (3)
        seen[step] = {"G": _snapshot(m.G.backbone), "miner": _snapshot(m.G.miner), "ema": _snapshot(m.G_ema.backbone)}

    Trainer(method, toy_data(target), quick_config(steps=3, eval_every=2), evaluate=record, progress=False).run()
    start, mined, end = seen[0], seen[2], seen[3]
    assert all(_same(start["G"], mined["G"]).values()), "G moved during the miner stage"
    # The average (from g_running) still moves toward the frozen G (from generator), as accumulate() does every step.
    decay = quick_config().ema_decay
    for k, ema in mined["ema"].items():
        torch.testing.assert_close(ema, decay**2 * start["ema"][k] + (1 - decay**2) * start["G"][k])
    assert not any(_same(start["miner"], mined["miner"]).values()), "the miner did not train in stage 1"
    moved = {k for k, same in _same(mined["G"], end["G"]).items() if not same}
    assert "generator.progression.3.conv2.conv.weight_orig" in moved and "style.1.linear.weight_orig" in moved


def test_conditional_miner_steers_the_frozen_source_per_class(tiny_source):
    target = toy_target(conditional=True, n_classes=2)
    torch.manual_seed(0)
    method = build_method("minegan-noft", tiny_source, target)
    assert method.G.backbone.n_classes == 0, "the class miner replaces G's own label path"
    z = torch.randn(4, method.style_dim)
    noise = method.G.backbone.make_noise(4)
    zeros, ones = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        torch.testing.assert_close(method.G(z, zeros, noise), method.G(z, ones, noise))  # zero-initialised class part
    Trainer(method, toy_data(target), quick_config(steps=2), progress=False).run()
    with torch.no_grad():
        assert not torch.allclose(method.G(z, zeros, noise), method.G(z, ones, noise))
    for k, v in method.G.backbone.state_dict().items():
        assert torch.equal(v, tiny_source.g_state[k]), k


def test_selector_is_a_running_mean_over_its_window():
    selector = Selector(n_sources=2, window=3)
    torch.testing.assert_close(selector.probabilities, torch.tensor([0.5, 0.5]))
    selector.update(torch.tensor([0, 0, 0, 1]))
    torch.testing.assert_close(selector.probabilities, torch.tensor([0.75, 0.25]))
    for _ in range(3):
        selector.update(torch.tensor([1, 1, 1, 1]))
    torch.testing.assert_close(selector.probabilities, torch.tensor([0.0, 1.0]))  # the first batch left the window


class CloseToWhite(nn.Module):
    """A fixed critic for white target images: the closer an image is to white, the higher its score."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))  # gives the D optimizer a (never moving) parameter

    def forward(self, images, labels=None):
        return -(images - 1).pow(2).flatten(1).mean(1) + 0 * self.unused


def _shifted(source: Source, name: str, shift: float) -> Source:
    """The source with every output pixel moved by ``shift`` (its to_rgb bias; the tiny source spans about +-10)."""
    state = dict(source.g_state)
    (bias,) = [k for k in state if k.startswith("generator.to_rgb.") and k.endswith(".bias")]
    state[bias] = state[bias] + shift
    return Source(name, source.config, state, source.d_state)


def _train_two_sources(tiny_source, checkpoint_dir, conditional=False):
    """Sources [dark, near-white] on a white target with the white-preferring critic, G frozen."""
    target = toy_target(conditional, n_classes=2 if conditional else 1, n_images=4)
    sources = [_shifted(tiny_source, "dark", -20.0), _shifted(tiny_source, "light", 1.0)]
    torch.manual_seed(0)
    method = build_method("minegan-noft", tiny_source, target, sources=sources, selector_window=10)
    method.D = CloseToWhite()
    white = TrainData(torch.full((4, 1, 32, 32), 255, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    trainer = Trainer(method, white, quick_config(steps=3), checkpoint_dir=checkpoint_dir, progress=False)
    trainer.run()
    return method, trainer


@pytest.mark.parametrize("conditional", [False, True], ids=["uncond", "cond"])
def test_selector_prefers_the_source_closer_to_the_target(tiny_source, tmp_path, conditional):
    method, _ = _train_two_sources(tiny_source, tmp_path, conditional)
    state = method.extra_state()["selector"]
    assert state["sources"] == ["dark", "light"] and state["batches"] == 3
    assert state["p"] == [0.0, 1.0]
    z = torch.randn(6, method.style_dim)
    labels = torch.tensor([0, 1] * 3) if conditional else None
    noise = method.G_ema.sources[1].backbone.make_noise(6)
    expected = method.G_ema.sources[1](z, labels, noise).clamp(-1, 1)
    torch.testing.assert_close(method.sample(z, labels, noise=noise), expected)  # every sample from the light source


def test_selector_survives_a_checkpoint_round_trip(tiny_source, tmp_path):
    method, _ = _train_two_sources(tiny_source, tmp_path)
    sources = [_shifted(tiny_source, "dark", -20.0), _shifted(tiny_source, "light", 1.0)]
    fresh = build_method("minegan-noft", tiny_source, toy_target(n_images=4), sources=sources, selector_window=10)
    fresh.D = CloseToWhite()
    assert fresh.extra_state()["selector"]["p"] == [0.5, 0.5]
    trainer = Trainer(fresh, toy_data(toy_target(n_images=4)), quick_config(steps=3), checkpoint_dir=tmp_path)
    assert trainer.resume() == 3
    assert fresh.extra_state() == method.extra_state()
    torch.testing.assert_close(fresh.G_ema.selector.history, method.G.selector.history)


def test_sources_must_share_the_backbone(tiny_source):
    from benchmark.errors import BenchmarkError
    from benchmark.nets import BackboneConfig

    other = Source("other", BackboneConfig(resolution=16, image_channels=1, style_dim=16), None, None)
    with pytest.raises(BenchmarkError, match="different backbone"):
        build_method("minegan", tiny_source, toy_target(), sources=[tiny_source, other])
