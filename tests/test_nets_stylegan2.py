"""The StyleGAN2 backbone keeps rosinality/stylegan2-pytorch's key layout, computes what its model.py
computes, differentiates twice, and a conditional label path starts as the identity."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from benchmark.nets.layers2 import upfirdn2d
from benchmark.nets.stylegan2 import StyleGAN2Config, StyleGAN2Discriminator, StyleGAN2Generator
from tests.sources.checkpoints2 import (
    hashed_state,
    parameter_layout,
    pinned_images,
    pinned_latents,
    pinned_noise,
    pinned_truncation_latent,
)

TINY = StyleGAN2Config(resolution=16, style_dim=16, n_mlp=2, channels={4: 16, 8: 8, 16: 8})


# --------------------------------------------------------------------------------------------
# Layout


def official_layout(channel_multiplier: int) -> tuple[dict, dict]:
    """Keys and shapes of rosinality's ``Generator(256, 512, 8, cm)`` and ``Discriminator(256, cm)``,
    written out by hand from model.py (rosinality/stylegan2-pytorch at bef283a, 2021-11-24)."""
    ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
          256: 64 * channel_multiplier}  # fmt: skip

    def styled_conv(prefix, cin, cout, upsample):
        keys = {f"{prefix}.conv.weight": (1, cout, cin, 3, 3)}
        if upsample:
            keys[f"{prefix}.conv.blur.kernel"] = (4, 4)
        keys |= {f"{prefix}.conv.modulation.weight": (cin, 512), f"{prefix}.conv.modulation.bias": (cin,),
                 f"{prefix}.noise.weight": (1,), f"{prefix}.activate.bias": (cout,)}  # fmt: skip
        return keys

    def to_rgb(prefix, cin, upsample):
        keys = {f"{prefix}.bias": (1, 3, 1, 1)}  # a module's own tensors come before its submodules'
        keys |= {f"{prefix}.upsample.kernel": (4, 4)} if upsample else {}
        return keys | {f"{prefix}.conv.weight": (1, 3, cin, 1, 1), f"{prefix}.conv.modulation.weight": (cin, 512),
                       f"{prefix}.conv.modulation.bias": (cin,)}  # fmt: skip

    g = {}
    for i in range(1, 9):  # style.0 is PixelNorm
        g |= {f"style.{i}.weight": (512, 512), f"style.{i}.bias": (512,)}
    g["input.input"] = (1, 512, 4, 4)
    g |= styled_conv("conv1", 512, 512, False) | to_rgb("to_rgb1", 512, False)
    convs, rgbs, cin = {}, {}, 512
    for k, r in enumerate([8, 16, 32, 64, 128, 256]):
        convs |= styled_conv(f"convs.{2 * k}", cin, ch[r], True) | styled_conv(
            f"convs.{2 * k + 1}", ch[r], ch[r], False
        )
        rgbs |= to_rgb(f"to_rgbs.{k}", ch[r], True)
        cin = ch[r]
    g |= convs | rgbs  # ModuleList convs registered before to_rgbs, then the noises module
    for i in range(13):
        size = 2 ** ((i + 5) // 2)
        g[f"noises.noise_{i}"] = (1, 1, size, size)

    d = {"convs.0.0.weight": (ch[256], 3, 1, 1), "convs.0.1.bias": (ch[256],)}
    cin = ch[256]
    for i, r in enumerate([256, 128, 64, 32, 16, 8], start=1):
        cout = ch[r // 2]
        d |= {f"convs.{i}.conv1.0.weight": (cin, cin, 3, 3), f"convs.{i}.conv1.1.bias": (cin,),
              f"convs.{i}.conv2.0.kernel": (4, 4), f"convs.{i}.conv2.1.weight": (cout, cin, 3, 3),
              f"convs.{i}.conv2.2.bias": (cout,), f"convs.{i}.skip.0.kernel": (4, 4),
              f"convs.{i}.skip.1.weight": (cout, cin, 1, 1)}  # fmt: skip
        cin = cout
    d |= {"final_conv.0.weight": (512, 513, 3, 3), "final_conv.1.bias": (512,),
          "final_linear.0.weight": (512, 8192), "final_linear.0.bias": (512,),
          "final_linear.1.weight": (1, 512), "final_linear.1.bias": (1,)}  # fmt: skip
    return g, d


@pytest.mark.parametrize("channel_multiplier", [2, 1])
def test_key_layout_is_rosinalitys_at_256px(channel_multiplier):
    config = StyleGAN2Config(channel_multiplier=channel_multiplier)
    with torch.device("meta"):
        G, D = config.generator(), config.discriminator()
    expected_g, expected_d = official_layout(channel_multiplier)
    g = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    d = {k: tuple(v.shape) for k, v in D.state_dict().items()}
    assert g == expected_g and list(g) == list(expected_g)  # the same registration order too
    assert d == expected_d and list(d) == list(expected_d)
    assert len(g) == 135 and len(d) == 50  # counted on the official networks at 256 px
    assert config.n_styles == 14 and config.n_noises == 13  # rosinality's n_latent and num_layers


def test_config_widths_validation_and_dict():
    assert [StyleGAN2Config(channel_multiplier=1).width(r) for r in (32, 64, 128, 256)] == [512, 256, 128, 64]
    assert [StyleGAN2Config().width(r) for r in (32, 64, 128, 256, 1024)] == [512, 512, 256, 128, 32]
    assert TINY.width(8) == 8 and TINY.resolutions == [4, 8, 16] and (TINY.n_styles, TINY.n_noises) == (6, 5)
    data = json.loads(json.dumps(TINY.to_dict()))
    assert data["name"] == "stylegan2" == StyleGAN2Config.name and data["mbstd_group"] == 4
    rebuilt = StyleGAN2Config(**{k: v for k, v in data.items() if k != "name"})
    assert rebuilt == TINY  # JSON's string keys of channels come back as ints
    assert isinstance(TINY.generator(3), StyleGAN2Generator) and TINY.generator(3).n_classes == 3
    assert isinstance(TINY.discriminator(), StyleGAN2Discriminator)
    for bad in ({"resolution": 24}, {"resolution": 2048}, {"channel_multiplier": 0}, {"mbstd_group": 0},
                {"lr_mlp": 0.0}, {"channels": {8: 0}}):  # fmt: skip
        with pytest.raises(ValueError):
            StyleGAN2Config(**bad)


# --------------------------------------------------------------------------------------------
# Behaviour on tiny nets


def test_conditional_label_path_starts_as_identity():
    torch.manual_seed(0)
    G, D = StyleGAN2Generator(TINY), StyleGAN2Discriminator(TINY)
    Gc, Dc = StyleGAN2Generator(TINY, n_classes=3), StyleGAN2Discriminator(TINY, n_classes=3)
    missing, unexpected = Gc.load_state_dict(G.state_dict(), strict=False)
    assert missing == ["class_embed.weight"] and not unexpected
    missing, unexpected = Dc.load_state_dict(D.state_dict(), strict=False)
    assert missing == ["class_projection.weight"] and not unexpected
    z, labels = torch.randn(4, 16), torch.tensor([0, 1, 2, 0])
    noise = G.make_noise(4)
    torch.testing.assert_close(Gc(z, labels, noise=noise), G(z, noise=noise), rtol=0, atol=0)
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(Dc(x, labels), D(x), rtol=0, atol=0)
    (Gc(z, labels, noise=noise).sum() + Dc(x, labels).sum()).backward()
    assert Gc.class_embed.weight.grad.abs().sum() > 0 and Dc.class_projection.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        Gc(z)
    with pytest.raises(ValueError):
        Dc(x)


def _covered_once(net, skip=()) -> None:
    seen: dict[int, str] = {}
    for name, part in net.parts().items():
        if name in skip:
            continue
        for p in part.parameters():
            assert id(p) not in seen, f"{name} repeats a parameter of {seen[id(p)]}"
            seen[id(p)] = name
    named = dict(net.named_parameters())
    missing = [k for k, p in named.items() if id(p) not in seen]
    assert not missing and len(seen) == len(named)


def test_parts_cover_every_parameter_exactly_once():
    G, D = StyleGAN2Generator(TINY, n_classes=2), StyleGAN2Discriminator(TINY, n_classes=2)
    assert list(G.parts()) == ["mapping", "block4", "block8", "block16", "to_rgb", "class_embed"]
    assert list(D.parts()) == ["from_rgb", "block16", "block8", "block4", "linear", "class_projection"]
    _covered_once(G, skip=("to_rgb",))
    _covered_once(D)
    parts = G.parts()
    assert parts["to_rgb"] is G.to_rgbs[-1] is parts["block16"]["to_rgb"]
    assert parts["block8"]["conv0"] is G.convs[0] and parts["block16"]["conv1"] is G.convs[3]
    assert D.parts()["block16"] is D.convs[1] and D.parts()["block4"]["final_conv"] is D.final_conv
    assert set(G.state_dict()) == set(StyleGAN2Generator(TINY, n_classes=2).state_dict())  # parts() adds no keys
    h, blocks = D.features(torch.randn(4, 3, 16, 16))
    # Keyed by input resolution; block r maps width[r] -> width[r / 2] at r / 2 px; block 4 gives h.
    assert {r: tuple(t.shape[1:]) for r, t in blocks.items()} == {16: (8, 8, 8), 8: (16, 4, 4), 4: (16,)}
    assert blocks[4] is h
    h2, blocks2, layers = D.features(torch.randn(4, 3, 16, 16), return_layer_outputs=True)  # CDC's feat list
    assert {k: tuple(t.shape[1:]) for k, t in layers.items()} == {
        "from_rgb": (8, 16, 16),
        "block16.conv1": (8, 16, 16),
        "block16.conv2": (8, 8, 8),
        "block8.conv1": (8, 8, 8),
        "block8.conv2": (16, 4, 4),
        "block4.final_conv": (16, 4, 4),
    }


def test_styles_mixing_truncation_and_feature_lists():
    torch.manual_seed(0)
    G = StyleGAN2Generator(TINY)
    z, z2 = torch.randn(2, 16), torch.randn(2, 16)
    w, w2 = G.mapping(z), G.mapping(z2)
    ws = G.styles(z, mix_z=z2, crossover=2)  # styles 0..2 from z (rosinality's inject_index 3)
    assert ws.shape == (2, 6, 16)
    torch.testing.assert_close(ws[:, :3], w[:, None].expand(-1, 3, -1), rtol=0, atol=0)
    torch.testing.assert_close(ws[:, 3:], w2[:, None].expand(-1, 3, -1), rtol=0, atol=0)
    torch.testing.assert_close(G.styles(z, mix_z=z2, crossover=torch.tensor(2)), ws, rtol=0, atol=0)
    torch.testing.assert_close(G.styles(z, mix_z=z2, crossover=5), G.styles(z), rtol=0, atol=0)
    center = torch.randn(1, 16)
    torch.testing.assert_close(G.styles(z, truncation=0.5, truncation_latent=center)[:, 0], center + 0.5 * (w - center))
    with pytest.raises(ValueError):
        G.styles(z, mix_z=z2)
    with pytest.raises(ValueError):
        G.styles(z, truncation=0.5)

    noise = G.make_noise(2)
    assert [tuple(n.shape) for n in noise] == [(2, 1, 4, 4), (2, 1, 8, 8), (2, 1, 8, 8), (2, 1, 16, 16), (2, 1, 16, 16)]
    assert [tuple(n.shape) for n in G.stored_noise()] == [(1, 1, s, s) for s in (4, 8, 8, 16, 16)]
    image, blocks, layers = G(z, noise=noise, return_block_outputs=True, return_layer_outputs=True)
    torch.testing.assert_close(image, G(z, noise=noise), rtol=0, atol=0)
    assert image.shape == (2, 3, 16, 16)
    assert [tuple(t.shape[1:]) for t in blocks] == [(16, 4, 4), (8, 8, 8), (8, 16, 16)]
    assert [tuple(t.shape[1:]) for t in layers] == [(16, 4, 4), (8, 8, 8), (8, 8, 8), (8, 16, 16), (8, 16, 16)]
    assert blocks[1] is layers[2] and blocks[2] is layers[4]
    with pytest.raises(ValueError, match="expected 5 noise maps"):
        G(z, noise=noise[:3])
    assert G.mean_latent(64).shape == (1, 16)


def test_grayscale_and_minibatch_stddev_groups():
    config = StyleGAN2Config(resolution=8, style_dim=8, n_mlp=1, channels={4: 8, 8: 8}, image_channels=1, mbstd_group=2)
    G, D = config.generator(), config.discriminator()
    assert G(torch.randn(4, 8)).shape == (4, 1, 8, 8) and D(torch.randn(4, 1, 8, 8)).shape == (4,)
    assert D(torch.randn(1, 1, 8, 8)).shape == (1,)  # group = min(batch, mbstd_group), as in the original
    with pytest.raises(ValueError, match="not a multiple"):
        D(torch.randn(3, 1, 8, 8))


def test_double_backward_through_d_and_g():
    """R1 differentiates D's input gradient, path-length regularisation G's gradient wrt ws."""
    torch.manual_seed(0)
    G, D = StyleGAN2Generator(TINY), StyleGAN2Discriminator(TINY)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    grad.pow(2).sum().backward()
    assert D.convs[1].conv2[1].weight.grad.abs().sum() > 0 and D.convs[0][0].weight.grad.abs().sum() > 0

    ws = G.styles(torch.randn(2, 16)).detach().requires_grad_()
    image = G.synthesis(ws, G.make_noise(2))
    (grad,) = torch.autograd.grad((image * torch.randn_like(image)).sum(), ws, create_graph=True)
    grad.pow(2).sum(2).mean(1).sqrt().mean().backward()
    assert G.convs[0].conv.weight.grad.abs().sum() > 0 and G.conv1.conv.modulation.weight.grad.abs().sum() > 0

    kernel = torch.tensor([[1.0, 3.0], [2.0, 5.0]], dtype=torch.float64)  # asymmetric: orientation matters
    inp = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    for up, down, pad in [(2, 1, (1, 0)), (1, 2, (0, 1)), (1, 1, (-1, 2, 1, 0))]:
        assert torch.autograd.gradgradcheck(lambda t, u=up, d=down, p=pad: upfirdn2d(t, kernel, u, d, p), (inp,))


def test_upfirdn2d_is_a_true_convolution():
    """upfirdn2d convolves (flipped kernel), as rosinality's upfirdn2d_native; checked on an impulse."""
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1
    kernel = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = upfirdn2d(x, kernel, pad=(1, 0))
    assert out.shape == (1, 1, 3, 3)
    torch.testing.assert_close(out[0, 0, 1:, 1:], kernel)  # the impulse response is the kernel itself
    up = upfirdn2d(torch.ones(1, 1, 2, 2), torch.ones(2, 2), up=2, pad=(1, 0))
    assert up.shape == (1, 1, 4, 4) and up.sum() == 16  # zeros inserted: each input meets the whole kernel once


