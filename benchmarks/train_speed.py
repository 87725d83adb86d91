"""Training images/s and peak memory: the harness's step against the official code's step, same networks.

For each method (transfergan, freezed, minegan and hypermod by default) both sides build the same
method from the same random-weight source (rosinality's widths, 256 px; ``random_source``) with
the same seed, so they train the same parameters from the same values, with R1 every D step:

- ours: ``benchmark.trainer.Trainer`` as a suite runs it: latents from the seeded training RNG,
  each phase one backward (R1 included), the moving average by ``torch._foreach_lerp_``, and the
  speed settings of ``TrainConfig`` (defaults: fused Adam and cuDNN benchmark mode on CUDA;
  ``--amp`` and ``--compile`` add the opt-ins). MineGAN is timed in its fine-tuning stage
  (miner, G and D train), Hyper-Modulation in its adversarial stage (no self-alignment).
- reference: the method's networks stepped as the official fine-tuning code steps them, fp32,
  eager, torch's default (unfused) Adam:
  - transfergan, freezed, minegan: FreezeD's stylegan/finetune.py (MineGAN's styleGAN/finetune.py
    is the same loop with the miner before G): ``requires_grad`` toggled per phase, the real batch
    copied from host memory each step, latents drawn on the device with style mixing decided by
    ``random.random() < 0.9``, one backward of the real and fake losses and R1 (the input
    gradient's squared norm), ``.item()`` of the losses every step, the G step on fresh latents,
    and the moving average as a loop over parameters (``accumulate``);
  - hypermod: Hyper-Modulation's train.py: ``torch.backends.cudnn.benchmark = True``, weights
    built per sample (``HyperModGenerator(per_sample=True)``, the official grouped conv),
    separate backwards for the real loss (``retain_graph``), R1, the Barlow Twins term on reals,
    the fake loss and the Barlow Twins term on regenerated fakes, ``.item()`` every 10 steps. The
    task network is its own module there, which ``requires_grad(generator, False)`` never
    freezes, so the D step's fakes keep a graph through the modulated weights; so they do here.
  - transfergan-stylegan2 (StyleGAN2 backbone, 256 px, channel multiplier 2, batch 4 as CDC
    trains): rosinality stylegan2-pytorch train.py: ``requires_grad`` toggled per phase, latents
    drawn on the device with mixing decided by ``random.random() < 0.9``, the D step, every 16th
    iteration an R1 step of its own (``d_regularize``), the G step, every 4th a path-length step
    on half the batch (``g_regularize``), Adam's lr and betas by the lazy ratios, ``accumulate``
    with 0.5 ** (32 / 10,000), and the losses read back with ``.item()`` every step
    (``reduce_loss_dict``). Ours runs the backbone's recipe (``StyleGAN2Config.recipe``).
  The data loader, ``nn.DataParallel`` (one GPU) and logging are left out of both sides.

Timing: ``--warmup`` untimed steps, then ``--steps`` timed ones. Ours reads the trainer's own
clock (``Trainer.train_seconds``, synchronised at its log steps, here every ``--warmup`` steps;
the evaluation callback that reads it is not counted). Peak memory is
``torch.cuda.max_memory_allocated`` over the timed steps (parameters, optimizer states and the
moving average included); on a CPU it is the growth of the process's high-water RSS, which
never goes down, so only a first measurement in a process means much.

Usage:
    python benchmarks/train_speed.py --device cuda                    # 256 px, the four methods
    python benchmarks/train_speed.py --device cuda --amp --compile    # ours with the opt-ins
    python benchmarks/train_speed.py --tiny --methods transfergan     # a tiny backbone on a CPU
    python benchmarks/train_speed.py --methods transfergan-stylegan2  # the StyleGAN2 step
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.config import TrainConfig  # noqa: E402
from benchmark.losses import path_length_penalty  # noqa: E402
from benchmark.method import (  # noqa: E402
    Method,
    TargetSpec,
    build_method,  # noqa: E402
)
from benchmark.nets import BackboneConfig  # noqa: E402
from benchmark.nets.stylegan2 import StyleGAN2Config  # noqa: E402
from benchmark.sources.base import Source  # noqa: E402
from benchmark.step import Latents  # noqa: E402
from benchmark.trainer import TrainData, Trainer  # noqa: E402
from benchmarks.common import GIB, current_rss_bytes, save_top_ops, start_profiler, synchronize  # noqa: E402

METHODS = ("transfergan", "freezed", "minegan", "hypermod", "transfergan-stylegan2")
STYLEGAN2_ROW = "transfergan-stylegan2"  # transfergan on the StyleGAN2 backbone, with its recipe
# The stage each method is timed in: MineGAN's fine-tuning, Hyper-Modulation's adversarial training.
METHOD_OPTIONS = {"minegan": {"miner_steps": 0}, "hypermod": {"align_steps": 0}}
# A backbone small enough for a CPU (``--tiny``, gpu_check.py --dry).
TINY_BACKBONE = BackboneConfig(
    resolution=16, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 8}, fused_min_resolution=16
)
TINY_STYLEGAN2 = StyleGAN2Config(resolution=16, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 8})


@dataclass(frozen=True)
class Setup:
    """One method's measurement: what is built and how big a step is.

    Args:
        method: a registered method name.
        backbone: the networks' shape.
        batch: real images per step.
        classes: classes of a conditional target; 0 for an unconditional one.
        device: where to train.
        seed: seeds the method's construction and both sides' draws.
        n_images: training images (random uint8).
    """

    method: str
    backbone: BackboneConfig | StyleGAN2Config = field(default_factory=BackboneConfig)
    batch: int = 16
    classes: int = 0
    device: str = "cuda"
    seed: int = 0
    n_images: int = 64

    @property
    def target(self) -> TargetSpec:
        return TargetSpec(
            n_classes=max(self.classes, 1),
            conditional=self.classes > 0,
            resolution=self.backbone.resolution,
            image_channels=self.backbone.image_channels,
            n_images=self.n_images,
        )

    def data(self) -> TrainData:
        g = torch.Generator().manual_seed(self.seed)
        size = (self.n_images, self.backbone.image_channels, self.backbone.resolution, self.backbone.resolution)
        images = torch.randint(0, 256, size, generator=g, dtype=torch.uint8)
        return TrainData(images, torch.arange(self.n_images) % max(self.classes, 1))


def default_setup(method: str, device: str, backbone: BackboneConfig | None = None, batch: int = 16) -> Setup:
    """The issue's sizes: batch 16 and an unconditional target; hypermod batch 10 with 3 classes; the
    StyleGAN2 row at CDC's batch 4 (1/4 of ``batch``) on the StyleGAN2 backbone (tiny when ``backbone`` is)."""
    backbone = backbone or BackboneConfig(resolution=256)
    if method == STYLEGAN2_ROW:
        stylegan2 = TINY_STYLEGAN2 if backbone == TINY_BACKBONE else StyleGAN2Config(resolution=backbone.resolution)
        return Setup("transfergan", stylegan2, batch=max(1, batch // 4), device=device)
    if method == "hypermod":
        return Setup(method, backbone, batch=max(1, batch * 10 // 16), classes=3, device=device)
    return Setup(method, backbone, batch=batch, device=device)


def random_source(backbone: BackboneConfig | StyleGAN2Config, seed: int = 0) -> Source:
    """A Source from random G / D state dicts of ``backbone`` (a separate EMA generator too)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        g, d, g_ema = backbone.generator(), backbone.discriminator(), backbone.generator()
    provenance = {"kind": "random-init", "seed": seed}
    return Source("random", backbone, g.state_dict(), d.state_dict(), provenance, g_ema.state_dict())


def build(setup: Setup, source: Source) -> Method:
    torch.manual_seed(setup.seed)
    return build_method(setup.method, source, setup.target, **METHOD_OPTIONS.get(setup.method, {}))


def release(device: str | torch.device) -> None:
    """Free what the last measurement left on a GPU, so the next one's peak is its own."""
    if torch.device(device).type == "cuda":
        gc.collect()  # the trainer and its evaluation callback hold each other
        torch.cuda.empty_cache()


class _Peak:
    """Peak memory from now on: the CUDA allocator's high-water mark, or the host RSS high-water growth."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
        self.device, self.baseline = device, current_rss_bytes()

    def bytes(self) -> int:
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device)
        return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.baseline)

    @property
    def kind(self) -> str:
        return "device" if self.cuda else "host RSS"


# --------------------------------------------------------------------------------------------
# Ours: the harness's trainer


def measure_ours(
    setup: Setup,
    source: Source,
    warmup: int = 5,
    steps: int = 10,
    amp: bool = False,
    compile: bool | str = False,
    profile_if: Callable[[dict], bool] | None = None,
    profile_path: Path | None = None,
    profile_steps: int = 2,
) -> dict:
    """Images/s and peak memory of ``Trainer`` over ``steps`` steps after ``warmup``.

    ``profile_if(result)`` decides, once the timed steps are done, whether to run ``profile_steps``
    more steps under torch.profiler and write their top ops to ``profile_path``.
    """
    if warmup < 1 or steps < 1 or steps % warmup:
        raise ValueError("warmup and steps must be >= 1, steps a multiple of warmup (the trainer's log interval)")
    device = torch.device(setup.device)
    method = build(setup, source)
    extra = profile_steps if profile_if is not None else 0
    recipe = setup.backbone.recipe or {"r1_every": 1}  # StyleGAN2's own; v1: R1 every step, as the reference
    config = TrainConfig(
        **recipe,
        steps=warmup + steps + extra,
        batch_size=setup.batch,
        eval_every=warmup,
        log_every=warmup,
        eval_at_start=False,
        amp=amp,
        compile=compile,
    )
    marks: dict = {}

    def on_evaluate(_method, step: int) -> None:
        clock = marks["trainer"].train_seconds
        if step == warmup:
            marks["start"], marks["peak"] = clock, _Peak(device)
        elif step == warmup + steps:
            marks["result"] = result = {
                "images_per_second": setup.batch * steps / (clock - marks["start"]),
                "seconds": clock - marks["start"],
                "peak_bytes": marks["peak"].bytes(),
                "peak_kind": marks["peak"].kind,
            }
            if profile_if is not None and profile_path is not None and profile_if(result):
                marks["profiler"] = start_profiler(device)
        elif step == warmup + steps + extra and "profiler" in marks:
            marks["result"]["profile"] = str(save_top_ops(marks.pop("profiler"), device, profile_path))

    marks["trainer"] = trainer = Trainer(
        method, setup.data(), config, device, setup.seed, evaluate=on_evaluate, progress=False
    )
    trainer.run()
    result = marks["result"]
    result.update(
        steps=steps,
        batch=setup.batch,
        fused_adam=bool(next(iter(trainer.optimizers.values())).defaults.get("fused")),
        amp=amp,
        compile=compile,
    )
    marks.clear()
    del trainer, method
    release(device)
    return result


# --------------------------------------------------------------------------------------------
# The reference: the official loops on the same networks


def _set_requires_grad(params: list[torch.nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad = flag


class OfficialStep:
    """One iteration of the official fine-tuning loop on a method's networks (see the module docstring).

    Args:
        method: a built method (moved to ``device`` and given its moving average here).
        data: the training images.
        config: lr, betas, R1 weight and mixing probability.
        device: where to train.
        seed: seeds the batch, mixing and augmentation draws.
    """

    def __init__(self, method: Method, data: TrainData, config: TrainConfig, device: torch.device, seed: int):
        self.method, self.config, self.device = method, config, device
        self.hypermod = method.name == "hypermod"
        method.to(device)
        method.attach_ema()
        method.enter_stage(method.stages()[-1])  # the timed stage (MineGAN's fine-tuning, hypermod's training)
        if self.hypermod:
            method.G.per_sample = True  # the official grouped conv with one weight set per sample
        groups = method.param_groups()

        def lr(group) -> float:
            return config.lr * group.lr_mult * (config.mapping_lr_mult if group.mapping else 1.0)

        def adam(name: str) -> torch.optim.Adam:  # torch's default: the multi-tensor loop, not fused
            chosen = [g for g in groups if g.optimizer == name]
            return torch.optim.Adam([{"params": g.params, "lr": lr(g)} for g in chosen], config.lr, config.betas)

        self.opt_g, self.opt_d = adam("G"), adam("D")
        self.d_params = [p for g in groups if g.optimizer == "D" for p in g.params if p.requires_grad]
        g_params = [p for g in groups if g.optimizer == "G" for p in g.params if p.requires_grad]
        task = {id(p) for p in method.G.task.parameters()} if self.hypermod else set()
        self.g_toggled = [p for p in g_params if id(p) not in task]  # the official requires_grad(generator, ...)
        # accumulate(): every G parameter (FreezeD), the backbone's (MineGAN), the trained ones (Hyper-Modulation).
        trained = {id(p) for p in g_params}
        ema = dict(method.G_ema.named_parameters())
        self.ema_pairs = [
            (ema[name], p)
            for name, p in method.G.named_parameters()
            if (not self.hypermod or id(p) in trained) and (method.name != "minegan" or name.startswith("backbone."))
        ]
        self.images = data.images.float() / 127.5 - 1  # host memory, as a DataLoader hands them over
        self.labels = data.labels if method.target.conditional else None
        self.batch_rng = torch.Generator().manual_seed(seed)
        self.augment_rng = torch.Generator().manual_seed(seed + 1)
        self.rng = random.Random(seed)
        self.logged: dict[str, float] = {}  # the losses the official loops read back for their progress bar

    # -- inputs --------------------------------------------------------------------------------
    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(len(self.images), (size,), generator=self.batch_rng)
        labels = None if self.labels is None else self.labels[idx].to(self.device)
        return self.images[idx].to(self.device), labels

    def latents(self, size: int, labels: torch.Tensor | None) -> tuple[Latents, Latents]:
        """FreezeD's sample_noise: two latent sets for the D and G steps, mixed with probability 0.9."""
        dim, blocks = self.method.style_dim, self.method.n_style_blocks
        if self.rng.random() < self.config.mixing_prob and blocks > 1:
            z11, z12, z21, z22 = torch.randn(4, size, dim, device=self.device).unbind(0)
            crossovers = [self.rng.randint(0, blocks - 2) for _ in range(2)]  # rosinality: random.sample(range(step))
            return Latents(z11, labels, z12, crossovers[0]), Latents(z21, labels, z22, crossovers[1])
        z1, z2 = torch.randn(2, size, dim, device=self.device).unbind(0)
        return Latents(z1, labels), Latents(z2, labels)

    def generate(self, latents: Latents) -> torch.Tensor:
        return self.method.G(latents.z, **latents.as_kwargs())

    # -- the loop ------------------------------------------------------------------------------
    def __call__(self, i: int, batch_size: int) -> None:
        m = self.method
        real, labels = self.batch(batch_size)
        fake_in, gen_in = self.latents(batch_size, labels)

        self.opt_d.zero_grad()
        _set_requires_grad(self.g_toggled, False)
        _set_requires_grad(self.d_params, True)
        real.requires_grad = True
        real_scores = m.D(real, labels)
        real_loss = F.softplus(-real_scores).mean()
        if self.hypermod:
            real_loss.backward(retain_graph=True)
        (grad_real,) = torch.autograd.grad(real_scores.sum(), real, create_graph=True)
        penalty = self.config.r1_gamma / 2 * (grad_real.view(grad_real.size(0), -1).norm(2, dim=1) ** 2).mean()
        if self.hypermod:
            penalty.backward()
            if m.contrastive:
                m.contrastive_loss(real, self.augment_rng).backward()
        fake_loss = F.softplus(m.D(self.generate(fake_in), labels)).mean()
        if self.hypermod:
            fake_loss.backward()
            if m.contrastive:
                m.contrastive_loss(self.generate(fake_in), self.augment_rng).backward()  # regenerated, fresh noise
            if i % 10 == 0:
                self.logged.update(d=(real_loss + fake_loss).item(), r1=penalty.item())
        else:
            (real_loss + fake_loss + penalty).backward()
            self.logged.update(d=(real_loss + fake_loss).item(), r1=penalty.item() if penalty > 0 else 0)
        self.opt_d.step()

        self.opt_g.zero_grad()
        _set_requires_grad(self.g_toggled, True)
        _set_requires_grad(self.d_params, False)
        g_loss = F.softplus(-m.D(self.generate(gen_in), labels)).mean()
        if not self.hypermod or i % 10 == 0:
            self.logged["g"] = g_loss.item()
        g_loss.backward()
        self.opt_g.step()
        with torch.no_grad():  # rosinality's accumulate: par1.data.mul_(decay).add_(1 - decay, par2.data)
            for p_ema, p in self.ema_pairs:
                p_ema.mul_(self.config.ema_decay).add_(p, alpha=1 - self.config.ema_decay)


class OfficialStyleGAN2Step:
    """One iteration of rosinality stylegan2-pytorch train.py on a method's networks (module docstring).

    Args:
        method: a built method on the StyleGAN2 backbone (moved to ``device``, given its average here).
        data: the training images.
        config: the recipe (lr, betas, R1 and path-length settings, mixing, EMA decay).
        device: where to train.
        seed: seeds the batch and mixing draws.
    """

    def __init__(self, method: Method, data: TrainData, config: TrainConfig, device: torch.device, seed: int):
        self.method, self.config, self.device = method, config, device
        method.to(device)
        method.attach_ema()
        self.g_params = [p for p in method.G.parameters() if p.requires_grad]
        self.d_params = [p for p in method.D.parameters() if p.requires_grad]

        def adam(params, every: int) -> torch.optim.Adam:  # train.py: lr * ratio, betas ** ratio
            ratio = every / (every + 1)
            return torch.optim.Adam(params, config.lr * ratio, tuple(b**ratio for b in config.betas))

        self.opt_g, self.opt_d = adam(self.g_params, config.pl_every), adam(self.d_params, config.r1_every)
        self.ema_pairs = list(zip(method.G_ema.parameters(), method.G.parameters()))
        self.images = data.images.float() / 127.5 - 1  # host memory, as a DataLoader hands them over
        self.batch_rng = torch.Generator().manual_seed(seed)
        self.rng = random.Random(seed)
        self.mean_path_length = torch.zeros((), device=device)
        self.logged: dict[str, float] = {}

    def batch(self, size: int) -> torch.Tensor:
        return self.images[torch.randint(len(self.images), (size,), generator=self.batch_rng)].to(self.device)

    def latents(self, size: int) -> Latents:
        """train.py's mixing_noise: two latents with probability ``mixing``, injected at a random index."""
        dim, n_styles = self.method.style_dim, self.method.n_style_blocks
        if self.rng.random() < self.config.mixing_prob:
            z, mix = torch.randn(2, size, dim, device=self.device).unbind(0)
            return Latents(z, None, mix, self.rng.randint(1, n_styles - 1) - 1)  # inject_index - 1
        return Latents(torch.randn(size, dim, device=self.device))

    def __call__(self, i: int, batch_size: int) -> None:
        m, cfg = self.method, self.config
        real = self.batch(batch_size)

        _set_requires_grad(self.g_params, False)
        _set_requires_grad(self.d_params, True)
        latents = self.latents(batch_size)
        fake = m.G(latents.z, **latents.as_kwargs())
        d_loss = F.softplus(-m.D(real)).mean() + F.softplus(m.D(fake)).mean()
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        if i % cfg.r1_every == 0:  # d_regularize
            real.requires_grad = True
            real_pred = m.D(real)
            (grad,) = torch.autograd.grad(real_pred.sum(), real, create_graph=True)
            r1 = grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()
            self.opt_d.zero_grad()
            (cfg.r1_gamma / 2 * r1 * cfg.r1_every + 0 * real_pred[0]).backward()
            self.opt_d.step()
            self.logged["r1"] = r1.item()

        _set_requires_grad(self.g_params, True)
        _set_requires_grad(self.d_params, False)
        latents = self.latents(batch_size)
        g_loss = F.softplus(-m.D(m.G(latents.z, **latents.as_kwargs()))).mean()
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()
        if i % cfg.pl_every == 0:  # g_regularize
            latents = self.latents(max(1, batch_size // cfg.pl_batch_shrink))
            ws = m.G.styles(latents.z, None, latents.mix_z, latents.crossover)
            images = m.G.synthesis(ws)
            noise = torch.randn_like(images)
            penalty, self.mean_path_length = path_length_penalty(images, ws, self.mean_path_length, cfg.pl_decay, noise)
            self.opt_g.zero_grad()
            (cfg.pl_weight * cfg.pl_every * penalty + 0 * images[0, 0, 0, 0]).backward()
            self.opt_g.step()
            self.logged["path"] = penalty.item()
        with torch.no_grad():  # accumulate(g_ema, g_module, accum)
            for p_ema, p in self.ema_pairs:
                p_ema.mul_(cfg.ema_decay).add_(p, alpha=1 - cfg.ema_decay)
        self.logged.update(d=d_loss.item(), g=g_loss.item())  # reduce_loss_dict(...).mean().item()


def measure_reference(setup: Setup, source: Source, warmup: int = 5, steps: int = 10) -> dict:
    """Images/s and peak memory of ``OfficialStep`` (``OfficialStyleGAN2Step`` on StyleGAN2) over
    ``steps`` iterations after ``warmup``."""
    device = torch.device(setup.device)
    benchmark_mode = torch.backends.cudnn.benchmark
    # Hyper-Modulation's train.py turns cuDNN's benchmark mode on; FreezeD's and MineGAN's leave torch's default.
    torch.backends.cudnn.benchmark = setup.method == "hypermod"
    try:
        if setup.backbone.name == "stylegan2":
            config = TrainConfig(**setup.backbone.recipe)
            step = OfficialStyleGAN2Step(build(setup, source), setup.data(), config, device, setup.seed)
        else:
            step = OfficialStep(build(setup, source), setup.data(), TrainConfig(), device, setup.seed)
        for i in range(warmup):
            step(i, setup.batch)
        synchronize(device)
        peak = _Peak(device)
        start = time.perf_counter()
        for i in range(warmup, warmup + steps):
            step(i, setup.batch)
        synchronize(device)
        seconds = time.perf_counter() - start
        result = {
            "images_per_second": setup.batch * steps / seconds,
            "seconds": seconds,
            "peak_bytes": peak.bytes(),
            "peak_kind": peak.kind,
            "steps": steps,
            "batch": setup.batch,
        }
        del step
    finally:
        torch.backends.cudnn.benchmark = benchmark_mode
    release(device)
    return result


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16, help="images per step (hypermod: 10/16 of it, 3 classes)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (also ours' log interval)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps, a multiple of --warmup")
    parser.add_argument("--amp", action="store_true", help="ours with train.amp (bf16 autocast)")
    parser.add_argument("--compile", action="store_true", help="ours with train.compile")
    parser.add_argument("--tiny", action="store_true", help="a tiny 16 px backbone (CPU-sized)")
    args = parser.parse_args(argv)

    backbone = TINY_BACKBONE if args.tiny else BackboneConfig(resolution=256)
    print(f"{backbone.resolution} px on {args.device}; ours with amp={args.amp}, compile={args.compile}")
    print(f"{'method':<22}{'batch':>6}{'ref img/s':>11}{'ours img/s':>12}{'speed':>8}{'ref peak':>11}{'ours peak':>11}")
    for name in args.methods:
        setup = default_setup(name, args.device, backbone, args.batch)
        source = random_source(setup.backbone)
        reference = measure_reference(setup, source, args.warmup, args.steps)
        ours = measure_ours(setup, source, args.warmup, args.steps, amp=args.amp, compile=args.compile)
        speed = ours["images_per_second"] / reference["images_per_second"]
        print(
            f"{name:<22}{setup.batch:>6}{reference['images_per_second']:>11.1f}{ours['images_per_second']:>12.1f}"
            f"{speed:>7.2f}x{reference['peak_bytes'] / GIB:>7.2f} GiB{ours['peak_bytes'] / GIB:>7.2f} GiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
