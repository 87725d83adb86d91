"""The shared recipe as the official fine-tuning codes run it: where G and its average start, the EMA's
decay, the mapping network's learning rate, and which methods see flipped images."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmark.method import build_method
from benchmark.sources import load_source
from benchmark.trainer import TrainData, Trainer
from tests.methods.helpers import make_method, quick_config, toy_data, toy_target
from tests.sources.checkpoints import save, training_checkpoint


@pytest.fixture(scope="module")
def rosinality_16px(tmp_path_factory):
    """A rosinality training checkpoint whose generator and g_running differ, loaded at 16 px."""
    checkpoint = training_checkpoint()
    path = save(checkpoint, tmp_path_factory.mktemp("ckpt") / "stylegan-256px-new.model")
    return checkpoint, load_source("rosinality-stylegan1", path, resolution=16)


def _rgb_data(n: int = 4) -> TrainData:
    images = torch.randint(0, 256, (n, 3, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return TrainData(images, torch.zeros(n, dtype=torch.long))


@pytest.mark.parametrize("rampup", [False, True], ids=["constant", "rampup"])
def test_g_starts_from_generator_and_its_average_from_g_running(rosinality_16px, rampup):
    """With lr 0, G stays the checkpoint's generator, so after k steps the average is the analytic mix."""
    checkpoint, source = rosinality_16px
    target = dataclasses.replace(toy_target(), resolution=16, image_channels=3, n_images=4)
    torch.manual_seed(0)
    method = build_method("transfergan", source, target)
    G = {k: v.clone() for k, v in method.G.state_dict().items()}
    for key in source.g_state:
        assert torch.equal(G[key], checkpoint["generator"][key]), key
    k, decay = 3, 0.9
    config = quick_config(steps=k, batch_size=2, lr=0.0, ema_decay=decay, ema_rampup=rampup, mixing_prob=0.0)
    trainer = Trainer(method, _rgb_data(), config, progress=False)
    params = [key for key, _ in method.G.named_parameters()]  # buffers (blur kernels) follow G
    for key in params:  # the average starts from g_running, not from a copy of G
        assert torch.equal(method.G_ema.state_dict()[key], checkpoint["g_running"][key]), key
    trainer.run()
    decays = [min(decay, (1 + t) / (10 + t)) if rampup else decay for t in range(k)]
    kept = torch.tensor(decays, dtype=torch.float64).prod().item()  # the weight g_running keeps after k steps
    ema = method.G_ema.state_dict()
    for key in params:
        start, end = checkpoint["g_running"][key].double(), checkpoint["generator"][key].double()
        torch.testing.assert_close(ema[key].double(), kept * start + (1 - kept) * end, rtol=1e-5, atol=1e-6)
    assert all(torch.equal(v, method.G.state_dict()[key]) for key, v in G.items())


def test_l2sp_anchor_is_the_source_generator(rosinality_16px):
    checkpoint, source = rosinality_16px
    target = dataclasses.replace(toy_target(), resolution=16, image_channels=3)
    method = build_method("l2sp", source, target)
    anchors = dict(method.G_source.named_buffers())
    generator = checkpoint["generator"]
    matched = [k for k in anchors if k in generator]
    assert len(matched) == len(source.g_state) and all(torch.equal(anchors[k], generator[k]) for k in matched)


@pytest.mark.parametrize("mult", [0.0, 0.05])
def test_mapping_lr_mult_is_read(tiny_source, mult):
    target = toy_target()
    torch.manual_seed(0)
    method = build_method("transfergan", tiny_source, target)
    before = {k: v.clone() for k, v in method.G.style.state_dict().items()}
    trainer = Trainer(method, toy_data(target), quick_config(steps=2, mapping_lr_mult=mult), progress=False)
    mapping = {id(p) for p in method.G.style.parameters()}
    lrs = {
        group["lr"] for group in trainer.optimizers["G"].param_groups if any(id(p) in mapping for p in group["params"])
    }
    assert lrs == {trainer.config.lr * mult}
    trainer.run()
    moved = [not torch.equal(v, method.G.style.state_dict()[k]) for k, v in before.items()]
    assert any(moved) == (mult > 0)


@pytest.mark.parametrize(("name", "options", "flips"), [
    ("transfergan", {}, True), ("bsa", {}, False), ("glo", {}, False), ("glo", {"hflip": True}, True),
])  # fmt: skip
def test_reconstruction_methods_take_no_flips_unless_asked(tiny_source, name, options, flips):
    target = toy_target()
    method = make_method(name, tiny_source, target, **options)
    trainer = Trainer(method, toy_data(target), quick_config(steps=1, hflip=True), progress=False)
    assert trainer.hflip is flips
    drawn = []
    original = torch.rand

    def spy(*args, **kwargs):
        drawn.append(args)
        return original(*args, **kwargs)

    torch.rand, saved = spy, torch.rand
    try:
        trainer.next_batch()
    finally:
        torch.rand = saved
    assert bool(drawn) is flips


def test_a_toy_source_pretrains_its_mapping_at_its_own_lr_mult():
    """toy-pretrain's ``mapping_lr_mult`` reaches the trainer: at 0 the mapping keeps its random start."""
    from benchmark.nets import BackboneConfig, StyledGenerator
    from benchmark.sources import load_source
    from tests.conftest import TINY_BACKBONE

    backbone = BackboneConfig(resolution=32, image_channels=1, **TINY_BACKBONE)
    torch.manual_seed(0)
    start = {k: v for k, v in StyledGenerator(backbone).state_dict().items() if k.startswith("style.")}
    for mult in (0.0, 1.0):
        source = load_source(
            "toy-pretrain", None, backbone=backbone, classes=[0, 1], steps=2, batch_size=4, r1_every=1,
            mapping_lr_mult=mult, progress=False,
        )  # fmt: skip
        assert source.provenance["train"]["mapping_lr_mult"] == mult  # recorded, and in the cache key
        unchanged = all(torch.equal(source.g_state[k], v) for k, v in start.items())
        assert unchanged == (mult == 0.0)
