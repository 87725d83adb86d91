"""Hyper-Modulation (Laria et al. 2022, Transferring Unconditional to Conditional GANs with Hyper-Modulation).

A frozen unconditional StyleGAN becomes conditional through a hypernetwork that modulates its
conv kernels per class (``methods.hypernet``). Training has two stages: data-free
self-alignment of the hypernetwork to the source, then adversarial training with a class head
on D and a Barlow Twins loss on D's features (``methods.contrastive``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import METHODS, Batch, Fakes, Latents, Method, ParamGroup, Stage, StepContext, TargetSpec
from benchmark.nets import Discriminator, parameters_of, set_trainable, trainable_parameters
from benchmark.nets.layers import EqualConv2d
from methods.contrastive import barlow_twins_loss, barlow_views
from methods.hypernet import HyperModGenerator

ALIGN_STAGE = "self-align"


class ClassHeadDiscriminator(nn.Module):
    """The source D's features and Hyper-Modulation's head: a 1x1 EqualConv2d to one logit per class.

    The logit of the sample's class is the output (official model/hyper_mod.py ``Discriminator``:
    ``final = EqualConv2d(512, num_classes, 1)``, ``out[arange, c]``); the source's ``linear``
    is not used (the official loader drops it) and stays frozen.

    Args:
        backbone: an unconditional discriminator with the source's weights.
        n_classes: classes of the target (1 when unconditional).
    """

    def __init__(self, backbone: Discriminator, n_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = EqualConv2d(backbone.config.width(4), n_classes, 1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        return self.backbone.features(x)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.backbone.features(x)[0]
        logits = self.head(h[:, :, None, None]).flatten(1)
        if labels is None:
            labels = torch.zeros(len(x), dtype=torch.long, device=x.device)
        return logits.gather(1, labels[:, None]).squeeze(1)

    def parts(self) -> dict[str, nn.Module]:
        return {**self.backbone.parts(), "class_head": self.head}


@METHODS.register()
class HyperMod(Method):
    """Laria et al. 2022: a class-conditional hypernetwork over a frozen source G.

    Defaults and where they come from (hecoding/Hyper-Modulation):

    - Trainable: the per-conv hypernetworks and the task network (G), D except ``from_rgb``, and
      the new class head; frozen: the mapping network, noise, AdaIN, to_rgb, the constant input
      and the normalised source kernels (pretrained_converter.py ``freeze_layers``).
    - Task network: 64-d embedding, 4 layers (train.py ``--task_size 64 --n_mlp_task 4``). Its lr
      multiplier ``task_lr_mult`` is 0.001: train.py gives the task group ``lr * 0.01`` with
      ``'mult': 0.001``, and ``adjust_lr`` (utils.py) then sets it to ``lr * mult``.
      self_alignment.py never calls ``adjust_lr``, so there it learns at lr x 0.01; the harness
      keeps one multiplier per parameter for the whole run, so self-alignment here uses 0.001.
      Self-alignment is carried by the hypernetworks, which learn at the full lr in both.
    - Self-alignment (self_alignment.py, run as the README says: ``--batch_size 32 --iterations
      10000``; the script's own default is 50000; lr 0.002, no mixing) is its own data-free run
      before transfer training, so here it is a stage that extends the budget: ``align_steps``
      G-only steps on ``align_batch`` latents and no images, loss = sum over synthesis blocks of
      L1(modulated block output, source block output) for the same z and noise, with one task
      embedding, against the source's EMA generator (``g_running``, which self_alignment.py
      loads and from which it initialises the modulated G). Training then starts as train.py
      does from the aligned checkpoint: the embedding copied to every class (L376-382), the EMA
      restarted from the aligned G, and fresh optimizers (``Stage(reset_ema=True,
      reset_optimizers=True)``).
    - Labels (train.py L166, L196, L209): the fakes of the D step, of the contrastive term and of the G
      step take the real batch's labels, not uniformly drawn ones.
    - Contrastive (train.py ``--contrastive``, one of the README's variants; on by default here
      as in the paper's full method; barlow_twins.py): Barlow Twins on D's final features of two
      views of the real batch and of a fake batch in every D step, weight 0.01
      (``--contr_weighting``), off-diagonal lambda 5e-3, no projector. The fakes for this term
      reuse the D step's z with fresh noise (train.py L196, ``generator(gen_in1, ...)``).
    - ``finetune`` (train.py ``--finetune``, the README's other variant): ``freeze_layers`` is
      skipped, so the synthesis network's own parameters (noise scales, AdaIN affines, constant
      input, to_rgb) train beside the hypernetworks, and D's from_rgb too; the mapping network
      stays out of the G optimizer (train.py L351 optimises ``generator.generator`` only).
    - The shared recipe (R1 10, lr 0.002, Adam(0, 0.99), mixing 0.9, EMA) is the official one.

    Where this differs from the official code: fused upsampling convs are modulated on their
    stored 3x3 kernel before rosinality's scale and shifted-kernel average (the official code
    modulates the averaged 4x4 kernel and rescales it with fan_in = out * 16, hyper_mod.py
    L72-87), so that gamma = sigma, beta = mu reproduces the source exactly, which is what
    self-alignment aims at; and weights are built once per class in the batch, not per sample
    (same outputs).

    - Unaligned (``align_steps: 0``, the paper's uninitialised-hypernetwork baseline): train.py's
      ``main`` given a checkpoint without a ``task`` key: G converted from ``generator``, the average
      from ``g_running``, a random task embedding row per class, no copy; so here G is built from
      the trained generator, the average (parameters and normalised kernels) from the EMA one, and
      the class rows stay independent.
    - ``contrastive: false`` is the official default run (the hypernetwork only): no Barlow Twins
      term and none of its forward passes (a weight of 0 would still pay for them).

    Args:
        align_steps: length of the self-alignment stage, run before the budget (0: the unaligned run).
        align_batch: latents per self-alignment step.
        task_dim: task vector width.
        task_layers: task MLP depth.
        task_lr_mult: lr multiplier of the task network.
        contrastive: add the Barlow Twins terms to the D step.
        contrastive_weight: weight of each Barlow Twins term.
        off_diagonal_weight: Barlow Twins' lambda.
        finetune: also train the synthesis network's own parameters and D's from_rgb.
    """

    name = "hypermod"
    plot_style = ("#8b0000", ":", "d")
    unsupported_backbones = {
        "stylegan2": "the official code (hecoding/Hyper-Modulation) modulates StyleGAN v1's conv weights, "
        "normalised per kernel, and aligns v1's block outputs; there is no StyleGAN2 version to be faithful to"
    }
    summary = "class-conditional hypernetwork over a frozen G; self-alignment, class head, Barlow Twins on D"

    def __init__(
        self,
        source,
        target: TargetSpec,
        align_steps: int = 10_000,
        align_batch: int = 32,
        task_dim: int = 64,
        task_layers: int = 4,
        task_lr_mult: float = 0.001,
        contrastive: bool = True,
        contrastive_weight: float = 0.01,
        off_diagonal_weight: float = 5e-3,
        finetune: bool = False,
    ):
        super().__init__(source, target)
        if align_steps < 0 or align_batch < 1 or task_dim < 1 or task_layers < 0:
            raise ValueError("align_steps and task_layers must be >= 0, align_batch and task_dim >= 1")
        if task_lr_mult <= 0 or contrastive_weight < 0 or off_diagonal_weight < 0:
            raise ValueError("task_lr_mult must be > 0; contrastive_weight and off_diagonal_weight >= 0")
        self.align_steps, self.align_batch, self.task_lr_mult = align_steps, align_batch, task_lr_mult
        self.contrastive, self.contrastive_weight = contrastive, contrastive_weight
        self.off_diagonal_weight, self.finetune = off_diagonal_weight, finetune
        n_classes = target.n_classes if target.conditional else 1
        # Self-aligned: G starts from g_running, as self_alignment.py does. Unaligned (align_steps 0):
        # train.py's run from a vanilla checkpoint, G from ``generator`` and its average from
        # ``g_running`` (each converted, i.e. normalised, on its own), and the task embedding a
        # random row per class (nn.Embedding's init), never copied.
        self.aligned = align_steps > 0
        self.G = HyperModGenerator(source.build_generator(0, ema=self.aligned), n_classes, task_dim, task_layers)
        self._ema_kernels: list[dict[str, torch.Tensor]] | None = None
        if not self.aligned:
            self.G.task.classes_split.fill_(True)  # independent class rows from the start
            with torch.random.fork_rng(devices=[]):  # the average's random hypernetworks are discarded
                ema_G = HyperModGenerator(source.build_generator(0, ema=True), n_classes, task_dim, task_layers)
            self._ema_kernels = [dict(conv.named_buffers()) for conv in ema_G.hyper_convs()]
        self.D = ClassHeadDiscriminator(source.build_discriminator(0), n_classes)
        set_trainable(parameters_of(self.D.backbone, ["linear"] if finetune else ["from_rgb", "linear"]), False)
        if finetune:
            set_trainable(self.synthesis_parameters(), True)

    def synthesis_parameters(self) -> list[nn.Parameter]:
        """The synthesis network's own parameters (noise, AdaIN, constant input, to_rgb), hypernetworks excluded."""
        hyper = {id(p) for conv in self.G.hyper_convs() for p in conv.parameters()}
        parts = [name for name in self.G.backbone.parts() if name.startswith("block")] + ["to_rgb"]
        return [p for p in parameters_of(self.G.backbone, parts) if id(p) not in hyper]

    def param_groups(self) -> list[ParamGroup]:
        hyper = [p for conv in self.G.hyper_convs() for p in conv.parameters()]
        groups = [
            ParamGroup("G", hyper, 1.0, "G hypernetwork"),
            ParamGroup("G", list(self.G.task.parameters()), self.task_lr_mult, "G task network"),
            ParamGroup("D", trainable_parameters(self.D), 1.0, "D"),
        ]
        if self.finetune:
            groups.insert(1, ParamGroup("G", self.synthesis_parameters(), 1.0, "G synthesis"))
        return groups

    def attach_ema(self) -> None:
        """The average, as ``Method.attach_ema``; unaligned, its normalised kernels are g_running's
        (train.py loads ``convert_generator(ckpt['g_running'])`` into g_running, whose buffers
        ``accumulate`` never touches)."""
        super().attach_ema()
        if self._ema_kernels is not None:
            with torch.no_grad():
                for conv, buffers in zip(self.G_ema.hyper_convs(), self._ema_kernels):
                    for name, value in buffers.items():
                        getattr(conv, name).copy_(value)
            self._ema_kernels = None

    @classmethod
    def schedule(cls, *, align_steps: int, **_) -> list[Stage]:
        aligned = align_steps > 0  # unaligned, training starts from the source's own G, average and optimizers
        return [
            Stage(ALIGN_STAGE, align_steps, ("G",), uses_data=False, extends_budget=True, set_by="align_steps"),
            Stage("train", reset_ema=aligned, reset_optimizers=aligned, main=True),
        ]

    def enter_stage(self, stage: Stage) -> None:
        if stage.name != ALIGN_STAGE:
            # Once per run (the flag is in the checkpoint): copy the aligned task embedding to every
            # class (unaligned, the flag is set from the start, so nothing is copied).
            self.G.task.split_classes()

    # -- the step's hooks ------------------------------------------------------------------------
    def sample_latents(self, batch: Batch | None, ctx: StepContext) -> Latents:
        """Self-alignment: ``align_batch`` latents, no mixing (self_alignment.py by default); then the
        fakes take the real batch's labels (train.py ``task(real_label)``)."""
        if ctx.stage.name == ALIGN_STAGE:
            return Latents(ctx.sample_latents(self.align_batch).z)
        return ctx.sample_latents(batch.images.shape[0], labels=batch.labels)

    def generate(self, latents: Latents, ctx: StepContext) -> Fakes:
        """Self-alignment: the modulated G's block outputs beside the source's, for the same z and noise (class 0)."""
        if ctx.stage.name != ALIGN_STAGE:
            return super().generate(latents, ctx)
        z = latents.z
        noise = self.G.backbone.make_noise(len(z), z.device)
        with torch.no_grad():
            _, targets = self.G.source_forward(z, noise, return_block_outputs=True)
        images, outputs = self.G(z, noise=noise, return_block_outputs=True)
        return Fakes(images, latents, {"blocks": outputs, "source_blocks": targets})

    def g_regularizers(self, batch: Batch | None, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Self-alignment's loss: sum over synthesis blocks of L1(modulated block output, source block output)."""
        if ctx.stage.name != ALIGN_STAGE:
            return {}
        pairs = zip(fakes.features["blocks"], fakes.features["source_blocks"])
        return {"align_l1": sum(F.l1_loss(out, target) for out, target in pairs)}

    def d_regularizers(self, batch: Batch, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Barlow Twins on D's features of the reals and of the D step's z and labels, fresh noise (train.py L196)."""
        if not self.contrastive:
            return {}
        with torch.no_grad():
            fake = self.generate(fakes.latents, ctx).images
        return {
            "bt_real": self.contrastive_loss(batch.images, ctx.generator),
            "bt_fake": self.contrastive_loss(fake, ctx.generator),
        }

    def contrastive_loss(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        view1, view2 = barlow_views(images, generator)
        h1, h2 = self.D.features(view1)[0], self.D.features(view2)[0]
        return self.contrastive_weight * barlow_twins_loss(h1, h2, self.off_diagonal_weight)
