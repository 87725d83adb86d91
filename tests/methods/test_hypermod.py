"""hypermod: the modulation's parameterisation, self-alignment, the class split, freezing, Barlow Twins."""

import pytest
import torch

from benchmark.method import build_method
from benchmark.schedule import Stage
from benchmark.trainer import Trainer
from methods.contrastive import ViewAugmentation, augment, barlow_twins_loss, barlow_views
from tests.methods.helpers import changed, make_method, quick_config, toy_data, toy_target, train_briefly


def block_l1(G, G0, z, noise):
    """Sum over blocks of L1(hyper-modulated G's block output, the source's), class 0."""
    with torch.no_grad():
        _, outs = G(z, noise=noise, return_block_outputs=True)
        _, targets = G0(z, noise=noise, return_block_outputs=True)
    return sum((o - t).abs().mean() for o, t in zip(outs, targets)).item()


def randomise(G):
    with torch.no_grad():
        G.task.embedding.normal_()
        for conv in G.hyper_convs():
            conv.modulation.linear.bias.normal_()
            conv.bias_modulation.linear.bias.normal_()


def test_gamma_sigma_beta_mu_reproduces_the_source(tiny_source):
    """The target of self-alignment is reachable: W = sigma * W_hat + mu, also for fused convs."""
    method = build_method("hypermod", tiny_source, toy_target())
    G0 = tiny_source.build_generator(ema=True)  # self-alignment's target is g_running (self_alignment.py)
    z = torch.randn(4, method.style_dim)
    noise = G0.make_noise(4)
    with torch.no_grad():
        for conv in method.G.hyper_convs():
            conv.modulation.linear.weight_orig.zero_()
            gamma_beta = torch.stack([conv.weight_sigma[..., 0, 0], conv.weight_mu[..., 0, 0]], -1)
            conv.modulation.linear.bias.copy_(gamma_beta.flatten())
            conv.bias_modulation.linear.weight_orig.zero_()
            conv.bias_modulation.linear.bias.copy_(conv.bias_hat * (conv.bias_sigma - 1) + conv.bias_mu)
    assert any(conv.transposed for conv in method.G.hyper_convs())
    torch.testing.assert_close(method.G(z, noise=noise), G0(z, noise=noise), atol=1e-4, rtol=1e-4)
    assert block_l1(method.G, G0, z, noise) < 1e-4


def _at_first_train_step(method, record):
    """Wrap the step's first hook to call ``record()`` once, at the first step after self-alignment."""
    original = method.sample_latents

    def spy(batch, ctx):
        if ctx.stage.name == "train" and not hasattr(spy, "done"):
            spy.done = record(ctx)
        return original(batch, ctx)

    method.sample_latents = spy


def test_self_alignment_is_a_data_free_stage_before_the_budget(tiny_source):
    torch.manual_seed(1)
    G0 = tiny_source.build_generator(ema=True)
    z = torch.randn(8, 16)
    noise = G0.make_noise(8)
    method = build_method("hypermod", tiny_source, toy_target(), align_steps=20, align_batch=8)
    before = block_l1(method.G, G0, z, noise)
    seen = {}
    _at_first_train_step(method, lambda ctx: seen.update(step=ctx.step, l1=block_l1(method.G, G0, z, noise)) or True)
    trainer = Trainer(method, toy_data(toy_target()), quick_config(steps=2), progress=False)
    batches = []
    original_batch = trainer.next_batch
    trainer.next_batch = lambda: batches.append(trainer.step) or original_batch()
    trainer.run()
    assert trainer.schedule.describe() == "hypermod: self-align 0-20 (G only, no data), train 20-22"
    assert seen["step"] == 20 and trainer.step == 22  # the 2 budget steps come after the 20 alignment steps
    assert batches == [20, 21], "self-alignment reads no training images"
    assert seen["l1"] < 0.97 * before, (before, seen["l1"])  # about 6.7 -> 6.4; the official runs 10k steps


