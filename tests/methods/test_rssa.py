"""rssa: the inversion is cached and reused, its losses and projection behave, and with both losses and the
projection off (and CDC's anchors off) one step is fine-tuning's, bit for bit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import methods.rssa as rssa
from benchmark.errors import BenchmarkError
from benchmark.method import Resource, TrainingSet, build_method, provide_resources
from benchmark.step import StepContext
from benchmark.trainer import Trainer
from methods.cdc_parts import AnchorLatents, PatchHead
from tests.methods.helpers import TinyPerceptual, make_method, quick_config, toy_data, toy_target, toy_training_set


@pytest.fixture
def count_inversions(monkeypatch):
    calls = []
    invert = rssa.invert_images

    def counting(G, images, *args, **kwargs):
        calls.append(len(images))
        return invert(G, images, *args, **kwargs)

    monkeypatch.setattr(rssa, "invert_images", counting)
    return calls


def test_the_inverted_codes_are_cached_and_reused(tiny_source_stylegan2, tmp_path, count_inversions):
    target = toy_target(n_images=5)
    first = make_method("rssa", tiny_source_stylegan2, target, training_set=toy_training_set(target, 0, tmp_path))
    assert count_inversions == [5]
    files = list((tmp_path / rssa.INVERSION_CACHE).glob("*.pt"))
    assert len(files) == 1
    codes = first.G.projection.codes
    assert codes.shape == (5, tiny_source_stylegan2.config.n_styles, tiny_source_stylegan2.config.style_dim)

    second = make_method("rssa", tiny_source_stylegan2, target, training_set=toy_training_set(target, 0, tmp_path))
    assert count_inversions == [5], "the second build inverted again"
    assert torch.equal(second.G.projection.codes, codes)

    # Other images, or other inversion settings, are another key.
    make_method("rssa", tiny_source_stylegan2, target, training_set=toy_training_set(target, 1, tmp_path))
    options = dict(training_set=toy_training_set(target, 0, tmp_path), inversion_lr=0.05)
    make_method("rssa", tiny_source_stylegan2, target, **options)
    # Other source weights too.
    shifted = {k: v + 0.01 if v.is_floating_point() else v for k, v in tiny_source_stylegan2.g_state.items()}
    other = dataclasses.replace(tiny_source_stylegan2, g_state=shifted, g_ema_state=shifted)
    make_method("rssa", other, target, training_set=toy_training_set(target, 0, tmp_path))
    assert count_inversions == [5, 5, 5, 5]
    assert len(list((tmp_path / rssa.INVERSION_CACHE).glob("*.pt"))) == 4


def test_the_inversion_reconstructs_better_than_the_mean_code(tiny_source_stylegan2):
    G = tiny_source_stylegan2.build_generator(ema=True).requires_grad_(False)
    images = toy_data(toy_target(n_images=3)).images.float() / 127.5 - 1
    settings = rssa.InversionSettings(steps=30, lr=0.1, lr_halve_every=10, lpips_weight=1.0)
    start = rssa.invert_images(G, images, TinyPerceptual(), rssa.InversionSettings(steps=0))
    codes = rssa.invert_images(G, images, TinyPerceptual(), settings)

    def error(c):
        return (G.synthesis(c, G.stored_noise()) - images).pow(2).mean().item()

    assert error(codes) < error(start)


def test_the_inversion_follows_the_budget_scale():
    settings = rssa.InversionSettings().scaled(0.01)
    assert (settings.steps, settings.lr_halve_every) == (40, 10)
    assert rssa.InversionSettings().scaled(1e-9).steps == 1


def test_projection_keeps_codes_in_the_span_and_the_norm(tiny_source_stylegan2):
    config = tiny_source_stylegan2.config
    codes = torch.randn(3, config.n_styles, config.style_dim)
    full = rssa.LatentProjection(codes, torch.ones(config.n_styles))
    inside = torch.einsum("n,nld->ld", torch.tensor([0.5, -1.0, 2.0]), codes)[None]
    torch.testing.assert_close(full(inside), inside, rtol=1e-4, atol=1e-4)
    w = torch.randn(4, config.n_styles, config.style_dim)
    torch.testing.assert_close(full(w).norm(dim=2), w.norm(dim=2))
    assert torch.equal(rssa.LatentProjection(codes, torch.zeros(config.n_styles))(w), w)


def test_projection_mixing_equals_the_official_table_at_256_px():
    from benchmark.nets.stylegan2 import StyleGAN2Config

    weights = rssa.projection_weights(StyleGAN2Config(resolution=256), rssa.PROJECTION_MIX)
    official = [0, 0, 0, 0.05, 0.05, 0.05, 0.05, 0.45, 0.45, 0.65, 0.65, 0.85, 0.85, 0.85]  # Projection_module
    torch.testing.assert_close(weights, torch.tensor(official))


def test_correlation_losses_are_zero_for_equal_features_and_positive_otherwise():
    torch.manual_seed(0)
    feats = [torch.randn(4, 8, r, r) for r in (4, 8, 16, 32)]
    other = [f + 0.5 * torch.randn_like(f) for f in feats]
    assert rssa.self_correlation_loss(feats, feats, (8, 32)).item() == 0
    assert rssa.self_correlation_loss(feats, other, (8, 32)).item() > 0
    assert rssa.disturbance_correlation_loss(feats, feats, 16, 8).item() == 0
    assert rssa.disturbance_correlation_loss(feats, other, 16, 8).item() > 0


def test_disturbance_correlation_equals_a_direct_computation_on_one_small_layer():
    torch.manual_seed(0)
    fs, ft = torch.randn(3, 2, 2, 2), torch.randn(3, 2, 2, 2)
    expected = 0
    ns, nt = (torch.nn.functional.normalize(f, dim=1).flatten(2) for f in (fs, ft))  # (B, C, HW)
    for j in range(2):
        for k in range(j + 1, 3):
            cs = torch.softmax(ns[j].T @ ns[k], 1)
            ct = torch.softmax(nt[j].T @ nt[k], 1)
            # mean over the (2 * repeats) pairs' entries, times positions, times repeats, over 6
            expected += (cs - ct).abs().sum() / (4 * 4 * (2 - j)) * 4 * (2 - j) / 6
    torch.testing.assert_close(rssa.disturbance_correlation_loss([fs], [ft], 4, 8), torch.as_tensor(expected))


def _one_step(name, source, **options):
    target = toy_target()
    torch.manual_seed(0)
    method = build_method(name, source, target, **options)
    recipe = {**source.config.recipe, "r1_every": 2, "pl_every": 2}
    trainer = Trainer(method, toy_data(target), quick_config(**recipe, steps=1), seed=0, progress=False)
    trainer.run()
    return method


def test_with_both_losses_and_the_projection_off_a_step_is_fine_tunings(tiny_source_stylegan2):
    off = dict(self_corr_weight=0, dis_corr_weight=0, project=False, anchor_every=0)
    ours = _one_step("rssa", tiny_source_stylegan2, **off)
    theirs = _one_step("transfergan", tiny_source_stylegan2)
    for net in ("G", "D"):
        mine = [p for _, p in getattr(ours, net).named_parameters()]
        reference = [p for _, p in getattr(theirs, net).named_parameters()]
        assert len(mine) == len(reference)
        assert all(torch.equal(a, b) for a, b in zip(mine, reference)), net
    assert any(not torch.equal(p, tiny_source_stylegan2.d_state[k]) for k, p in theirs.D.named_parameters())


def test_anchor_steps_use_anchors_and_the_image_logit_other_steps_the_patch_head(tiny_source_stylegan2):
    method = make_method("rssa", tiny_source_stylegan2, toy_target(), project=False)
    images = torch.zeros(4, 1, 32, 32)
    batch = type("B", (), {"images": images})()

    def ctx(step):
        return StepContext(step, None, "D", None, 10.0, 16, {}, torch.Generator().manual_seed(0))

    z = method.sample_latents(batch, ctx(0)).z
    distance = (z[:, None] - method.anchors.anchors[None]).norm(dim=2).min(1).values
    assert (distance < 0.1 * 6 * method.style_dim**0.5).all() and z.shape == (4, method.style_dim)
    assert method.discriminate(images, None, ctx(0)).shape == (4,)
    assert method.discriminate(images, None, ctx(1)).shape == (4, 16)  # 4 x 4 patches at 32 px
    r1_real = images.clone().requires_grad_(True)  # R1 differentiates the per-image mean, as CDC's does
    assert method.discriminate(r1_real, None, ctx(1)).shape == (4,)


def test_cdc_parts_interface(tiny_source_stylegan2):
    torch.manual_seed(0)
    anchors = AnchorLatents(10, 16)
    assert [anchors.active(s) for s in range(5)] == [True, False, False, False, True]
    assert not AnchorLatents(10, 16, every=0).active(0)
    D = tiny_source_stylegan2.build_discriminator()
    head = PatchHead(D)
    assert head.layer == "block8.conv2" and head(D, torch.zeros(2, 1, 32, 32)).shape == (2, 16)
    with pytest.raises(ValueError, match="patch_resolution must be one of"):
        PatchHead(D, 32)


def test_bad_options_are_one_line_errors(tiny_source_stylegan2):
    target = toy_target()
    with pytest.raises(BenchmarkError, match="needs the training images"):
        build_method("rssa", tiny_source_stylegan2, target, perceptual=TinyPerceptual())
    with pytest.raises(BenchmarkError, match="'perceptual' key"):
        build_method("rssa", tiny_source_stylegan2, target, training_set=toy_training_set(target))
    with pytest.raises(BenchmarkError, match="correlation weights must be >= 0"):
        build_method("rssa", tiny_source_stylegan2, target, self_corr_weight=-1, project=False)


def test_provide_resources_gives_the_training_set_only_to_methods_that_declare_it():
    training = TrainingSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), None)
    calls = []

    def give():
        calls.append(1)
        return training

    provided = provide_resources(rssa.RSSA, {"project": False}, None, TinyPerceptual, give)
    assert provided["training_set"] is training and rssa.RSSA.resources["training_set"] is Resource.TRAINING_SET
    from methods.finetune import TransferGAN

    assert provide_resources(TransferGAN, {}, None, TinyPerceptual, give) == {} and calls == [1]
    assert provide_resources(rssa.RSSA, {}, None, TinyPerceptual)["training_set"] is None


@pytest.mark.slow  # alone about 2.5 min on a busy CPU, most of it the session's classifier and data preparation
def test_a_user_brings_only_images_the_runner_inverts_once_and_a_second_run_reuses_it(
    tmp_path, cache_dir, count_inversions
):
    """Through the CLI on a tiny StyleGAN2 suite: the runner gives rssa the cell's training images and the
    suite's cache folder (``Resource.TRAINING_SET``); a second run in a fresh output folder reads the codes."""
    from benchmark.cli import main
    from tests.conftest import TINY_BACKBONE, tiny_suite, write_suite

    widths = {k: v for k, v in TINY_BACKBONE.items() if k != "fused_min_resolution"}
    suite = tiny_suite(
        backbone={"name": "stylegan2", **widths},
        perceptual="digits-classifier",
        methods=[{"name": "rssa", "options": {"inversion_steps": 20, "inversion_lr_halve_every": 10}}],
    )
    suite["targets"] = suite["targets"][:1]  # digit7, 5 shots
    suite["sources"]["digits-0to6"]["options"]["steps"] = 2
    path = write_suite(tmp_path / "tiny-sg2.yaml", suite)
    for out in ("first", "second"):
        args = ["--suite", path, "--out", tmp_path / out, "--cache-dir", cache_dir, "--no-progress"]
        assert main([str(a) for a in args]) == 0
    assert count_inversions == [5]  # the five training images, inverted once
    codes = list((cache_dir / rssa.INVERSION_CACHE).glob("*.pt"))
    assert len(codes) == 1 and torch.load(codes[0])["codes"].shape[0] == 5
    for out in ("first", "second"):
        (run,) = (tmp_path / out / "runs" / "tiny").iterdir()
        assert '"status": "finished"' in (run / "result.json").read_text()
