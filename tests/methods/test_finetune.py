"""scratch, transfergan, freezed: where they start and what trains."""

import torch

from tests.methods.helpers import changed, toy_target, train_briefly


def test_freezed_frozen_parameters_stay_bit_identical(tiny_source):
    method, before, _ = train_briefly("freezed", tiny_source, toy_target(), steps=3)
    moved = changed(method, before)
    frozen_prefixes = ("D.from_rgb.", "D.progression.5.")  # from_rgb and the 32 px block (rosinality index 5)
    frozen = {k: m for k, m in moved.items() if k.startswith(frozen_prefixes)}
    assert frozen and not any(frozen.values()), "FreezeD's frozen D parts changed"
    trained_d = {
        k: m
        for k, m in moved.items()
        if k.startswith(("D.progression.6.", "D.progression.7.", "D.progression.8.", "D.linear."))
    }
    assert trained_d and all(trained_d.values()), [k for k, m in trained_d.items() if not m]
    assert moved["G.generator.progression.3.conv2.conv.weight_orig"]
    assert moved["G.style.1.linear.weight_orig"]  # the mapping trains too (at lr x 0.01)


def test_freezed_block_count_follows_feature_loc(tiny_source):
    from benchmark.method import build_method

    method = build_method("freezed", tiny_source, toy_target(), d_trainable_blocks=1)
    trainable = {k for k, p in method.D.named_parameters() if p.requires_grad}
    assert trainable == {k for k in dict(method.D.named_parameters()) if k.startswith(("progression.8.", "linear."))}


def test_transfergan_starts_from_the_source_and_trains_everything(tiny_source):
    method, before, _ = train_briefly("transfergan", tiny_source, toy_target(), steps=2)
    for k, v in tiny_source.g_state.items():
        if f"G.{k}" in before:
            assert torch.equal(before[f"G.{k}"], v)
    moved = changed(method, before)
    d_moved = [m for k, m in moved.items() if k.startswith("D.")]
    assert all(d_moved)


def test_scratch_does_not_start_from_the_source(tiny_source):
    _, before, _ = train_briefly("scratch", tiny_source, toy_target(), steps=1)
    w = "generator.progression.3.conv2.conv.weight_orig"
    assert not torch.equal(before[f"G.{w}"], tiny_source.g_state[w])


def test_conditional_transfer_reproduces_the_source_at_step_zero(tiny_source):
    from benchmark.method import build_method

    method = build_method("transfergan", tiny_source, toy_target(conditional=True, n_classes=3))
    G0 = tiny_source.build_generator()
    z = torch.randn(6, method.style_dim)
    noise = G0.make_noise(6)
    torch.testing.assert_close(method.G(z, torch.tensor([0, 1, 2] * 2), noise=noise), G0(z, noise=noise))
