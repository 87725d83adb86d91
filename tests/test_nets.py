"""The backbone keeps rosinality's key layout, applies equalized lr at forward time, and a
conditional label path starts as the identity."""

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.nets import BackboneConfig, Discriminator, StyledGenerator
from benchmark.nets.layers import EqualConv2d, EqualLinear, NoiseInjection

TINY = BackboneConfig(resolution=32, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8})


@pytest.fixture(scope="module")
def nets_256():
    return StyledGenerator(BackboneConfig(resolution=256)), Discriminator(BackboneConfig(resolution=256))


def test_rosinality_key_layout_at_256px(nets_256):
    G, D = nets_256
    g, d = G.state_dict(), D.state_dict()
    # METHODS.md "Checkpoint facts": step 6 uses progression 0..6 and to_rgb 6; D from_rgb 2, blocks 2..8.
    assert {int(k.split(".")[2]) for k in g if k.startswith("generator.progression.")} == set(range(7))
    assert [k for k in g if k.startswith("generator.to_rgb.")] == [
        "generator.to_rgb.6.conv.weight_orig",
        "generator.to_rgb.6.conv.bias",
    ]
    assert sorted(int(k.split(".")[1]) for k in g if k.endswith("linear.weight_orig") and k.startswith("style.")) == [
        1, 3, 5, 7, 9, 11, 13, 15,
    ]  # fmt: skip
    assert g["generator.progression.0.conv1.input"].shape == (1, 512, 4, 4)
    assert g["generator.progression.4.conv1.1.conv.weight_orig"].shape == (256, 512, 3, 3)  # unfused 64 px
    assert g["generator.progression.5.conv1.0.weight"].shape == (256, 128, 3, 3)  # fused 128 px, (in, out, k, k)
    assert "generator.progression.6.conv1.0.weight_orig" not in g
    assert g["generator.progression.6.noise1.weight_orig"].shape == (1, 64, 1, 1)
    assert g["generator.progression.6.adain2.style.linear.weight_orig"].shape == (128, 512)
    assert [k for k in d if k.startswith("from_rgb.")] == ["from_rgb.2.0.conv.weight_orig", "from_rgb.2.0.conv.bias"]
    assert {int(k.split(".")[1]) for k in d if k.startswith("progression.")} == set(range(2, 9))
    assert d["progression.2.conv2.1.weight"].shape == (128, 128, 3, 3)  # fused downsample at 256 px
    assert d["progression.4.conv2.1.conv.weight_orig"].shape == (512, 512, 3, 3)
    assert d["progression.8.conv1.0.conv.weight_orig"].shape == (512, 513, 3, 3)
    assert d["progression.8.conv2.0.conv.weight_orig"].shape == (512, 512, 4, 4)
    assert d["linear.linear.weight_orig"].shape == (1, 512)


def test_equalized_lr_scale_is_applied_at_forward_time():
    torch.manual_seed(0)
    conv, linear, noise = EqualConv2d(3, 5, 3, padding=1), EqualLinear(7, 4), NoiseInjection(5)
    x = torch.randn(2, 3, 8, 8)
    w = conv.conv.weight_orig
    expected = F.conv2d(x, w * math.sqrt(2 / (3 * 9)), conv.conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected)
    y = torch.randn(2, 7)
    torch.testing.assert_close(linear(y), F.linear(y, linear.linear.weight_orig * math.sqrt(2 / 7)))
    with torch.no_grad():
        noise.weight_orig.fill_(1.0)
    n = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(noise(torch.zeros(2, 5, 8, 8), n), n.expand(2, 5, 8, 8) * math.sqrt(2 / 5))
    # The stored tensor stays unscaled: changing it changes the output proportionally to the scale.
    with torch.no_grad():
        conv.conv.weight_orig.mul_(2)
    torch.testing.assert_close(
        conv(x) - conv.conv.bias[None, :, None, None], 2 * (expected - conv.conv.bias[None, :, None, None])
    )


def test_conditional_label_path_starts_as_identity():
    torch.manual_seed(0)
    G, D = StyledGenerator(TINY), Discriminator(TINY)
    Gc, Dc = StyledGenerator(TINY, n_classes=3), Discriminator(TINY, n_classes=3)
    missing, unexpected = Gc.load_state_dict(G.state_dict(), strict=False)
    assert missing == ["class_embed.weight"] and not unexpected
    Dc.load_state_dict(D.state_dict(), strict=False)
    z, labels = torch.randn(6, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    noise = G.make_noise(6)
    torch.testing.assert_close(Gc(z, labels, noise=noise), G(z, noise=noise), rtol=0, atol=0)
    x = torch.randn(6, 3, 32, 32)
    torch.testing.assert_close(Dc(x, labels), D(x), rtol=0, atol=0)
    # ...and it is trainable: the embedding receives a gradient.
    Gc(z, labels, noise=noise).sum().backward()
    assert Gc.class_embed.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        Gc(z)


def test_parts_are_addressed_by_resolution():
    G, D = StyledGenerator(TINY), Discriminator(TINY)
    assert list(G.parts()) == ["mapping", "block4", "block8", "block16", "block32", "to_rgb"]
    assert G.parts()["block32"] is G.generator.progression["3"]
    assert list(D.parts()) == ["from_rgb", "block32", "block16", "block8", "block4", "linear"]
    assert D.parts()["block4"] is D.progression["8"]  # the final 4x4 block, rosinality index 8
    _, blocks = D.features(torch.randn(2, 3, 32, 32))
    # Keyed by input resolution; block r maps width[r] -> width[r / 2] at r / 2 px.
    shapes = {r: tuple(t.shape[1:]) for r, t in blocks.items()}
    assert shapes == {32: (8, 16, 16), 16: (16, 8, 8), 8: (16, 4, 4), 4: (16, 1, 1)}


def test_style_mixing_switches_style_after_the_crossover_block():
    torch.manual_seed(0)
    G = StyledGenerator(TINY)
    z, z2 = torch.randn(2, 16), torch.randn(2, 16)
    noise = G.make_noise(2)
    base = G(z, noise=noise)
    # Crossover at the last block: every block uses z's style.
    torch.testing.assert_close(G(z, noise=noise, mix_z=z2, crossover=3), base)
    assert not torch.allclose(G(z, noise=noise, mix_z=z2, crossover=1), base)
    with pytest.raises(ValueError):
        G(z, mix_z=z2)
