"""The method contract, the shared adversarial step, and the methods registry.

A method is an ``nn.Module`` registered by name. It is built from the source (pretrained G and
D weights) and the target's spec, and it owns everything it adds (miner, hypernetwork, AdaFM
gamma/beta, latents). It tells the harness three things:

- **what trains**: ``param_groups()`` lists every parameter it may ever train, each group tied
  to an optimizer ("G" or "D") with a learning-rate multiplier; ``enter_stage`` narrows that
  per stage through ``requires_grad`` (a parameter without a gradient is skipped by Adam);
- **its schedule**: ``schedule(**options)``, its stages computed from its options without
  building it (e.g. MineGAN's miner-only stage first), which the harness lays out against the
  budget (``benchmark.schedule``) and the dry run prints;
- **one training step**: ``accumulate_gradients(phase, batch, ctx)`` computes the phase's loss
  terms and calls backward; the harness zeroes gradients, steps the optimizer, checks the losses
  are finite and updates the EMA.

The harness owns the loop, the optimizers, EMA, checkpoints and evaluation (``benchmark.trainer``);
a method never touches them. ``self.G`` is the whole sampling path (the backbone, or a module that
wraps it with a miner or modulation); the harness keeps ``self.G_ema``, its moving average, and
``sample`` draws from it.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from benchmark.losses import d_logistic_loss, g_nonsaturating_loss, r1_penalty
from benchmark.nets import StyledGenerator, trainable_parameters
from benchmark.registry import Registry
from benchmark.schedule import Stage, check_method_options
from benchmark.sources.base import EMA_START

METHODS: Registry[type[Method]] = Registry(
    "method",
    contract="a Method subclass built as Method(source, target, **options); declares param_groups(), "
    "schedule(**options), accumulate_gradients(phase, batch, ctx) and samples with sample(z, labels) -> [-1, 1]",
)


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


@dataclass
class Batch:
    """Real training images in [-1, 1], their labels (None when unconditional) and dataset indices."""

    images: torch.Tensor
    labels: torch.Tensor | None
    indices: torch.Tensor


@dataclass
class Latents:
    """Inputs for one generator call: z, labels, and an optional second z with its crossover block."""

    z: torch.Tensor
    labels: torch.Tensor | None = None
    mix_z: torch.Tensor | None = None
    crossover: int | None = None

    def as_kwargs(self) -> dict:
        return {"labels": self.labels, "mix_z": self.mix_z, "crossover": self.crossover}


@dataclass
class StepContext:
    """What the harness hands a method for one step.

    Attributes:
        step: global step index (0-based).
        stage: the current stage's name.
        sample_latents: draws a ``Latents`` for a given batch size from the seeded training RNG
            (style mixing with the suite's probability, uniform labels when conditional).
        r1_gamma: R1 weight; ``r1_every`` > 1 means lazy R1 (the penalty is scaled up to match).
        do_r1: whether this D step applies R1.
        trainable: the parameters each optimizer steps now, for ``backward(inputs=...)``.
        generator: the training RNG, for any extra randomness a method needs.
    """

    step: int
    stage: str
    sample_latents: Callable[..., Latents]
    r1_gamma: float
    r1_every: int
    do_r1: bool
    trainable: dict[str, list[nn.Parameter]]
    generator: torch.Generator


def backward(terms: dict[str, torch.Tensor], params: list[nn.Parameter]) -> dict[str, torch.Tensor]:
    """Sum the loss terms, backpropagate into ``params`` only, return the detached terms."""
    total = sum(terms.values())
    if params and total.requires_grad:
        total.backward(inputs=params)
    return {k: v.detach() for k, v in terms.items()}


class Method(nn.Module):
    """Base of every transfer method. Subclasses set ``self.G`` (and ``self.D`` if adversarial).

    Args:
        source: the pretrained source (``benchmark.sources.Source``); its ``build_generator`` and
            ``build_discriminator`` give fresh networks with the source weights (or random ones).
        target: the target's spec.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for ``run_benchmark.py list``
    adversarial: ClassVar[bool] = True
    hflip: bool | None = None  # None: follow the suite's train.hflip; a method may override it

    def __init__(self, source, target: TargetSpec):
        super().__init__()
        self.target = target
        self.style_dim = source.config.style_dim
        self.n_style_blocks = len(source.config.resolutions)
        self.G: nn.Module
        self.D: nn.Module | None = None

    # -- the contract ----------------------------------------------------------------------------
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

    def accumulate_gradients(self, phase: str, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        raise NotImplementedError

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


def mapping_parameters(module: nn.Module) -> set[int]:
    """ids of the mapping-network parameters of every StyleGAN generator inside ``module``."""
    return {id(p) for m in module.modules() if isinstance(m, StyledGenerator) for p in m.style.parameters()}


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


class AdversarialMethod(Method):
    """The shared adversarial step: non-saturating logistic loss, R1 on reals, style mixing.

    Subclasses add loss terms through ``d_regularizers`` and ``g_regularizers``, choose the
    fakes' latents through ``sample_latents``, and change what trains through ``requires_grad``;
    they do not rewrite the step.
    """

    def sample_latents(self, batch: Batch, ctx: StepContext) -> Latents:
        """The fakes' latents for one phase: the harness's draw (uniform labels when conditional)."""
        return ctx.sample_latents(batch.images.shape[0])

    def d_regularizers(self, batch: Batch, latents: Latents, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Extra D terms; ``latents`` are the ones this D step's fakes came from."""
        return {}

    def g_regularizers(self, fake: torch.Tensor, latents: Latents, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {}

    def generate(self, latents: Latents) -> torch.Tensor:
        return self.G(latents.z, **latents.as_kwargs())

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.D(images, labels)

    def accumulate_gradients(self, phase: str, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        latents = self.sample_latents(batch, ctx)
        if phase == "D":
            with torch.no_grad():
                fake = self.generate(latents)
            real = batch.images.detach().requires_grad_(ctx.do_r1)
            real_logits = self.discriminate(real, batch.labels)
            fake_logits = self.discriminate(fake, latents.labels)
            terms = dict(zip(("d_real", "d_fake"), d_logistic_loss(real_logits, fake_logits)))
            if ctx.do_r1:
                terms["r1"] = r1_penalty(real_logits, real, ctx.r1_gamma) * ctx.r1_every
            terms.update(self.d_regularizers(batch, latents, ctx))
            return backward(terms, ctx.trainable["D"])
        if phase == "G":
            fake = self.generate(latents)
            terms = {"g_adv": g_nonsaturating_loss(self.discriminate(fake, latents.labels))}
            terms.update(self.g_regularizers(fake, latents, ctx))
            return backward(terms, ctx.trainable["G"])
        raise ValueError(f"{self.name}: no phase {phase!r}")


def build_method(name: str, source, target: TargetSpec, **options) -> Method:
    """Instantiate a registered method; unknown options become a one-line error listing the valid ones."""
    from benchmark.errors import BenchmarkError

    cls = METHODS.get(name)
    check_method_options(name, cls, options)
    try:
        return cls(source, target, **options)
    except ValueError as err:  # constructors validate their options with ValueError
        raise BenchmarkError(f"method {name!r}: {err}") from None
