"""The trainer on CUDA (skipped without a GPU): the CPU's random draws, its speed defaults on, the opt-ins train."""

import pytest
import torch

from benchmark.nets import BackboneConfig, Discriminator, StyledGenerator
from benchmark.sources.base import Source
from benchmark.trainer import Trainer
from methods import build_method
from tests.conftest import TINY_BACKBONE
from tests.methods.helpers import quick_config, toy_data, toy_target

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def source():
    config = BackboneConfig(resolution=32, image_channels=1, **TINY_BACKBONE)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        g, d, g_ema = StyledGenerator(config), Discriminator(config), StyledGenerator(config)
    return Source("random", config, g.state_dict(), d.state_dict(), {}, g_ema.state_dict())


def _trainer(source, device, name="transfergan", target=None, **cfg):
    target = target or toy_target()
    torch.manual_seed(0)
    method = build_method(name, source, target)
    config = quick_config(steps=3, hflip=True, mixing_prob=0.5, stage_scale=1e-6, **cfg)  # hypermod: 1 alignment step
    return Trainer(method, toy_data(target), config, device, seed=1, progress=False)


def test_cuda_draws_equal_the_cpu_draws(source):
    """Latents, labels, batches and flips cross to the GPU without blocking, with the same values."""
    target = toy_target(conditional=True, n_classes=2)
    cpu, cuda = (_trainer(source, device, "transfergan", target) for device in ("cpu", "cuda"))
    for _ in range(4):
        a, b = cpu.sample_latents(5), cuda.sample_latents(5)
        assert torch.equal(a.z, b.z.cpu()) and torch.equal(a.labels, b.labels.cpu())
        assert (a.mix_z is None) == (b.mix_z is None) and a.crossover == b.crossover
        batch_a, batch_b = cpu.next_batch(), cuda.next_batch()
        assert torch.equal(batch_a.images, batch_b.images.cpu()) and torch.equal(batch_a.indices, batch_b.indices.cpu())


def test_cuda_defaults_turn_on_fused_adam_and_cudnn_benchmark(source):
    trainer = _trainer(source, "cuda")
    assert all(o.defaults["fused"] for o in trainer.optimizers.values())
    assert torch.backends.cudnn.benchmark
    before = {k: v.clone() for k, v in trainer.method.G.state_dict().items()}
    outcome = trainer.run()  # a non-finite loss would raise
    assert outcome.steps == 3
    assert any(not torch.equal(v, trainer.method.G.state_dict()[k]) for k, v in before.items())


def test_compile_and_bf16_train_with_r1_every_step(source):
    """(hypermod's compiled step runs in benchmarks/gpu_check.py's opt-in row; compiling it here too would
    double the time of this file.)"""
    trainer = _trainer(source, "cuda", "transfergan", compile=True, amp=True, r1_every=1)
    assert "forward" in vars(trainer.method.G) and "forward" in vars(trainer.method.D)
    before = {k: v.clone() for k, v in trainer.method.D.state_dict().items()}
    trainer.run()  # R1's double backward runs eagerly; the rest compiled; a non-finite loss would raise
    assert any(not torch.equal(v, trainer.method.D.state_dict()[k]) for k, v in before.items())