def test_training_starts_with_classes_split_a_fresh_average_and_fresh_optimizers(tiny_source):
    target = toy_target(conditional=True, n_classes=3)
    torch.manual_seed(0)
    method = build_method("hypermod", tiny_source, target, align_steps=2, align_batch=4)
    trainer = Trainer(method, toy_data(target), quick_config(steps=1), progress=False)

    def record(ctx):
        assert all(torch.equal(v, method.G.state_dict()[k]) for k, v in method.G_ema.state_dict().items())
        assert all(not opt.state for opt in trainer.optimizers.values()), "optimizers keep alignment's moments"
        randomise(method.G)  # the copied rows must stay equal whatever the shared embedding is
        method.G.task.embedding.data[1:] = method.G.task.embedding.data[0]
        z = torch.randn(3, method.style_dim).repeat(3, 1)
        labels = torch.arange(3).repeat_interleave(3)
        noise = method.G.backbone.make_noise(3)
        images = method.G(z, labels, noise=[n.repeat(3, 1, 1, 1) for n in noise]).view(3, 3, -1)
        torch.testing.assert_close(images[1], images[0])
        torch.testing.assert_close(images[2], images[0])
        return True

    aligned_embedding = {}
    original_enter = method.enter_stage

    def enter(stage):
        if stage.name == "train":
            aligned_embedding["row0"] = method.G.task.embedding[0].detach().clone()
        original_enter(stage)
        if stage.name == "train":
            assert bool(method.G.task.classes_split)
            assert all(torch.equal(row, aligned_embedding["row0"]) for row in method.G.task.embedding.detach())

    method.enter_stage = enter
    _at_first_train_step(method, record)
    trainer.run()
    assert bool(method.G.task.classes_split)

    # a checkpoint taken after the copy does not copy again when the run resumes
    with torch.no_grad():
        method.G.task.embedding[1] += 1
    state = method.state_dict()
    resumed = build_method("hypermod", tiny_source, target, align_steps=2, align_batch=4)
    resumed.attach_ema()  # as the trainer does before loading a checkpoint
    resumed.load_state_dict(state)
    resumed.enter_stage(Stage("train"))
    assert torch.equal(resumed.G.task.embedding, method.G.task.embedding)


def test_frozen_parts_stay_bit_identical(tiny_source):
    target = toy_target(conditional=True, n_classes=2)
    method, before, _ = train_briefly("hypermod", tiny_source, target, steps=3, align_steps=1, align_batch=4)
    moved = changed(method, before)
    frozen_prefixes = ("G.backbone.", "D.backbone.from_rgb.", "D.backbone.linear.")
    frozen = [k for k in moved if k.startswith(frozen_prefixes) and "modulation" not in k]
    assert frozen and not any(moved[k] for k in frozen), [k for k in frozen if moved[k]]
    for part in ("adain", "noise", "style.", "to_rgb", "conv1.input"):  # AdaIN, noise, mapping, to_rgb, constant
        assert any(part in k for k in frozen), part
    assert moved["D.head.conv.weight_orig"] and moved["D.backbone.progression.6.conv1.0.conv.weight_orig"]
    hyper = [k for k in moved if k.endswith(".modulation.linear.bias")]
    assert hyper and all(moved[k] for k in hyper)
    fresh = build_method("hypermod", tiny_source, target)
    for (name, buffer), (_, source) in zip(method.G.named_buffers(), fresh.G.named_buffers()):
        if name.endswith("_hat"):
            assert torch.equal(buffer, source), name
    assert not any(k.endswith("_hat") for k in method.state_dict()), "normalised kernels belong to the source"