# --------------------------------------------------------------------------------------------
# Numbers of the original code

# Produced by running rosinality/stylegan2-pytorch model.py (commit bef283a1c24087da704d16c30abc8e36e63efa0e,
# 2021-11-24) on the CPU, with its op/ package replaced by a throwaway shim holding the CPU formulas of the
# same files (op/fused_act.py's fused_leaky_relu CPU branch, op/upfirdn2d.py's upfirdn2d_native, and
# conv2d_gradfix as plain F.conv2d / F.conv_transpose2d), torch 2.x float32, one thread:
#   g = Generator(16, 512, 8); d = Discriminator(16); both filled with hashed_state(parameter_layout(net));
#   g([z], noise=noise, randomize_noise=False); the same with truncation=0.7, truncation_latent =
#   g.style(pinned_truncation_latent()).mean(0, keepdim=True); g([z, z2], inject_index=3, ...);
#   d(pinned_images(4, 16)) with stddev_group 4, then stddev_group 2; d(cat(plain, mixing)) with group 2.
# Our networks gave the same float32 bits on that machine. Neither the original code nor the script is kept.
ORIGINAL_G = {
    "plain": {
        "corner": [
            [
                [[1.373377, 1.864444], [3.686615, 5.462079]],
                [[0.6948811, 0.1644378], [-4.860504, 0.9032815]],
                [[-0.1157333, -2.400063], [1.085072, 1.305408]],
            ],
            [
                [[6.153998, 5.145205], [9.149437, 10.18957]],
                [[-1.970529, 0.6692116], [1.977579, 0.6116263]],
                [[1.474742, 1.681689], [2.558354, 4.600184]],
            ],
        ],  # noqa: E501
        "mean_std": (2.240973, 5.559999),
    },  # fmt: skip
    "truncation": {
        "corner": [
            [
                [[1.382491, 1.775827], [3.419817, 4.946928]],
                [[0.5181404, 0.01073515], [-3.624, 0.9948735]],
                [[-0.3512245, -2.351877], [0.9274025, 1.799703]],
            ],
            [
                [[5.497755, 4.349838], [7.711182, 10.44906]],
                [[-1.243672, 0.8138349], [2.470354, 1.097329]],
                [[1.737122, 1.321254], [2.872401, 4.061539]],
            ],
        ],  # noqa: E501
        "mean_std": (2.098148, 4.976416),
    },  # fmt: skip
    "mixing": {
        "corner": [
            [
                [[0.01484644, 0.3065274], [0.8268608, 2.369931]],
                [[0.2544562, 0.08536553], [-3.571212, 2.455931]],
                [[-0.121718, 0.9846505], [3.055055, 2.923614]],
            ],
            [
                [[6.665229, 7.221912], [7.410005, 13.97003]],
                [[-0.02335605, 1.439098], [2.267596, 1.181496]],
                [[5.525366, 1.954944], [3.425368, 2.934857]],
            ],
        ],  # noqa: E501
        "mean_std": (3.757371, 5.375003),
    },  # fmt: skip
}
ORIGINAL_D = {
    "images_group4": [-1.62318, -1.455155, -1.853125, -1.614619],
    "images_group2": [-1.623877, -1.456411, -1.853725, -1.616175],
    "fakes_group2": [-1.040947, -1.183798, -1.478589, -1.305094],  # D(cat(plain, mixing)): G and D together
}
RTOL = 1e-4  # float32 through ~10 layers differs across CPUs' kernels by ~1e-6 relative; the pins are 7 digits


