"""The method contract, the one training step the harness runs around it, and the methods registry.

A method is an ``nn.Module`` registered by name. It is built from the source (pretrained G and
D weights) and the target's spec, and it owns everything it adds (miner, hypernetwork, AdaFM
gamma/beta, latents). It tells the harness:

- **what trains**: ``param_groups()`` lists every parameter it may ever train, each group tied
  to an optimizer ("G" or "D") with a learning-rate multiplier; ``enter_stage`` narrows that
  per stage through ``requires_grad`` (a parameter without a gradient is skipped by Adam);
- **its schedule**: ``schedule(**options)``, its stages computed from its options without
  building it (e.g. MineGAN's miner-only stage first), which the harness lays out against the
  budget (``benchmark.schedule``) and the dry run prints;
- **what it needs from the suite**: ``resources`` names the constructor arguments the harness
  fills in (more sources, the perceptual network, the cell's training images with the cache
  folder), so no harness code knows a method's options;
- **what makes its step different**, through hooks that each receive the step's context
  (``benchmark.step.StepContext``): ``sample_latents`` (the fakes' inputs), ``generate`` (the
  fakes, with any features a loss needs), ``discriminate`` and ``fake_logits`` (D's logits of
  reals and fakes), and ``d_regularizers`` / ``g_regularizers`` (extra loss terms, which see the
  real batch and the fakes). The defaults are the shared recipe's.

The step itself is the harness's (``accumulate_gradients`` below): the non-saturating logistic
loss, R1 on reals (lazily every ``train.r1_every`` steps) and the sum and backward of every
term, once for all methods. The harness also owns the loop, the optimizers, EMA, checkpoints and
evaluation (``benchmark.trainer``); a method never touches them. ``self.G`` is the whole
sampling path (the backbone, or a module that wraps it with a miner or modulation); the harness
keeps ``self.G_ema``, its moving average, and ``sample`` draws from it.

A method's module imports the whole contract from here, the stage and step types included
(``from benchmark.method import METHODS, Method, Stage, Batch, Fakes, ...``).
"""

from __future__ import annotations

import copy
import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.losses import d_logistic_loss, g_nonsaturating_loss, path_length_penalty, r1_penalty
from benchmark.nets import BackboneGenerator, trainable_parameters
from benchmark.registry import Registry
from benchmark.schedule import Stage, check_method_options
from benchmark.sources.base import EMA_START
from benchmark.step import Batch, Fakes, Latents, PathLength, StepContext, StepEnd, backward

__all__ = [  # the contract a method's module imports; Stage and the step types are re-exported
    "METHODS",
    "Batch",
    "Fakes",
    "Latents",
    "Method",
    "ParamGroup",
    "Resource",
    "Stage",
    "StepContext",
    "StepEnd",
    "TargetSpec",
    "TrainingSet",
    "PathLength",
    "accumulate_gradients",
    "accumulate_regularization",
    "backbone_param_groups",
    "build_method",
    "check_backbone",
    "regularization_due",
    "named_sources",
    "provide_resources",
    "uses_perceptual",
]

METHODS: Registry[type[Method]] = Registry(
    "method",
    contract="a Method subclass built as Method(source, target, **options); declares param_groups() and "
    "schedule(**options), overrides the step's hooks (sample_latents, generate, discriminate, fake_logits, "
    "d_regularizers, g_regularizers) where it differs, and samples with sample(z, labels) -> [-1, 1]",
    plugins=("methods",),  # the methods package: importing it registers every family
)


class Resource(enum.Enum):
    """What a method can ask the harness for, by constructor argument (``Method.resources``)."""

    SOURCES = "suite sources"  # the suite gives a list of source names; the method receives the loaded sources
    PERCEPTUAL = "perceptual network"  # the suite's ``perceptual`` feature network (with ``feature_maps``)
    # the cell's few-shot training images and the suite's cache folder (a ``TrainingSet``), for a method
    # that prepares something from the images before training and caches it (RSSA's GAN inversion)
    TRAINING_SET = "training set"