def test_per_class_and_per_sample_weights_give_the_same_images(tiny_source):
    """In float64, so that the grouped and the per-class convs agree to rounding."""
    method = build_method("hypermod", tiny_source, toy_target(conditional=True, n_classes=3))
    G = method.G.double()
    G.task.split_classes()
    randomise(G)
    z, mix_z = torch.randn(2, 7, method.style_dim, dtype=torch.float64)
    labels = torch.tensor([2, 0, 1, 2, 0, 0, 1])
    noise = [n.double() for n in G.backbone.make_noise(7)]
    per_class = G(z, labels, noise=noise, mix_z=mix_z, crossover=1)
    G.per_sample = True
    per_sample = G(z, labels, noise=noise, mix_z=mix_z, crossover=1)
    torch.testing.assert_close(per_class, per_sample)
    assert per_class.std() > 0.01
    G.per_sample = False
    alone = G(z[3:4], labels[3:4], noise=[n[3:4] for n in noise], mix_z=mix_z[3:4], crossover=1)
    torch.testing.assert_close(alone, per_class[3:4])


def test_barlow_twins_loss_matches_the_direct_formula():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g) * 3 + 1, torch.randn(6, 5, generator=g)
    bn = torch.nn.BatchNorm1d(5, affine=False).train()
    c = bn(z1).T @ bn(z2) / 6
    expected = sum((1 - c[i, i]) ** 2 for i in range(5)) + 5e-3 * sum(
        c[i, j] ** 2 for i in range(5) for j in range(5) if i != j
    )
    torch.testing.assert_close(barlow_twins_loss(z1, z2, 5e-3), expected)


def test_views_are_seeded_and_keep_shape_and_range():
    for channels in (1, 3):
        images = torch.rand(4, channels, 16, 16) * 2 - 1
        first = barlow_views(images, torch.Generator().manual_seed(3))
        again = barlow_views(images, torch.Generator().manual_seed(3))
        for view, same in zip(first, again):
            assert torch.equal(view, same) and view.shape == images.shape
            assert view.min() >= -1 and view.max() <= 1 and not torch.equal(view, images)
    nothing = ViewAugmentation(0, 0, crop_scale=(1, 1), crop_ratio=(1, 1), flip_p=0, jitter_p=0, grayscale_p=0)
    torch.testing.assert_close(augment(images, nothing, torch.Generator()), images)


def test_resume_after_the_class_split_is_bit_identical(tiny_source, tmp_path):
    """A checkpoint taken after the copy must not copy again (the classes have trained apart since)."""
    target = toy_target(conditional=True, n_classes=2)

    def trainer(checkpoint_dir=None, evaluate=None):
        torch.manual_seed(0)
        method = build_method("hypermod", tiny_source, target, align_steps=1, align_batch=4, task_lr_mult=1.0)
        config = quick_config(steps=5, eval_every=2)
        return Trainer(
            method, toy_data(target), config, checkpoint_dir=checkpoint_dir, evaluate=evaluate, progress=False
        )

    reference = trainer()
    reference.run()
    rows = reference.method.G.task.embedding
    assert not torch.equal(rows[0], rows[1])

    def die_at_4(method, step):
        if step == 4:
            raise KeyboardInterrupt  # after evaluating step 4, before its checkpoint: resume from step 2

    with pytest.raises(KeyboardInterrupt):
        trainer(tmp_path, die_at_4).run()
    resumed = trainer(tmp_path)
    assert resumed.resume() == 2
    resumed.run()
    for k, v in reference.method.state_dict().items():
        assert torch.equal(v, resumed.method.state_dict()[k]), k


