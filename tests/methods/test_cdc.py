"""CDC's defining properties: off, it is fine-tuning; its patch D scores 32 x 32 patches at 256 px; its KL is CDC's."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from benchmark.nets.stylegan2 import StyleGAN2Config
from benchmark.schedule import Stage
from benchmark.sources.base import Source
from benchmark.step import StepContext
from benchmark.trainer import Trainer
from methods.cdc import distance_consistency, similarity_distributions
from tests.methods.helpers import make_method, quick_config, toy_data, toy_target


def _run(name: str, source, steps: int = 3, **options) -> Trainer:
    target = toy_target()
    torch.manual_seed(0)
    method = make_method(name, source, target, **options)
    config = quick_config(**{**source.config.recipe, "steps": steps, "r1_every": 2, "pl_every": 2})
    trainer = Trainer(method, toy_data(target), config, seed=0, progress=False)
    trainer.run()
    return trainer


def test_without_consistency_and_anchors_a_cdc_step_is_fine_tuning_bit_for_bit(tiny_source_stylegan2):
    tgan = _run("transfergan", tiny_source_stylegan2)
    cdc = _run("cdc", tiny_source_stylegan2, kl_weight=0, n_anchors=0)
    ours, theirs = tgan.method.state_dict(), cdc.method.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    with_kl = _run("cdc", tiny_source_stylegan2, n_anchors=0).method.state_dict()  # the KL term moves G
    assert not all(torch.equal(ours[k], with_kl[k]) for k in ours if k.startswith("G."))


def _ctx(step: int) -> StepContext:
    return StepContext(step, Stage("train", main=True), "D", None, 10.0, 16, {}, torch.Generator().manual_seed(0))


def test_the_patch_discriminator_scores_32_x_32_patches_at_256_px():
    # a 256 px StyleGAN2 of tiny widths: the shapes of CDC's 256 px nets, at a fraction of the cost
    config = StyleGAN2Config(
        resolution=256, style_dim=8, n_mlp=1, channels={r: 4 for r in (4, 8, 16, 32, 64, 128, 256)}
    )
    torch.manual_seed(0)
    source = Source("tiny256", config, config.generator().state_dict(), config.discriminator().state_dict())
    target = toy_target()
    method = make_method("cdc", source, toy_target())
    assert method.patch_head.layer == "block64.conv2"  # Patch_Discriminator's feat[0] at 256 px
    state = method.state_dict()
    assert not any(k.startswith("G_source.") for k in state) and "anchors.anchors" in state  # checkpoint contents
    images = torch.randn(2, 3, 256, 256)
    assert method.discriminate(images, None, _ctx(1)).shape == (2, 32 * 32)  # a patch step: 32 x 32 logits each
    assert method.discriminate(images, None, _ctx(4)).shape == (2,)  # an anchor step: the image-level D
    assert target.resolution == 32 and make_method("cdc", _tiny32(), target).patch_head.patch_resolution == 4


def _tiny32() -> Source:
    config = StyleGAN2Config(resolution=32, style_dim=8, n_mlp=1, image_channels=1, channels={4: 4, 8: 4, 16: 4, 32: 4})
    return Source("tiny32", config, config.generator().state_dict(), config.discriminator().state_dict())


def test_the_consistency_loss_is_cdc_trains_kl_of_softmaxed_cosine_similarities():
    torch.manual_seed(0)
    source = [torch.randn(4, 3, 2, 2) for _ in range(3)]
    target = [torch.randn(4, 3, 2, 2) for _ in range(3)]
    layers = [1, 2, 1, 2]

    def official(features):  # CDC train.py's double loop, spelled out
        sim, dist = nn.CosineSimilarity(), torch.zeros(4, 3)
        for i in range(4):
            k = 0
            for j in range(4):
                if i != j:
                    anchor = features[layers[i]][i].reshape(-1)[None]
                    dist[i, k] = sim(anchor, features[layers[i]][j].reshape(-1)[None])
                    k += 1
        return nn.Softmax(dim=1)(dist)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KLDivLoss's "mean" reduction warns; CDC uses it
        expected = nn.KLDivLoss()(torch.log(official(target)), official(source))
    ours = distance_consistency(similarity_distributions(target, layers), similarity_distributions(source, layers))
    assert ours.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.allclose(similarity_distributions(source, layers), official(source), atol=1e-7)
