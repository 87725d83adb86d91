"""Non-adversarial transfer by reconstruction: BSA and GLO on one shared base.

Both methods give every training image its own latent z_i (a row of ``latents``, picked by the
batch's dataset indices), reconstruct the image from z_i (and its class, when the target is
conditional) and train without a discriminator. The loss is a pixel L1, a perceptual distance
on the suite's perceptual network (VGG16 on real suites, the digits classifier on the toy one)
and a prior term that pulls the z_i towards N(0, I), so that sampling z ~ N(0, I) afterwards
lands where the z_i are. Both official codes jitter z_i by N(0, 0.01^2) before the generator
and compute the prior term on the un-jittered z_i.

StyleGAN normalises z (PixelNorm) before its mapping network, so the zero-initialised latents
first act as the jitter's random directions; after a few steps their own direction dominates.
Reconstruction targets are not flipped unless the method's ``hflip`` option asks for it: a
latent fits one image, and a flipped copy gives the same latent two targets (BSA's official code
has no flips; the suite's ``train.hflip`` is for the adversarial methods).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import (
    METHODS,
    Batch,
    Fakes,
    Latents,
    Method,
    ParamGroup,
    Resource,
    Stage,
    StepContext,
    TargetSpec,
    backbone_param_groups,
)
from benchmark.nets import set_trainable, trainable_parameters
from methods.scaleshift import freeze_all_but_scale_shift

log = logging.getLogger(__name__)

REFERENCE_SAMPLES_PER_LATENT = 10  # the official EMD draws 10 Gaussian points per latent in the batch


# -- losses ------------------------------------------------------------------------------------
def nearest_neighbour_distance(z: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Symmetric nearest-neighbour squared distance between two point sets (a Chamfer distance).

    mean over reference points of the squared distance to the nearest z, plus mean over z of the
    squared distance to the nearest reference point: what both official codes call the earth
    mover's distance (nogu-atsu ada_generator.py ``EMD``, FreezeD AdaBIGGANLoss.py
    ``earth_mover_dist``), with their expansion |z|^2 - 2 z.t + |t|^2.
    """
    dist = z.pow(2).sum(1, keepdim=True) - 2 * z @ reference.T + reference.pow(2).sum(1)
    return dist.min(0).values.mean() + dist.min(1).values.mean()


