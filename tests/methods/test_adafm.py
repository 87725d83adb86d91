"""adafm: identity at gamma = 1, beta = 0; frozen general part; gamma/beta train only from adafm_start."""

import pytest
import torch

from benchmark.trainer import Trainer
from methods import build_method
from tests.methods.helpers import changed, quick_config, toy_data, toy_target


def test_identity_modulation_reproduces_the_source_exactly(tiny_source):
    method = build_method("adafm", tiny_source, toy_target(), specific_init="source")
    assert method.general_parts == ("block8", "block16", "block32", "to_rgb")  # 3 blocks; 16 and 32 px are fused
    G0 = tiny_source.build_generator()
    z = torch.randn(5, method.style_dim)
    noise = G0.make_noise(5)
    assert torch.equal(method.G(z, noise=noise), G0(z, noise=noise))


def test_low_res_blocks_start_random_and_their_average_from_them(tiny_source):
    """Official: the low-res blocks are new; the general part and (our departure) the mapping are the source's."""
    torch.manual_seed(0)
    method = build_method("adafm", tiny_source, toy_target())
    assert method.specific_parts == ("mapping", "block4")
    source = tiny_source.g_state
    ours = method.G.state_dict()
    specific = [k for k in ours if k.startswith("generator.progression.0.")]
    mapping = [k for k in ours if k.startswith("style.")]
    assert mapping and all(torch.equal(ours[k], source[k]) for k in mapping), "the mapping is the source's"
    general_conv = "generator.progression.1.conv2.conv.source.weight_orig"  # swapped into an AdaFM layer
    assert specific and all(not torch.equal(ours[k], source[k]) for k in specific if source[k].count_nonzero())
    assert torch.equal(ours[general_conv], source["generator.progression.1.conv2.conv.weight_orig"])
    method.attach_ema()
    ema = method.G_ema.state_dict()
    assert all(torch.equal(ema[k], ours[k]) for k in specific), "the average of a new part starts from its init"
    assert torch.equal(ema[general_conv], tiny_source.g_ema_state["generator.progression.1.conv2.conv.weight_orig"])


def test_general_part_frozen_and_modulation_starts_at_adafm_start(tiny_source):
    torch.manual_seed(0)
    target = toy_target(conditional=True, n_classes=2)
    method = build_method("adafm", tiny_source, target, adafm_start=2)
    before = {k: v.detach().clone() for k, v in method.named_parameters()}
    snapshots = {}

    def snapshot(m, step):
        snapshots[step] = [p.detach().clone() for p in m.modulation_parameters()]

    config = quick_config(steps=4, eval_every=2)
    Trainer(method, toy_data(target), config, evaluate=snapshot, progress=False).run()

    initial = [p for k, p in before.items() if k.endswith((".gamma", ".beta"))]
    assert len(initial) == len(snapshots[2]) == 12  # conv1 and conv2 of three blocks
    assert all(torch.equal(a, b) for a, b in zip(initial, snapshots[2])), "gamma/beta moved before adafm_start"
    assert all(not torch.equal(a, b) for a, b in zip(snapshots[2], snapshots[4])), "gamma/beta did not train after"

    moved = changed(method, before)
    general = ("G.generator.progression.1.", "G.generator.progression.2.", "G.generator.progression.3.")
    frozen = [k for k in moved if k.startswith((*general, "G.generator.to_rgb.", "D.from_rgb.", "D.progression.5."))]
    frozen = [k for k in frozen if not k.endswith((".gamma", ".beta"))]
    assert any(".source.weight" in k for k in frozen)  # the fused convs' source kernels are among them
    assert frozen and not any(moved[k] for k in frozen), [k for k in frozen if moved[k]]
    specific = (
        "G.generator.progression.0.conv2.conv.weight_orig",
        "G.style.1.linear.weight_orig",
        "G.class_embed.weight",
    )
    assert all(moved[k] for k in specific)
    assert moved["D.progression.6.conv1.0.conv.weight_orig"] and moved["D.class_projection.weight"]


@pytest.mark.parametrize("option", [{"general_blocks": 4}, {"general_blocks": 0}, {"adafm_start": -1}])
def test_rejects_bad_options(tiny_source, option):
    from methods.adafm import AdaFM

    with pytest.raises(ValueError):
        AdaFM(tiny_source, toy_target(), **option)
