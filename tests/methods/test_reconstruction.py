"""bsa and glo: what trains and what stays frozen, latents that really are optimised, the EMD prior."""

import math

import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.method import build_method
from benchmark.trainer import Trainer
from methods.reconstruction import emd_to_normal, nearest_neighbour_distance, normalized
from tests.methods.helpers import (
    TinyPerceptual,
    changed,
    make_method,
    quick_config,
    toy_data,
    toy_target,
    train_briefly,
)


@pytest.mark.parametrize("conditional", [False, True], ids=["uncond", "cond"])
def test_bsa_freezes_every_generator_weight(tiny_source, conditional):
    target = toy_target(conditional, n_classes=2 if conditional else 1)
    method, before, _ = train_briefly("bsa", tiny_source, target, steps=3)
    moved = changed(method, before)
    adapted = {k for k in moved if k.endswith((".scale", ".shift"))}
    label_path = {k for k in moved if k.startswith("G.class_embed.")}
    assert len(adapted) == 2 * 2 * len(tiny_source.config.resolutions)  # scale, shift of both AdaINs per block
    assert all(moved[k] for k in adapted | label_path | {"latents"})
    frozen = {k: m for k, m in moved.items() if k.startswith("G.") and k not in adapted | label_path}
    assert frozen and not any(frozen.values()), [k for k, m in frozen.items() if m]
    assert method.D is None and not any(k.startswith("D.") for k in method.state_dict())


def test_bsa_at_identity_scale_shift_is_the_source(tiny_source):
    G0 = tiny_source.build_generator()
    z = torch.randn(4, tiny_source.config.style_dim)
    noise = G0.make_noise(4)
    for conditional in (False, True):
        method = make_method("bsa", tiny_source, toy_target(conditional, n_classes=3))
        labels = torch.tensor([0, 1, 2, 0]) if conditional else None
        assert torch.equal(method.G(z, labels, noise=noise), G0(z, noise=noise))


def test_glo_trains_all_of_g_and_the_latents(tiny_source):
    method, before, trainer = train_briefly("glo", tiny_source, toy_target(), steps=3)
    moved = changed(method, before)
    assert all(moved.values()), [k for k, m in moved.items() if not m]
    assert method.D is None and "D" not in trainer.optimizers


@pytest.mark.parametrize("name", ["bsa", "glo"])
def test_latents_are_optimised_and_reconstruction_improves(tiny_source, name):
    """FreezeD's script never gave its per-image embedding to an optimizer: ours must train it."""
    target = toy_target(n_images=6)
    data = toy_data(target)
    method = make_method(name, tiny_source, target)
    seen, sample_latents = [], method.sample_latents

    def recording(batch, ctx):
        seen.append(batch.indices.clone())
        return sample_latents(batch, ctx)

    method.sample_latents = recording
    trainer = Trainer(method, data, quick_config(steps=1, batch_size=4, lr=0.01), progress=False)
    g_params = {id(p) for group in trainer.optimizers["G"].param_groups for p in group["params"]}
    assert id(method.latents) in g_params
    trainer.run()
    in_batch = torch.zeros(6, dtype=torch.bool)
    in_batch[seen[0]] = True
    rows_moved = method.latents.detach().abs().sum(1) > 0  # latents start at zero
    assert torch.equal(rows_moved, in_batch)  # the batch's latents moved, the others did not (Adam beta1 = 0)

    def reconstruction_l1() -> float:
        with torch.no_grad():
            noise = method.G.make_noise(6, generator=torch.Generator().manual_seed(1))
            fake = method.G(method.latents, noise=noise)
        return (fake - (data.images.float() / 127.5 - 1)).abs().mean().item()

    start = reconstruction_l1()
    Trainer(method, data, quick_config(steps=30, batch_size=4, lr=0.01), progress=False).run()
    assert reconstruction_l1() < 0.9 * start


def test_emd_matches_the_official_nearest_neighbour_formula():
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(5, 3, generator=g), torch.randn(50, 3, generator=g)
    direct = sum(min(((zi - tj) ** 2).sum() for zi in z) for tj in t) / len(t)
    direct += sum(min(((zi - tj) ** 2).sum() for tj in t) for zi in z) / len(z)
    torch.testing.assert_close(nearest_neighbour_distance(z, t), direct)
    assert nearest_neighbour_distance(t, t).abs() < 1e-5


def test_emd_is_small_for_normal_quantiles_and_large_for_a_shifted_set():
    n = 200
    probabilities = (torch.arange(n) + 0.5) / n
    quantiles = (math.sqrt(2) * torch.erfinv(2 * probabilities - 1))[:, None]  # exact N(0, 1) quantiles
    reference = torch.randn(10 * n, 1, generator=torch.Generator().manual_seed(0))  # what emd_to_normal draws
    at_prior = emd_to_normal(quantiles, torch.Generator().manual_seed(0))
    torch.testing.assert_close(at_prior, nearest_neighbour_distance(quantiles, reference))
    assert at_prior < 0.01
    shifted = quantiles + 12
    gap = shifted.min() - reference.max()  # every pair is at least this far apart, both ways
    assert emd_to_normal(shifted, torch.Generator().manual_seed(0)) >= 2 * gap**2 > 40


def test_normalized_terms_have_value_one_and_the_gradient_of_the_log():
    x = torch.tensor([2.0, -1.0], requires_grad=True)
    loss = x.abs().mean()
    out = normalized(loss)
    out.backward()
    assert out.item() == 1.0
    torch.testing.assert_close(x.grad, torch.tensor([0.5, -0.5]) / loss.item())


def test_perceptual_network_is_frozen_out_of_checkpoints_and_follows_the_module(tiny_source):
    perceptual = TinyPerceptual()
    method = make_method("glo", tiny_source, toy_target(), perceptual=perceptual)
    assert not any(k.startswith("perceptual") or "body" in k for k in method.state_dict())
    trained = {id(p) for g in method.param_groups() for p in g.params}
    assert not any(p.requires_grad or id(p) in trained for p in perceptual.parameters())
    method.double()  # the same path as .to(device)
    assert all(p.dtype == torch.float64 for p in perceptual.parameters())


def test_a_reconstruction_method_needs_a_perceptual_network(tiny_source):
    with pytest.raises(BenchmarkError, match="perceptual"):
        build_method("bsa", tiny_source, toy_target())


def test_the_run_records_which_perceptual_network_the_loss_used(tiny_source):
    """bsa/glo write the perceptual network's description (VGG16: Caffe weights or torchvision's approximation)
    to the run folder's method_state.json."""
    from tests.methods.helpers import TinyPerceptual

    perceptual = TinyPerceptual()
    perceptual.description = "the original Caffe VGG16 (stand-in)"
    for name in ("bsa", "glo"):
        method = make_method(name, tiny_source, toy_target(), perceptual=perceptual)
        assert method.extra_state() == {"perceptual_network": "tiny-perceptual: the original Caffe VGG16 (stand-in)"}