def emd_to_normal(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The official prior term: ``nearest_neighbour_distance`` to 10 * len(z) fresh N(0, I) samples."""
    reference = torch.randn(len(z) * REFERENCE_SAMPLES_PER_LATENT, z.shape[1], generator=generator)
    return nearest_neighbour_distance(z, reference.to(z.device, z.dtype))


def normalized(loss: torch.Tensor) -> torch.Tensor:
    """loss / its detached value: always 1, with the gradient of log(loss) (FreezeD's normalize_img/per)."""
    return loss / loss.detach().clamp_min(1e-12)


# -- the shared base ---------------------------------------------------------------------------
class ReconstructionMethod(Method):
    """Per-image latents reconstructed by G under a pixel + perceptual + prior loss; no D.

    One stage with one phase ("G"), not adversarial: the harness's step sums the terms of
    ``g_regularizers`` and its G optimizer steps the method's generator parameters and the
    latents; sampling (inherited) draws z ~ N(0, I). The perceptual network is held outside the
    module tree, so it is neither trained nor saved in checkpoints, yet it follows ``.to(device)``.

    Args:
        perceptual: the suite's perceptual network (a ``FeatureExtractor`` with ``feature_maps``).
        perceptual_weight: weight of each feature map's distance.
        perceptual_distance: "l1" (mean absolute error) or "l2" (mean squared error) per map.
        normalize_terms: divide the pixel and each perceptual term by its own detached value
            (FreezeD's ``normalize_img``/``normalize_per``).
        emd_weight: weight of ``emd_to_normal`` on the batch's (un-jittered) latents.
        latent_jitter: std of the Gaussian noise added to z_i before the generator.
        latent_lr_mult: the latents' learning rate relative to the suite's lr.
        perceptual_input: the perceptual network's input scale (None: its own; "caffe": VGG16 fed
            as the official Caffe VGG was); a network without that scale (the toy suite's digits
            classifier) takes its own, with a logged note.
        hflip: flip the reconstruction targets at random (off, whatever the suite's hflip).
    """

    resources = {"perceptual": Resource.PERCEPTUAL}

    def __init__(
        self,
        source,
        target: TargetSpec,
        perceptual: nn.Module | None,
        *,
        perceptual_weight: float,
        perceptual_distance: str,
        normalize_terms: bool,
        emd_weight: float,
        latent_jitter: float,
        latent_lr_mult: float,
        perceptual_input: str | None = None,
        hflip: bool = False,
    ):
        super().__init__(source, target)
        if perceptual is None:
            raise ValueError("needs a perceptual network: name one under the suite's 'perceptual' key")
        if perceptual_distance not in ("l1", "l2"):
            raise ValueError(f"perceptual_distance must be 'l1' or 'l2', got {perceptual_distance!r}")
        for key, value in (("perceptual_weight", perceptual_weight), ("emd_weight", emd_weight)):
            if value < 0:
                raise ValueError(f"{key} must be >= 0, got {value}")
        if latent_jitter < 0 or latent_lr_mult <= 0:
            raise ValueError(f"need latent_jitter >= 0 and latent_lr_mult > 0, got {latent_jitter}, {latent_lr_mult}")
        # A tuple keeps nn.Module from registering the network: not trained, not in state_dict.
        self._perceptual = (perceptual.eval().requires_grad_(False),)
        self.perceptual_weight = perceptual_weight
        self.map_distance = F.l1_loss if perceptual_distance == "l1" else F.mse_loss
        self.normalize_terms = normalize_terms
        self.emd_weight = emd_weight
        self.latent_jitter = latent_jitter
        self.latent_lr_mult = latent_lr_mult
        self.hflip = hflip
        if perceptual_input is not None and perceptual_input not in perceptual.input_scales:
            log.info("%s: %s has no %r input scale; it takes its own", self.name, perceptual.name, perceptual_input)
            perceptual_input = None
        self.perceptual_input = perceptual_input
        self.latents = nn.Parameter(torch.zeros(target.n_images, self.style_dim))  # both officials start at 0

    @property
    def perceptual(self) -> nn.Module:
        return self._perceptual[0]

    def _apply(self, fn, recurse: bool = True):
        # .to(device), .cuda(), .double() reach the perceptual network too, though it is no submodule.
        self.perceptual._apply(fn)
        return super()._apply(fn, recurse)

    def generator_param_groups(self) -> list[ParamGroup]:
        """The generator-side parameters this method trains (the latents' group comes after them)."""
        raise NotImplementedError

    def param_groups(self) -> list[ParamGroup]:
        return self.generator_param_groups() + [ParamGroup("G", [self.latents], self.latent_lr_mult, "latents")]

    @classmethod
    def schedule(cls, **_) -> list[Stage]:
        return [Stage("train", None, ("G",), main=True)]

    # -- the step's hooks: each image is reconstructed from its own latent -----------------------
    def sample_latents(self, batch: Batch, ctx: StepContext) -> Latents:
        return Latents(self.latents[batch.indices], batch.labels)

    def generate(self, latents: Latents, ctx: StepContext) -> Fakes:
        z = latents.z
        jitter = torch.randn(z.shape, generator=ctx.generator).to(z.device, z.dtype) * self.latent_jitter
        return Fakes(self.G(z + jitter, latents.labels), latents)

    def g_regularizers(self, batch: Batch, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The whole loss (the stage is not adversarial), weighted as summed; EMD on the un-jittered latents."""
        pixel = F.l1_loss(fakes.images, batch.images)
        maps = self.perceptual_distances(fakes.images, batch.images)
        emd = emd_to_normal(fakes.latents.z, ctx.generator)
        scale = normalized if self.normalize_terms else (lambda loss: loss)
        terms = {"l1": scale(pixel), "perceptual": self.perceptual_weight * sum(scale(m) for m in maps)}
        return {**terms, "emd": self.emd_weight * emd}

    def extra_state(self) -> dict:
        """Which perceptual network the loss used (VGG16: the original Caffe weights or torchvision's approximation)."""
        description = getattr(self.perceptual, "description", None)
        return {"perceptual_network": f"{self.perceptual.name}: {description}"} if description else {}

    def perceptual_distances(self, fake: torch.Tensor, real: torch.Tensor) -> list[torch.Tensor]:
        """One distance per feature map of the perceptual network (the real images' maps carry no gradient)."""
        scale = self.perceptual_input
        with torch.no_grad():
            real_maps = self.perceptual.feature_maps(real, scale)
        return [self.map_distance(f, r) for f, r in zip(self.perceptual.feature_maps(fake, scale), real_maps)]


# -- BSA -----------------------------------------------------------------------------------------
@METHODS.register()
class BSA(ReconstructionMethod):
    """Noguchi & Harada 2019, Batch Statistics Adaptation: only per-layer scale/shift and latents train.

    Every G weight is frozen; each normalization layer's output gets a learned per-channel gamma
    (init 1) and beta (init 0). In StyleGAN v1 the normalization is AdaIN, so both AdaINs of
    every block become a ``ScaledAdaIN`` (the same layer as the adversarial ``scaleshift``); at
    gamma = 1, beta = 0 G is the source. Loss
    (nogu-atsu/small-dataset-image-generation gen_models/ada_generator.py ``get_loss``, defaults
    from configs/default.yml): L1 pixel (weight 1, ``normalize_l1_loss: False``) + 0.001 x L1
    per VGG16 map conv1_1..conv4_3 (``l_per``, ``perceptual_type: l1``, train.py's layer list; VGG16
    fed the official Caffe scale, ``(x + 1) * 127.5`` minus the ImageNet mean, so the perceptual
    term weighs against the pixel term as in the official loss) +
    0.1 x "EMD" of the batch's z_i to N(0, I) (``l_emd``; as the official ``EMD`` computes it, a
    nearest-neighbour distance to fresh Gaussian samples, see ``emd_to_normal``) + 0.02 x sum
    over layers of (MSE(gamma, 1) + MSE(beta, 0)) (``l_re``, ``AdaSNGAN.bs_reg``). z_i start at
    0 (``initial_z: zero``) and are jittered by N(0, 0.01^2) (``AdaGenerator.__call__``).

    Conditional targets: the shared label path's class embedding (zero-initialised, so the
    source is unchanged at step 0) trains with gamma/beta and joins the 0.02 regulariser as
    mean(embedding^2), as AdaBIGGAN's learned class vector does (``AdaBIGGAN.bs_reg``).

    Learning rates: AdaSNGAN, whose gamma/beta and regulariser this follows, trains z, gamma and
    beta at one lr, 0.03 (``init_lr``); AdaBIGGAN trains z at 100x its scale/shift lr (0.05 vs
    0.0005). Defaults: gamma/beta at 15 x the suite's lr (AdaSNGAN's 0.03 at the suite's 0.002)
    and latents at the same lr. The official lr decay (x0.2 every 3000 iterations) and Adam betas
    (0.9, 0.999) give way to the suite's shared recipe, which has no lr schedule. The official
    code also trains G's first linear layer at lr 1e-7 (``lr_g_linear``), in effect frozen: here
    it is frozen.

    Args:
        perceptual: the suite's perceptual network (VGG16 on real suites).
        perceptual_weight: weight per feature map (official ``l_per`` 0.001).
        emd_weight: official ``l_emd`` 0.1.
        scale_shift_weight: official ``l_re`` 0.02.
        latent_jitter: official ``eps`` 0.01.
        lr_mult: gamma/beta's lr relative to the suite's (15: AdaSNGAN's 0.03 at lr 0.002).
        latent_lr_mult: latents' lr relative to gamma/beta's (1, as in AdaSNGAN).
        perceptual_input: "caffe", the official VGG input scale (None: torchvision's).
        hflip: flip targets at random (the official code does not).
    """

    name = "bsa"
    plot_style = ("#8c564b", ":", "X")
    unsupported_backbones = {
        "stylegan2": "batch statistics adaptation rescales the outputs of StyleGAN v1's AdaIN (normalisation) "
        "layers; StyleGAN2's demodulated convs have none, and no paper defines the port"
    }
    summary = "per-layer scale/shift + per-image latents, reconstruction loss, no D"

    def __init__(
        self,
        source,
        target: TargetSpec,
        perceptual: nn.Module | None = None,
        perceptual_weight: float = 0.001,
        emd_weight: float = 0.1,
        scale_shift_weight: float = 0.02,
        latent_jitter: float = 0.01,
        lr_mult: float = 15.0,
        latent_lr_mult: float = 1.0,
        perceptual_input: str | None = "caffe",
        hflip: bool = False,
    ):
        if scale_shift_weight < 0 or lr_mult <= 0:
            raise ValueError(f"need scale_shift_weight >= 0 and lr_mult > 0, got {scale_shift_weight}, {lr_mult}")
        super().__init__(
            source,
            target,
            perceptual,
            perceptual_weight=perceptual_weight,
            perceptual_distance="l1",
            normalize_terms=False,
            emd_weight=emd_weight,
            latent_jitter=latent_jitter,
            latent_lr_mult=lr_mult * latent_lr_mult,
            perceptual_input=perceptual_input,
            hflip=hflip,
        )
        self.scale_shift_weight = scale_shift_weight
        self.lr_mult = lr_mult
        self.G = source.build_generator(target.label_classes)
        self.scale_shift = freeze_all_but_scale_shift(self.G)
        if target.conditional:
            set_trainable(self.G.class_embed, True)

    def generator_param_groups(self) -> list[ParamGroup]:
        return [ParamGroup("G", trainable_parameters(self.G), self.lr_mult, "scale/shift")]

    def g_regularizers(self, batch: Batch, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        reg = sum(F.mse_loss(m.scale, torch.ones_like(m.scale)) + m.shift.pow(2).mean() for m in self.scale_shift)
        if self.target.conditional:
            reg = reg + self.G.class_embed.weight.pow(2).mean()
        return {**super().g_regularizers(batch, fakes, ctx), "scale_shift": self.scale_shift_weight * reg}


# -- GLO -----------------------------------------------------------------------------------------
@METHODS.register()
class GLO(ReconstructionMethod):
    """Bojanowski et al. 2018, Generative Latent Optimization, as FreezeD's "supervised" baseline.

    All of G trains at the suite's lr (FreezeD's README runs use ``--sched``: 0.002 at 256 px),
    the mapping at x0.01 as in FreezeD's optimizer, together with per-image latents; there is no
    D. Loss (sangwoomo/FreezeD stylegan/finetune.py ``backward_G_supervised`` and
    stylegan/loss/AdaBIGGANLoss.py with ``scale_per=0.1, scale_emd=0.1, normalize_img=1,
    normalize_per=1, dist_per="l2"``): L1 pixel / its own value + 0.1 x sum over VGG16 maps of
    MSE / its own value + 0.1 x EMD of the batch's latents to N(0, I). FreezeD's ``scale_reg``
    regularises a class vector StyleGAN does not have, so there is no such term. Latents are
    jittered by N(0, 0.01^2) before G; the EMD sees them un-jittered.

    Known bugs of the official code, fixed here to follow its intent:
    - its G optimizer holds only ``generator`` and ``style`` parameters, so the per-image
      embedding was never optimised; here the latents train (the point of GLO);
    - ``embedding.from_pretrained(zeros)`` returns a new module that is discarded, so the
      embedding kept PyTorch's N(0, 1) init; here latents start at zero as intended (and as BSA's);
    - its VGG16 slice stops before index 22, silently dropping conv4_3; here every map the
      perceptual network gives is used.
    FreezeD never trained latents, so it has no latent lr: they take the suite's lr
    (``latent_lr_mult`` 1), as BSA's AdaSNGAN does.

    Args:
        perceptual: the suite's perceptual network (VGG16 on real suites).
        perceptual_weight: weight per (normalised) feature map, FreezeD's ``scale_per`` 0.1.
        emd_weight: FreezeD's ``scale_emd`` 0.1.
        latent_jitter: FreezeD's 0.01.
        latent_lr_mult: latents' lr relative to the suite's.
        hflip: flip targets at random (FreezeD's loader flips; off here, see the module docstring).
    """

    name = "glo"
    plot_style = ("#e377c2", "-.", "*")
    summary = "all of G + per-image latents, reconstruction loss, no D"

    def __init__(
        self,
        source,
        target: TargetSpec,
        perceptual: nn.Module | None = None,
        perceptual_weight: float = 0.1,
        emd_weight: float = 0.1,
        latent_jitter: float = 0.01,
        latent_lr_mult: float = 1.0,
        hflip: bool = False,
    ):
        super().__init__(
            source,
            target,
            perceptual,
            perceptual_weight=perceptual_weight,
            perceptual_distance="l2",
            normalize_terms=True,
            emd_weight=emd_weight,
            latent_jitter=latent_jitter,
            latent_lr_mult=latent_lr_mult,
            hflip=hflip,
        )
        self.G = source.build_generator(target.label_classes)

    def generator_param_groups(self) -> list[ParamGroup]:
        return backbone_param_groups(self.G, None)