@pytest.fixture(scope="module")
def original_nets():
    config = StyleGAN2Config(resolution=16)
    with torch.random.fork_rng():
        G, D = config.generator().eval(), config.discriminator().eval()
    G.load_state_dict(hashed_state(parameter_layout(G)), strict=False)  # buffers (blur kernels) stay as built
    D.load_state_dict(hashed_state(parameter_layout(D)), strict=False)
    return G, D


def _g_outputs(G: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    z, z2 = pinned_latents(2)
    noise = pinned_noise(2, 16)
    with torch.no_grad():
        center = G.mapping(pinned_truncation_latent()).mean(0, keepdim=True)
        return {
            "plain": G(z, noise=noise),
            "truncation": G(z, noise=noise, truncation=0.7, truncation_latent=center),
            "mixing": G(z, noise=noise, mix_z=z2, crossover=2),  # inject_index 3
        }


def _g_deviation(name: str, image: torch.Tensor) -> float:
    """Largest deviation from the pin in units of its tolerance (> 1: outside)."""
    pin = ORIGINAL_G[name]
    mean, std = pin["mean_std"]
    corner = torch.tensor(pin["corner"])
    scale = RTOL * (corner.abs() + std)
    deviation = ((image[:, :, :2, :2] - corner).abs() / scale).max()
    stats = torch.stack([image.mean(), image.std()])
    stats_dev = ((stats - torch.tensor([mean, std])).abs() / (RTOL * (abs(mean) + std))).max()
    return max(deviation.item(), stats_dev.item())


def test_generator_matches_the_original_code(original_nets):
    G, _ = original_nets
    for name, image in _g_outputs(G).items():
        assert image.shape == (2, 3, 16, 16)
        assert _g_deviation(name, image) <= 1, name


def test_discriminator_matches_the_original_code(original_nets):
    G, D = original_nets
    images = pinned_images(4, 16)
    D2 = StyleGAN2Config(resolution=16, mbstd_group=2).discriminator()
    D2.load_state_dict(D.state_dict())
    with torch.no_grad():
        outs = _g_outputs(G)
        results = {
            "images_group4": D(images),
            "images_group2": D2(images),
            "fakes_group2": D2(torch.cat([outs["plain"], outs["mixing"]])),
        }
    for name, logits in results.items():
        torch.testing.assert_close(logits, torch.tensor(ORIGINAL_D[name]), rtol=RTOL, atol=RTOL, msg=name)


def _no_demodulation(G):
    for conv in [G.conv1, *G.convs]:
        conv.conv.demodulate = False


def _flipped_upsampling_conv(G):
    # NVIDIA's legacy.py flips TF's Conv0_up weights; forgetting (or adding) that flip is this bug.
    # (Flipping the [1 3 3 1] blur itself would change nothing: it is symmetric.)
    with torch.no_grad():
        for conv in G.convs[::2]:
            conv.conv.weight.copy_(conv.conv.weight.flip([3, 4]))


def _shifted_upsampling(G):
    for conv in G.convs[::2]:
        conv.conv.blur.pad = (2, 0)  # the same size, the image moved by a pixel


def _noise_strength_10_percent_off(G):
    with torch.no_grad():
        for conv in [G.conv1, *G.convs]:
            conv.noise.weight.mul_(1.1)


def _mapping_lr_mul_not_applied_to_bias(G):
    for layer in list(G.style)[1:]:
        layer.lr_mul = 1.0


@pytest.mark.parametrize(
    "bug",
    [
        _no_demodulation,
        _flipped_upsampling_conv,
        _shifted_upsampling,
        _noise_strength_10_percent_off,
        _mapping_lr_mul_not_applied_to_bias,
    ],  # fmt: skip
)
def test_the_pins_catch_porting_bugs(original_nets, bug):
    """Each bug takes the unmixed image far outside the pins' tolerance, so passing pins rule it out."""
    G = copy.deepcopy(original_nets[0])
    bug(G)
    z, _ = pinned_latents(2)
    with torch.no_grad():
        image = G(z, noise=pinned_noise(2, 16))
    assert _g_deviation("plain", image) > 100