@dataclass(frozen=True)
class TrainingSet:
    """What ``Resource.TRAINING_SET`` gives a method at build time: the images it will train on.

    Args:
        images: uint8 (N, C, H, W) at the suite's resolution, in the order of the batches' ``indices``.
        labels: int64 (N,) class indices.
        cache_dir: the suite's cache folder for files keyed by a hash of their inputs (None: no caching).
        stage_scale: the budget's factor on stage lengths (``train.stage_scale``), which a preparation
            step's length follows too, so ``--budget smoke`` shortens it with the stages.
        device: where a preparation step runs (the cell's training device).
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    cache_dir: Path | None = None
    stage_scale: float = 1.0
    device: str | torch.device = "cpu"


@dataclass(frozen=True)
class TargetSpec:
    """What a method needs to know about the target.

    Args:
        n_classes: number of target classes (1 for a single-class target).
        conditional: whether G and D take labels.
        resolution: image size in pixels.
        image_channels: 1 or 3.
        n_images: number of training images (for per-image latents).
    """

    n_classes: int
    conditional: bool
    resolution: int
    image_channels: int
    n_images: int

    @property
    def label_classes(self) -> int:
        """Classes for the label path: 0 means unconditional networks."""
        return self.n_classes if self.conditional else 0


@dataclass
class ParamGroup:
    """Parameters stepped by one optimizer ("G" or "D") at ``lr * lr_mult``.

    ``mapping`` marks the mapping network, which also takes the suite's ``train.mapping_lr_mult``
    (StyleGAN v1's 0.01).
    """

    optimizer: str
    params: list[nn.Parameter]
    lr_mult: float = 1.0
    name: str = ""
    mapping: bool = False


class Method(nn.Module):
    """Base of every transfer method. Subclasses set ``self.G`` and, when they train against a
    discriminator, ``self.D``; the hooks' defaults are the shared adversarial recipe.

    Args:
        source: the pretrained source (``benchmark.sources.Source``); its ``build_generator`` and
            ``build_discriminator`` give fresh networks with the source weights (or random ones).
        target: the target's spec.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for ``run_benchmark.py list``
    # (colour, line style, marker) in every plot of every suite. The shipped methods' 14 colours stay
    # apart on white paper (matplotlib's default 10 repeat from the 11th), and methods whose colours
    # are closest differ in line style; a method without one takes a spare colour in the report.
    plot_style: ClassVar[tuple] = ()
    hflip: bool | None = None  # None: follow the suite's train.hflip; a method may override it
    resources: ClassVar[dict[str, Resource]] = {}  # constructor argument -> what the harness passes in it
    # backbone name -> why this method cannot run on it; build_method and the dry run refuse such a cell with it
    unsupported_backbones: ClassVar[dict[str, str]] = {}
    # whether the recipe's path-length regularization (train.pl_weight, StyleGAN2) applies to this method
    path_length_regularization: bool = True

    def __init__(self, source, target: TargetSpec):
        super().__init__()
        self.target = target
        self.style_dim = source.config.style_dim
        self.n_style_blocks = source.config.n_styles  # style inputs: style mixing's crossover ranges over them
        self.G: nn.Module
        self.D: nn.Module | None = None

    # -- what trains, and when -------------------------------------------------------------------
    def param_groups(self) -> list[ParamGroup]:
        """Every parameter this method may train, by optimizer, with lr multipliers."""
        return backbone_param_groups(self.G, self.D)

    @classmethod
    def schedule(cls, **options) -> list[Stage]:
        """The stages for these constructor options (defaults filled in), computed without building
        the method so the dry run can check them. An override names, as keyword-only arguments,
        the options it reads (kept on the instance as attributes of the same name) and takes ``**_``.
        """
        return [Stage("train", main=True)]

    def stages(self) -> list[Stage]:
        """This instance's stages: ``schedule`` on the options it was built with."""
        names = [n for n, p in inspect.signature(self.schedule).parameters.items() if p.kind is p.KEYWORD_ONLY]
        return self.schedule(**{n: getattr(self, n) for n in names})

    def enter_stage(self, stage: Stage) -> None:
        """Called when a stage begins (also on resume); set ``requires_grad`` for it here."""

    # -- the step's hooks ------------------------------------------------------------------------
    def sample_latents(self, batch: Batch | None, ctx: StepContext) -> Latents:
        """The fakes' inputs for one phase: the harness's draw, one per real image (uniform labels
        when conditional). ``batch`` is None in a stage that reads no data."""
        return ctx.sample_latents(batch.images.shape[0])

    def generate(self, latents: Latents, ctx: StepContext) -> Fakes:
        """The fakes, and any features a loss needs beside them (the D phase calls this without gradients)."""
        return Fakes(self.G(latents.z, **latents.as_kwargs()), latents)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None, ctx: StepContext) -> torch.Tensor:
        """D's logits of images, real or fake: (B,), or (B, ...) per patch (the logistic losses average
        over every logit, R1 over each image's first: ``per_image``). With ADA on the images are
        augmented first (``ctx.augment``; an override that calls D itself augments too, so every
        image D sees is augmented)."""
        return self.D(ctx.augment(images), labels)

    def fake_logits(self, fakes: Fakes, ctx: StepContext) -> torch.Tensor:
        """D's logits (B,) of the fakes, which the logistic loss (D phase) or the G loss (G phase) takes."""
        return self.discriminate(fakes.images, fakes.latents.labels, ctx)

    def path_length_inputs(self, latents: Latents, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Fakes (B, C, H, W) and the per-layer styles ws (B, n_styles, style_dim) they were made from,
        for the path-length penalty (which differentiates the first by the second). The default runs
        ``self.G``'s ``styles`` and ``synthesis`` (a backbone generator, or a wrapper that forwards them)."""
        ws = self.G.styles(latents.z, latents.labels, latents.mix_z, latents.crossover)
        if not ws.requires_grad:  # a frozen mapping network: the penalty still reaches the synthesis network
            ws = ws.detach().requires_grad_(True)
        return self.G.synthesis(ws), ws

    def d_regularizers(self, batch: Batch, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Extra terms of the D loss, weighted; ``fakes`` are this D step's (made without gradients)."""
        return {}

    def g_regularizers(self, batch: Batch | None, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Extra terms of the G loss, weighted (the whole loss in a stage that is not adversarial)."""
        return {}

    def after_step(self, end: StepEnd) -> None:
        """Called after every step, once its optimizer updates and G's EMA update are done, before the
        loop logs, evaluates or checkpoints (so what it changes is in the step's checkpoint). A method
        may read and change its own state here (buffers, weights it holds fixed); it must draw any
        randomness from generators of its own, never the training RNG. The default does nothing."""

    def held_fixed(self) -> list[nn.Parameter]:
        """Trainable parameters the method holds fixed at the moment as a whole (e.g. RICK's layers whose
        every filter is frozen or pruned): the contract tests do not expect them to move. Default none."""
        return []

    def extra_state(self) -> dict:
        """JSON-able facts to write into the run folder at the end (e.g. MineGAN's selector p_i)."""
        return {}

    # -- sampling ------------------------------------------------------------------------------
    def attach_ema(self) -> None:
        """Create ``G_ema``, a frozen copy of ``G`` (the harness calls this once, before training).

        Parameters that came from a source's generator start from the source's EMA generator
        instead (rosinality's ``g_running``), as FreezeD's and MineGAN's finetune.py load
        ``generator`` into G and ``g_running`` into the average; ``Source.build_generator`` marks them.
        """
        starts = {}
        for name, p in self.G.named_parameters():
            if hasattr(p, EMA_START):
                starts[name] = getattr(p, EMA_START)
                delattr(p, EMA_START)  # only needed here; keeps the source's tensors from living on in G
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        with torch.no_grad():
            for name, p in self.G_ema.named_parameters():
                if name in starts:
                    p.copy_(starts[name])

    @torch.no_grad()
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None, noise=None) -> torch.Tensor:
        """Images in [-1, 1] from the EMA generator (from G before ``attach_ema``)."""
        generator = getattr(self, "G_ema", self.G)
        if not self.target.conditional:
            labels = None
        return generator(z, labels, noise=noise).clamp(-1, 1)


def accumulate_gradients(method: Method, phase: str, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
    """One phase of one step, the same for every method: its hooks inside the shared recipe.

    D phase: logistic loss on D's logits of the reals and of fakes made without gradients, R1 on
    the reals every ``r1_every`` steps (scaled by ``r1_every``, lazy R1), the method's D terms.
    With ADA on (``ctx.ada``), D sees every image augmented (R1's gradient is taken with respect to
    the reals before augmentation) and the D step's real logits steer the probability.
    G phase: the non-saturating loss on D's logits of fresh fakes (in an adversarial stage), the
    method's G terms. The terms are summed and backpropagated into the phase's trainable
    parameters; returns them detached, for the log.
    """
    latents = method.sample_latents(batch, ctx)
    if phase == "D":
        with torch.no_grad():
            fakes = method.generate(latents, ctx)
        r1 = not ctx.lazy_regularization and ctx.step % ctx.r1_every == 0
        real = batch.images.detach().requires_grad_(r1)
        real_logits = method.discriminate(real, batch.labels, ctx)
        terms = dict(zip(("d_real", "d_fake"), d_logistic_loss(real_logits, method.fake_logits(fakes, ctx))))
        if ctx.ada is not None:  # ADA's overfitting heuristic reads sign(D(real)) of the D step
            ctx.ada.observe(real_logits)
        if r1:
            terms["r1"] = r1_penalty(per_image(real_logits), real, ctx.r1_gamma) * ctx.r1_every
        terms.update(method.d_regularizers(batch, fakes, ctx))
        return backward(terms, ctx.trainable["D"])
    if phase == "G":
        fakes = method.generate(latents, ctx)
        terms = {"g_adv": g_nonsaturating_loss(method.fake_logits(fakes, ctx))} if ctx.stage.adversarial else {}
        terms.update(method.g_regularizers(batch, fakes, ctx))
        return backward(terms, ctx.trainable["G"])
    raise ValueError(f"{method.name}: no phase {phase!r}")


def accumulate_regularization(
    method: Method, phase: str, batch: Batch | None, ctx: StepContext
) -> dict[str, torch.Tensor]:
    """A lazy regularization step of its own, after the phase's main step (StyleGAN2's recipe,
    rosinality stylegan2-pytorch train.py ``d_regularize`` / ``g_regularize``); ``ctx`` says which
    runs at this step (``regularization_due``).

    D: R1 on the same real batch, scaled by ``r1_every``. G: the path-length penalty on
    ``batch_size // pl_batch_shrink`` fresh fakes (with style mixing, as officially), scaled by
    ``pl_every`` and weighted by ``pl_weight``; it updates the running mean in ``ctx.path_length``.
    """
    if phase == "D":
        real = batch.images.detach().requires_grad_(True)
        logits = method.discriminate(real, batch.labels, ctx)
        return backward({"r1": r1_penalty(per_image(logits), real, ctx.r1_gamma) * ctx.r1_every}, ctx.trainable["D"])
    if phase == "G":
        pl = ctx.path_length
        n = max(1, (batch.images.shape[0] if batch is not None else 1) // pl.batch_shrink)
        images, ws = method.path_length_inputs(ctx.sample_latents(n), ctx)
        noise = torch.randn(images.shape, generator=ctx.generator).to(images.device)
        penalty, pl.mean = path_length_penalty(images, ws, pl.mean, pl.decay, noise)
        return backward({"pl": pl.weight * pl.every * penalty}, ctx.trainable["G"])
    raise ValueError(f"{method.name}: no phase {phase!r}")


def per_image(logits: torch.Tensor) -> torch.Tensor:
    """One logit per image for R1: a patch discriminator's (B, ...) logits averaged per image, as CDC's
    train.py does (``real_pred.view(B, -1).mean(1)``); (B,) logits come back as they are, bit for bit."""
    return logits.reshape(logits.shape[0], -1).mean(1)


def regularization_due(phase: str, ctx: StepContext) -> bool:
    """Whether a lazy regularization step follows this phase's main step now."""
    if not ctx.lazy_regularization or not ctx.stage.adversarial:
        return False
    if phase == "D":
        return ctx.step % ctx.r1_every == 0
    return phase == "G" and ctx.path_length is not None and ctx.step % ctx.path_length.every == 0


def mapping_parameters(module: nn.Module) -> set[int]:
    """ids of the mapping-network parameters of every backbone generator inside ``module``."""
    return {id(p) for m in module.modules() if isinstance(m, BackboneGenerator) for p in m.mapping_network.parameters()}


def backbone_param_groups(G: nn.Module, D: nn.Module | None) -> list[ParamGroup]:
    """The default groups: G's trainable parameters (the mapping network at train.mapping_lr_mult) and D's."""
    mapping = mapping_parameters(G)
    g_params = trainable_parameters(G)
    groups = [
        ParamGroup("G", [p for p in g_params if id(p) not in mapping], 1.0, "G"),
        ParamGroup("G", [p for p in g_params if id(p) in mapping], 1.0, "G mapping", mapping=True),
    ]
    if D is not None:
        groups.append(ParamGroup("D", trainable_parameters(D), 1.0, "D"))
    return [g for g in groups if g.params]


def named_sources(cls: type[Method], options: dict) -> list[str]:
    """The suite sources a method entry's options name (in its ``Resource.SOURCES`` arguments)."""
    return [n for arg, kind in cls.resources.items() if kind is Resource.SOURCES for n in options.get(arg) or []]


def uses_perceptual(cls: type[Method]) -> bool:
    return Resource.PERCEPTUAL in cls.resources.values()


def provide_resources(
    cls: type[Method],
    options: dict,
    source: Callable[[str], object],
    perceptual: Callable[[], nn.Module],
    training_set: Callable[[], TrainingSet] | None = None,
) -> dict:
    """A method entry's options with the resources it declares filled in: ``source(name)`` loads a
    suite source, ``perceptual()`` builds the suite's perceptual network, ``training_set()`` gives the
    cell's training images and cache folder (None: the method receives None and says what it lacks)."""
    provided = dict(options)
    for arg, kind in cls.resources.items():
        if kind is Resource.SOURCES and options.get(arg):
            provided[arg] = [source(name) for name in options[arg]]
        elif kind is Resource.PERCEPTUAL:
            provided[arg] = perceptual()
        elif kind is Resource.TRAINING_SET:
            provided[arg] = training_set() if training_set is not None else None
    return provided


def check_backbone(name: str, backbone: str) -> None:
    """Refuse, in one line that says why, a method on a backbone it declares it cannot run on."""
    reason = METHODS.get(name).unsupported_backbones.get(backbone)
    if reason:
        raise BenchmarkError(f"method {name!r} cannot run on the {backbone} backbone: {reason}")


def build_method(name: str, source, target: TargetSpec, **options) -> Method:
    """Instantiate a registered method; unknown options become a one-line error listing the valid ones."""
    cls = METHODS.get(name)
    check_method_options(name, cls, options)
    check_backbone(name, source.config.name)
    try:
        return cls(source, target, **options)
    except ValueError as err:  # constructors validate their options with ValueError
        raise BenchmarkError(f"method {name!r}: {err}") from None
