"""freezeg and partial: frozen parts stay bit-identical, trained parts move, defaults map the papers' splits."""

import pytest
import torch

from benchmark.method import build_method
from benchmark.nets import BackboneConfig, Discriminator, StyledGenerator
from benchmark.sources import Source
from tests.methods.helpers import changed, toy_target, train_briefly

# The tiny source's blocks by rosinality index: G progression.i makes 4 * 2**i px,
# D progression.(8 - i) takes 4 * 2**i px, so G 4/8/16/32 px = 0/1/2/3 and D 32/16/8/4 px = 5/6/7/8.


def _split(moved: dict, prefixes: tuple[str, ...]) -> tuple[dict, dict]:
    inside = {k: m for k, m in moved.items() if k.startswith(prefixes)}
    outside = {k: m for k, m in moved.items() if not k.startswith(prefixes)}
    return inside, outside


def _random_source(resolution: int) -> Source:
    """A source with random weights at ``resolution`` and 4 channels: cheap, enough to check part names."""
    config = BackboneConfig(resolution=resolution, style_dim=8, n_mlp=1, channels={4 * 2**i: 4 for i in range(9)})
    g, d = StyledGenerator(config).state_dict(), Discriminator(config).state_dict()
    return Source("random", config, g, d)


def _blocks(net: torch.nn.Module, trainable: bool) -> set[int]:
    """rosinality indices of the blocks of ``net`` (a Synthesis or a Discriminator) that (do not) train."""
    named = net.named_parameters()
    return {int(k.split(".")[1]) for k, p in named if k.startswith("progression.") and p.requires_grad == trainable}


def test_freezeg_trains_only_the_top_g_blocks_and_all_of_d(tiny_source):
    method, before, _ = train_briefly("freezeg", tiny_source, toy_target(), steps=3, g_trainable_blocks=2)
    g_moved, d_moved = _split(changed(method, before), ("G.",))
    frozen, trained = _split(g_moved, ("G.style.", "G.generator.progression.0.", "G.generator.progression.1."))
    assert frozen and not any(frozen.values()), [k for k, m in frozen.items() if m]
    assert trained and all(trained.values()), [k for k, m in trained.items() if not m]
    assert any(k.startswith("G.generator.to_rgb.") for k in trained)
    assert all(d_moved.values()), [k for k, m in d_moved.items() if not m]


def test_freezeg_default_is_freezegs_256px_split():
    """finetune_loc = 3 at 256 px: the 64, 128 and 256 px blocks and to_rgb train; mapping and 4-32 px do not."""
    method = build_method("freezeg", _random_source(256), toy_target())
    trainable = {k for k, p in method.G.named_parameters() if p.requires_grad}
    assert trainable and all(k.startswith(("generator.progression.", "generator.to_rgb.")) for k in trainable)
    assert _blocks(method.G.generator, trainable=True) == {4, 5, 6}  # 64, 128, 256 px
    assert all(p.requires_grad for p in method.G.generator.to_rgb.parameters())
    assert all(p.requires_grad for p in method.D.parameters())


def test_freezeg_conditional_label_path_trains(tiny_source):
    target = toy_target(conditional=True, n_classes=2)
    method, before, _ = train_briefly("freezeg", tiny_source, target, steps=2, g_trainable_blocks=1)
    moved = changed(method, before)
    assert moved["G.class_embed.weight"]
    assert not moved["G.style.1.linear.weight_orig"]


def test_partial_freezes_the_near_image_blocks_of_g_and_d(tiny_source):
    method, before, _ = train_briefly(
        "partial", tiny_source, toy_target(), steps=3, g_frozen_blocks=2, d_frozen_blocks=1
    )
    g_moved, d_moved = _split(changed(method, before), ("G.",))
    g_frozen, g_trained = _split(
        g_moved, ("G.generator.to_rgb.", "G.generator.progression.3.", "G.generator.progression.2.")
    )
    assert g_frozen and not any(g_frozen.values()), [k for k, m in g_frozen.items() if m]
    assert g_trained and all(g_trained.values()), [k for k, m in g_trained.items() if not m]
    assert any(k.startswith("G.style.") for k in g_trained)  # the mapping (Zhao's fc) trains
    d_frozen, d_trained = _split(d_moved, ("D.from_rgb.", "D.progression.5."))
    assert d_frozen and not any(d_frozen.values()), [k for k, m in d_frozen.items() if m]
    assert d_trained and all(d_trained.values()), [k for k, m in d_trained.items() if not m]


@pytest.mark.parametrize(
    ("resolution", "g_frozen", "d_frozen"),
    [(128, {3, 4, 5}, {3, 4, 5}), (256, {4, 5, 6}, {2, 3, 4})],  # G4D4: 32-128 px at 128, 64-256 px at 256
)
def test_partial_default_is_g4d4(resolution, g_frozen, d_frozen):
    """Zhao's CelebA (128 px) G4D4 split: G's 32-128 px blocks + conv_img, D's 128-32 px blocks + conv_img."""
    method = build_method("partial", _random_source(resolution), toy_target())
    assert _blocks(method.G.generator, trainable=False) == g_frozen
    assert _blocks(method.D, trainable=False) == d_frozen
    assert not any(p.requires_grad for p in method.G.generator.to_rgb.parameters())
    assert not any(p.requires_grad for p in method.D.from_rgb.parameters())
    assert all(p.requires_grad for p in method.G.style.parameters())
    assert all(p.requires_grad for p in method.D.linear.parameters())


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("freezeg", {"g_trainable_blocks": 0}),
        ("freezeg", {"g_trainable_blocks": 5}),
        ("partial", {"d_frozen_blocks": 4}),
    ],
)
def test_block_counts_are_validated(name, options, tiny_source):
    from benchmark.errors import BenchmarkError

    with pytest.raises(BenchmarkError, match="must be in"):
        build_method(name, tiny_source, toy_target(), **options)
