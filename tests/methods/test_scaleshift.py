"""scaleshift: the source exactly at init, every G weight frozen, only the per-channel affines (and D) train."""

import torch

from methods import build_method
from methods.scaleshift import ScaledAdaIN
from tests.methods.helpers import changed, toy_target, train_briefly


def test_scaleshift_at_init_is_the_source_exactly(tiny_source):
    method = build_method("scaleshift", tiny_source, toy_target(conditional=True, n_classes=3))
    G0 = tiny_source.build_generator()
    z, mix_z = torch.randn(6, method.style_dim), torch.randn(6, method.style_dim)
    noise = G0.make_noise(6)
    labels = torch.tensor([0, 1, 2] * 2)
    assert torch.equal(method.G(z, labels, noise=noise), G0(z, noise=noise))
    assert torch.equal(
        method.G(z, labels, noise=noise, mix_z=mix_z, crossover=1), G0(z, noise=noise, mix_z=mix_z, crossover=1)
    )


def test_scaleshift_adds_one_affine_per_adain_and_keeps_the_backbone_keys(tiny_source):
    method = build_method("scaleshift", tiny_source, toy_target())
    layers = [m for m in method.G.modules() if isinstance(m, ScaledAdaIN)]
    assert len(layers) == 2 * len(tiny_source.config.resolutions)
    keys = set(method.G.state_dict())
    new = {k for k in keys if k.endswith((".scale", ".shift"))}
    assert len(new) == 2 * len(layers)
    assert keys - new == set(tiny_source.g_state)  # a frozen part's key never changes


def test_scaleshift_trains_only_the_affines_and_d(tiny_source):
    method, before, _ = train_briefly("scaleshift", tiny_source, toy_target(), steps=3)
    moved = changed(method, before)
    affines = {k: m for k, m in moved.items() if k.startswith("G.") and k.endswith((".scale", ".shift"))}
    backbone = {k: m for k, m in moved.items() if k.startswith("G.") and k not in affines}
    assert set(backbone) == {f"G.{k}" for k, v in tiny_source.g_state.items() if k in dict(method.G.named_parameters())}
    assert not any(backbone.values()), [k for k, m in backbone.items() if m]
    assert affines and all(affines.values()), [k for k, m in affines.items() if not m]
    assert all(m for k, m in moved.items() if k.startswith("D."))
    decay = 0.999**3  # three steps at train.ema_decay: the average of frozen weights moves from g_running to G
    for k in backbone:
        key = k[2:]
        expected = decay * tiny_source.g_ema_state[key] + (1 - decay) * tiny_source.g_state[key]
        torch.testing.assert_close(method.G_ema.state_dict()[key], expected)