def test_fakes_take_the_batch_labels_and_contrastive_fakes_reuse_z_with_fresh_noise(tiny_source):
    """train.py: every fake uses ``task(real_label)``; the contrastive fakes are ``generator(gen_in1)`` again."""
    target = toy_target(conditional=True, n_classes=3, n_images=6)
    torch.manual_seed(0)
    method = build_method("hypermod", tiny_source, target, align_steps=0)
    trainer = Trainer(method, toy_data(target), quick_config(steps=1), progress=False)
    calls, batches = [], []
    generate, sample_latents = method.generate, method.sample_latents

    def spy_generate(latents, ctx):
        fakes = generate(latents, ctx)
        calls.append((latents, fakes.images.detach()))
        return fakes

    def spy_sample_latents(batch, ctx):
        batches.append(batch.labels.clone())
        return sample_latents(batch, ctx)

    method.generate, method.sample_latents = spy_generate, spy_sample_latents
    trainer.run()
    (d_latents, d_fake), (bt_latents, bt_fake), (g_latents, _) = calls  # D fakes, contrastive fakes, G fakes
    assert torch.equal(d_latents.labels, batches[0]) and torch.equal(g_latents.labels, batches[1])
    assert bt_latents is d_latents  # the same z (and mixing pair)
    assert not torch.equal(bt_fake, d_fake)  # fresh noise
    assert not torch.equal(g_latents.z, d_latents.z)


def test_train_compile_leaves_the_per_class_generator_eager_and_compiles_d(tiny_source):
    """Every batch's mix of class counts would be a graph of its own: G stays eager, D compiles."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    from benchmark.nets import StyledGenerator

    def graphs(function) -> int:
        return len(_debug_get_cache_entry_list(getattr(function, "__wrapped__", function).__code__))

    target = toy_target(conditional=True, n_classes=3, n_images=9)
    torch._dynamo.reset()
    torch.manual_seed(0)
    method = make_method("hypermod", tiny_source, target, align_steps=1)
    config = quick_config(steps=4, compile="eager", stage_scale=1e-6)
    trainer = Trainer(method, toy_data(target), config, progress=False)
    try:
        trainer.run()
        counts = [graphs(type(method.G).forward), graphs(StyledGenerator.forward), graphs(type(method.D).forward)]
    finally:
        torch._dynamo.reset()
    assert counts[:2] == [0, 0] and counts[2] >= 1, counts


def test_unaligned_run_is_the_official_one_g_from_generator_average_from_g_running_classes_independent(tiny_source):
    """hypermod-noalign is train.py from a vanilla checkpoint: G (kernels included) from ``generator``, its
    average from ``g_running`` for the whole run (accumulate never touches buffers), and a random task
    embedding row per class that is never copied; the first train step keeps the source's average."""
    target = toy_target(conditional=True, n_classes=3)
    torch.manual_seed(0)
    method = build_method("hypermod", tiny_source, target, align_steps=0)
    embedding = method.G.task.embedding.detach().clone()
    assert not torch.equal(embedding[1], embedding[0]) and not torch.equal(embedding[2], embedding[0])
    trainer = Trainer(method, toy_data(target), quick_config(steps=2), progress=False)
    trainer.run()
    assert torch.equal(method.G.task.rows(torch.arange(3)), torch.arange(3))
    assert not torch.allclose(method.G.task.embedding[1], method.G.task.embedding[0])

    z = torch.randn(4, method.style_dim, generator=torch.Generator().manual_seed(1))
    noise = method.G.backbone.make_noise(4)
    with torch.no_grad():
        trained, average = tiny_source.build_generator(0), tiny_source.build_generator(0, ema=True)
        assert not torch.allclose(trained(z, None, noise), average(z, None, noise))
        torch.testing.assert_close(method.G.source_forward(z, noise), trained(z, None, noise), atol=1e-4, rtol=1e-4)
        # the EMA updates moved G_ema's frozen parameters a little toward G's, its kernels not at all
        for conv, reference in zip(method.G_ema.hyper_convs(), method.G.hyper_convs()):
            assert not torch.equal(conv.weight_hat, reference.weight_hat)
        # G_ema's kernels with g_running's other parts give g_running's images
        method.G_ema.backbone.load_state_dict(average.state_dict(), strict=False)
        torch.testing.assert_close(method.G_ema.source_forward(z, noise), average(z, None, noise), atol=1e-4, rtol=1e-4)
