"""RSSA: relaxed spatial structural alignment (Xiao et al. CVPR 2022).

Official code: StevenShaw1999/RSSA ``train_face_proj.py`` (training; its loop is CDC's),
``invert_gan.py`` (the GAN inversion run before training) and ``model.py``
(``Projection_module``, ``Patch_Discriminator``, ``Extra``). The pieces it keeps from CDC (anchor
latents, the patch discriminator) live in ``methods.cdc_parts``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.io import atomic_torch_save, config_hash, read_cached
from benchmark.method import (
    METHODS,
    Batch,
    Fakes,
    Latents,
    Method,
    ParamGroup,
    Resource,
    StepContext,
    TargetSpec,
    TrainingSet,
    backbone_param_groups,
)
from benchmark.nets import frozen_reference
from methods.cdc_parts import ANCHOR_EVERY, ANCHOR_JITTER, N_ANCHORS, AnchorLatents, PatchHead, patch_logits_for_loss

log = logging.getLogger(__name__)

# Projection_module's per-layer mixing at 256 px, from the top resolution down one octave at a time:
# styles of the 256 px convs (and the last to_rgb) .85, 128 px .65, 64 px .45, 32 and 16 px .05, below 0.
PROJECTION_MIX = (0.85, 0.65, 0.45, 0.05, 0.05)
INVERSION_CACHE = "rssa-inversion"


# -- GAN inversion -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class InversionSettings:
    """invert_gan.py's optimisation of one W+ code per image (its defaults).

    Args:
        steps: Adam steps per image (``--iter_num`` 4002).
        lr: Adam's learning rate (``--learning_rate`` 0.1; betas torch's defaults).
        lr_halve_every: the lr halves every this many steps (``StepLR(optimizer, 1000, gamma=0.5)``).
        lpips_weight: weight of the perceptual distance (``LPIPS(net='vgg')``, weight 1).
        mse_weight: weight of the pixel MSE (weight 1).
        n_mean: z samples whose mean w starts every code (``find_avg_latent``: 5120).
    """

    steps: int = 4002
    lr: float = 0.1
    lr_halve_every: int = 1000
    lpips_weight: float = 1.0
    mse_weight: float = 1.0
    n_mean: int = 5120

    def scaled(self, scale: float) -> InversionSettings:
        """The same schedule shortened by a budget's factor (at least one step, the halvings kept in proportion)."""
        if scale == 1:
            return self
        return dataclasses.replace(
            self, steps=max(1, round(self.steps * scale)), lr_halve_every=max(1, round(self.lr_halve_every * scale))
        )


def _unit_channels(x: torch.Tensor) -> torch.Tensor:
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)  # lpips.normalize_tensor


def perceptual_distance(perceptual: nn.Module, fake: torch.Tensor, real_maps: list[torch.Tensor]) -> torch.Tensor:
    """Per-image LPIPS without learned weights (the ``lpips`` package's ``lpips=False`` baseline) on the
    perceptual network's maps: channel-unit-normalised maps, squared difference summed over channels,
    averaged over positions, summed over maps. ``real_maps`` are the targets' maps. Returns (B,)."""
    total = 0
    for f, r in zip(perceptual.feature_maps(fake), real_maps):
        total = total + (_unit_channels(f) - _unit_channels(r)).pow(2).sum(1).mean((1, 2))
    return total


def invert_images(
    G: nn.Module, images: torch.Tensor, perceptual: nn.Module | None, settings: InversionSettings, seed: int = 0
) -> torch.Tensor:
    """W+ codes (N, n_styles, style_dim) of images in [-1, 1] under the generator G (invert_gan.py).

    Every code starts at the mean w of ``n_mean`` random z, repeated over the styles, and is
    optimised by Adam on LPIPS + MSE against its image through the stored noise maps
    (``randomize_noise=False``). The images are optimised together, each with its own loss summed
    into one: Adam acts element-wise, so this is the official one-image-at-a-time loop, batched.
    """
    device = images.device
    with torch.no_grad():
        z = torch.randn(settings.n_mean, G.config.style_dim, generator=torch.Generator().manual_seed(seed))
        mean_w = G.mapping(z.to(device)).mean(0)
    codes = mean_w.expand(len(images), G.config.n_styles, -1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([codes], lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, settings.lr_halve_every, gamma=0.5)
    noise = G.stored_noise()
    real_maps = None
    if settings.lpips_weight:
        with torch.no_grad():  # the targets' maps never change: computed once
            real_maps = perceptual.feature_maps(images)
    for _ in range(settings.steps):
        fake = G.synthesis(codes, noise)
        loss = settings.mse_weight * (fake - images).pow(2).mean((1, 2, 3))
        if settings.lpips_weight:
            loss = loss + settings.lpips_weight * perceptual_distance(perceptual, fake, real_maps)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward(inputs=[codes])
        optimizer.step()
        scheduler.step()
    return codes.detach()


def weights_digest(net: nn.Module) -> str:
    """sha1 of a network's tensors (names, shapes and values): the source's identity in a cache key.

    Parameters and buffers both, persistent or not: a ``frozen_reference`` keeps its weights as
    non-persistent buffers, which ``state_dict`` leaves out.
    """
    h = hashlib.sha1()
    for key, value in sorted([*net.named_parameters(), *net.named_buffers()], key=lambda item: item[0]):
        h.update(key.encode())
        h.update(str(tuple(value.shape)).encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cached_inversion(
    G: nn.Module, training_set: TrainingSet, perceptual: nn.Module | None, settings: InversionSettings
) -> torch.Tensor:
    """The training images' W+ codes, read from the cache when the same source weights, images and
    settings were inverted before, else inverted (``invert_images``) and written atomically.

    The file is ``<cache_dir>/rssa-inversion/<hash>.pt``, the hash over a digest of G's weights,
    a digest of the uint8 images, the settings and the perceptual network's name.
    """
    images = training_set.images
    key = config_hash(
        {
            "source": weights_digest(G),
            "images": hashlib.sha1(images.cpu().contiguous().numpy().tobytes()).hexdigest(),
            "shape": list(images.shape),
            "settings": dataclasses.asdict(settings),
            "perceptual": getattr(perceptual, "name", None) if settings.lpips_weight else None,
        },
        n=16,
    )
    path = None if training_set.cache_dir is None else Path(training_set.cache_dir) / INVERSION_CACHE / f"{key}.pt"
    if path is not None and path.exists():
        cached = read_cached(path)
        if cached is not None:
            log.info("rssa: inverted codes from %s", path)
            return cached["codes"]
    log.info("rssa: inverting %d training images (%d steps each)", len(images), settings.steps)
    device = training_set.device
    G = G.to(device)
    if perceptual is not None:
        perceptual.to(device)
    real = images.to(device).float() / 127.5 - 1
    codes = invert_images(G, real, perceptual, settings).cpu()
    if path is not None:
        atomic_torch_save({"codes": codes, "settings": dataclasses.asdict(settings)}, path)
    return codes


# -- the latent projection ---------------------------------------------------------------------
def style_resolutions(config) -> list[int]:
    """The resolution each style input of a StyleGAN2 synthesis network acts at (rosinality's
    ``latent[:, i]``): 4 px for style 0, then 2 per resolution (the last one only the top to_rgb)."""
    top = config.resolution
    return [4] + [min(top, 4 * 2 ** ((i + 1) // 2)) for i in range(1, config.n_styles)]


def projection_weights(config, mix: tuple[float, ...]) -> torch.Tensor:
    """Per-style mixing (n_styles,): ``mix[k]`` for styles at resolution top / 2**k, 0 below the last."""
    top = config.resolution
    weights = []
    for r in style_resolutions(config):
        octave = (top // r).bit_length() - 1
        weights.append(mix[octave] if octave < len(mix) else 0.0)
    return torch.tensor(weights)


class LatentProjection(nn.Module):
    """Projection_module.modulate: each style moves toward its projection on the span of the codes.

    Per style l, with C_l (style_dim, N) the training codes' l-th rows: o = C_l C_l^+ w (the
    official inverse(C^T C) C^T, here the pseudo-inverse, equal for independent codes and defined
    when there are more images than dimensions), rescaled to |w|, and w' = m_l o + (1 - m_l) w.

    Args:
        codes: (N, n_styles, style_dim) W+ codes of the training images.
        weights: (n_styles,) the per-style mixing m_l.
    """

    def __init__(self, codes: torch.Tensor, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("codes", codes.clone())
        self.register_buffer("weights", weights.view(1, -1, 1).to(codes.dtype))

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        basis = self.codes.permute(1, 2, 0)  # (L, d, N)
        projector = basis @ torch.linalg.pinv(basis)  # (L, d, d)
        orth = torch.einsum("lde,ble->bld", projector, ws)
        orth = orth / orth.norm(dim=2, keepdim=True) * ws.norm(dim=2, keepdim=True)
        return self.weights * orth + (1 - self.weights) * ws


class ProjectedGenerator(nn.Module):
    """The sampling path: the backbone's styles, projected (``LatentProjection``), then its synthesis.

    Without a projection it computes exactly the backbone's forward. ``styles`` and ``synthesis``
    are forwarded, so the path-length penalty differentiates through the projected styles, as the
    official path-length step does (``Proj_module.modulate`` before ``generator``).
    """

    def __init__(self, backbone: nn.Module, projection: LatentProjection | None = None):
        super().__init__()
        self.backbone = backbone
        self.projection = projection

    def styles(self, z, labels=None, mix_z=None, crossover=None) -> torch.Tensor:
        ws = self.backbone.styles(z, labels, mix_z, crossover)
        return ws if self.projection is None else self.projection(ws)

    def synthesis(self, ws, noise=None, return_layer_outputs: bool = False):
        return self.backbone.synthesis(ws, noise, return_layer_outputs=return_layer_outputs)

    def forward(self, z, labels=None, noise=None, mix_z=None, crossover=None, return_layer_outputs: bool = False):
        return self.synthesis(self.styles(z, labels, mix_z, crossover), noise, return_layer_outputs)


# -- the two losses ----------------------------------------------------------------------------
def _window_grams(feat: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Gram matrices (B, P, w*w, w*w) of channel vectors inside each w x w window (F.unfold's order)."""
    batch, channels = feat.shape[:2]
    unfolded = F.unfold(feat, window, stride=stride)  # (B, C * w * w, P)
    vectors = unfolded.view(batch, channels, window * window, -1).permute(0, 3, 2, 1)  # (B, P, w*w, C)
    return vectors @ vectors.transpose(2, 3)


def self_correlation_loss(
    source_feats: list[torch.Tensor], target_feats: list[torch.Tensor], resolutions: tuple[int, int]
) -> torch.Tensor:
    """RSSA's cross-domain spatial structure consistency (train_face_proj.py, ``--self_corr_loss``).

    For each layer output whose size is within ``resolutions`` (64..256 at 256 px): unit-normalise
    the channel vectors, average-pool to half size s, and compare source and target by SmoothL1 on
    the Gram matrices of the four s/2 windows (stride s/2), plus that of the centre window.
    """
    low, high = resolutions
    loss = source_feats[0].new_zeros(())
    for fs, ft in zip(source_feats, target_feats):
        size = fs.shape[2]
        if not low <= size <= high:
            continue
        feat = F.avg_pool2d(F.normalize(torch.cat([fs, ft]), dim=1), 2)  # AdaptiveAvgPool2d(size / 2)
        half = size // 2
        window = max(1, half // 2)
        grams = _window_grams(feat, window, window).chunk(2)
        loss = loss + F.smooth_l1_loss(grams[1], grams[0])
        margin = window // 2
        centre = feat[:, :, margin : half - margin, margin : half - margin]
        grams = _window_grams(centre, window, window).chunk(2)
        loss = loss + F.smooth_l1_loss(grams[1], grams[0])
    return loss


def disturbance_correlation_loss(
    source_feats: list[torch.Tensor], target_feats: list[torch.Tensor], max_resolution: int, window_from: int
) -> torch.Tensor:
    """RSSA's disturbance correlation consistency (train_face_proj.py, ``--dis_corr_loss``).

    For layer outputs up to ``max_resolution`` (128 at 256 px), channel-normalised; from
    ``window_from`` px (64 at 256 px) on, cut into a 4 x 4 grid of windows. For each sample j and
    each later sample k, the softmax over k's positions of the correlations of j's position vectors
    with k's (per window), in the source and in the target; L1 between the two, times the number of
    positions and times the number of later samples, summed, over 6 (the official constant).
    """
    batch = source_feats[0].shape[0]
    loss = source_feats[0].new_zeros(())
    for fs, ft in zip(source_feats, target_feats):
        size = fs.shape[2]
        if size > max_resolution:
            continue
        fs, ft = F.normalize(fs, dim=1), F.normalize(ft, dim=1)
        if size >= window_from:
            w = size // 4
            fs, ft = (F.unfold(f, w, stride=w).view(batch, f.shape[1], w, w, -1) for f in (fs, ft))
        for j in range(batch - 1):
            repeats = batch - 1 - j
            anchor = torch.cat([f[j : j + 1].expand(repeats, *f.shape[1:]) for f in (fs, ft)])
            others = torch.cat([fs[j + 1 :], ft[j + 1 :]])
            if anchor.dim() == 5:  # (M, C, w, w, P) -> (M * P, C, w, w)
                anchor = anchor.permute(0, 4, 1, 2, 3).flatten(0, 1)
                others = others.permute(0, 4, 1, 2, 3).flatten(0, 1)
            a = anchor.flatten(2).transpose(1, 2)  # (M, HW, C)
            o = others.flatten(2)  # (M, C, HW)
            corr = F.softmax(a @ o, dim=2)
            source_corr, target_corr = corr.chunk(2)
            loss = loss + F.l1_loss(target_corr, source_corr) * repeats * corr.shape[2]
        if size >= max_resolution:
            break
    return loss / 6


# -- the method --------------------------------------------------------------------------------
@METHODS.register()
class RSSA(Method):
    """Xiao et al. CVPR 2022, Relaxed Spatial Structural Alignment, on CDC's anchors and patch D.

    Official code: StevenShaw1999/RSSA train_face_proj.py (README: ``--iter 2002 --self_corr_loss
    --proj --dis_corr_loss``, batch 4), invert_gan.py, model.py. All of G (mapping included) and D
    fine-tune from the source, plus the patch head. Defaults and where they come from:

    - self-correlation consistency (``self_correlation_loss``), weight 0.8 every step
      (``g_loss + 0.8 * self_corr_loss``) on 4 fresh z (``--feat_const_batch``) through the source
      and target G with the stored noise maps, layers of 64..256 px at 256 px;
    - disturbance correlation (``disturbance_correlation_loss``), weight 0.4 every 6th step
      (``--dis_corr_freq`` 6), 4 fresh z, layers up to 128 px, 4 x 4 windows from 64 px;
    - latent projection (``LatentProjection``; ``--proj``, whose default is a truthy string, so
      the official run always projects) on every fake of the D and G steps, the self-correlation
      fakes, the path-length fakes and the samples (generate.py projects too), per-style mixing
      ``PROJECTION_MIX`` (model.py ``Projection_module``); the disturbance loss uses plain z, as
      officially;
    - the codes come from a GAN inversion of every training image into W+ (``invert_images``,
      invert_gan.py: Adam lr 0.1, 4,002 steps, lr halved every 1,000, LPIPS + MSE, from the mean w,
      stored noise), run at build time on the source's EMA generator and cached
      (``cached_inversion``), so a user brings only images;
    - CDC's anchors (10, every 4th step, N(0, 0.1^2) jitter) and patch D (``methods.cdc_parts``);
      CDC's distance-consistency KL is not used (RSSA drops it).

    Departures, and why:

    - The harness's recipe runs around the step (StyleGAN2's lazy R1 and path length, EMA, Adam);
      the official path-length step reuses the 4 self-correlation z, here it draws its own half
      batch (the shared recipe), projected.
    - Layers, windows and the projection mixing are named relative to the output resolution
      (top / 4 .. top for self-correlation, up to top / 2 for the disturbance loss, mixing per
      octave below the top), so they equal the official values at 256 px and act at the same
      relative depth on the smaller toy backbone.
    - The inversion's LPIPS is the suite's perceptual network's maps under LPIPS's normalised
      distance without its learned layer weights (``perceptual_distance``; the ``lpips`` package is
      not a dependency): VGG16 conv1_1..conv4_3 on real suites, the digits classifier on the toy.
      Images are already at the suite's resolution (invert_gan.py upsamples to 256 px). The
      mean w uses a fixed seed, so the cached codes depend only on their key.
    - The official G (and its EMA) start from the source's ``g_ema``; here G starts from the
      trained ``g`` and the EMA from ``g_ema``, as every method of the harness does (the frozen
      source of the losses and the inverted generator are ``g_ema``, as officially; D from ``d``).
    - Run length and batch are the cell's (``train.steps``, ``train.batch_size``: the suite's, or a
      target's or this entry's own): the README runs 2,002 iterations of batch 4 (``--batch``,
      ``--few_shot_batch``).
    - With a conditional target the patch head ignores labels (CDC's has no label path) and
      anchor steps draw uniform labels.
    - Between anchor steps the D hook returns CDC's patch logits (B, patches), not (B,): the
      shared logistic loss then averages softplus over every patch, as CDC's does; R1's real batch
      gets the per-image mean (``cdc_parts.patch_logits_for_loss``). On a recipe with R1 inside
      the D step (not StyleGAN2's lazy R1) that mean would serve the logistic loss too.
    - Evaluation samples are projected (as generate.py's) but take fresh noise maps, as every
      method's samples do here (generate.py uses the stored ones).
    - train_face_proj.py's disturbance step computes a perturbed z (0.85 of one shared z plus
      0.15 of z_n) and never uses it: both generators see z_n; so does this one.

    Args:
        training_set: the cell's training images and cache folder (``Resource.TRAINING_SET``).
        perceptual: the suite's perceptual network, for the inversion's LPIPS (``Resource.PERCEPTUAL``).
        self_corr_weight: 0.8; 0 turns the loss off.
        dis_corr_weight: 0.4; 0 turns the loss off.
        dis_corr_every: 6 (only when self-correlation is on, as officially; else every step).
        corr_batch: z per correlation loss (``--feat_const_batch`` 4).
        project: the latent projection (``--proj``).
        projection_mix: mixing per octave below the top resolution.
        anchor_every: CDC's anchor steps every n-th step (4); 0 turns anchors and the patch D off.
        n_anchors: 10 (``--n_train``).
        anchor_jitter: 0.1 (``--subspace_std``).
        patch_resolution: output size of the D layer the patch head reads (resolution / 8).
        inversion_steps, inversion_lr, inversion_lr_halve_every, inversion_lpips_weight,
        inversion_mse_weight: ``InversionSettings``; the steps and halvings scale with the budget's
            ``stage_scale`` (``--budget smoke`` shortens the inversion with the stages).
    """

    name = "rssa"
    plot_style = ("#bcbd22", "-", "P")
    summary = "CDC's anchors and patch D + spatial self/disturbance correlation + projection on inverted codes"
    resources = {"training_set": Resource.TRAINING_SET, "perceptual": Resource.PERCEPTUAL}
    unsupported_backbones = {
        "stylegan1": "RSSA projects StyleGAN2's per-layer W+ styles onto inverted codes and reads its layer "
        "outputs and D layers (CDC's patch head); the StyleGAN v1 backbone exposes neither"
    }

    def __init__(
        self,
        source,
        target: TargetSpec,
        training_set: TrainingSet | None = None,
        perceptual: nn.Module | None = None,
        self_corr_weight: float = 0.8,
        dis_corr_weight: float = 0.4,
        dis_corr_every: int = 6,
        corr_batch: int = 4,
        project: bool = True,
        projection_mix: tuple[float, ...] = PROJECTION_MIX,
        anchor_every: int = ANCHOR_EVERY,
        n_anchors: int = N_ANCHORS,
        anchor_jitter: float = ANCHOR_JITTER,
        patch_resolution: int | None = None,
        inversion_steps: int = 4002,
        inversion_lr: float = 0.1,
        inversion_lr_halve_every: int = 1000,
        inversion_lpips_weight: float = 1.0,
        inversion_mse_weight: float = 1.0,
    ):
        super().__init__(source, target)
        # G and D first, in fine-tuning's order: the same seed gives the same networks.
        backbone = source.build_generator(target.label_classes)
        self.D = source.build_discriminator(target.label_classes)
        if not all(0 <= m <= 1 for m in projection_mix):
            raise ValueError(f"projection_mix values must be in [0, 1], got {list(projection_mix)}")
        if min(self_corr_weight, dis_corr_weight) < 0:
            raise ValueError(f"the correlation weights must be >= 0, got {self_corr_weight}, {dis_corr_weight}")
        if dis_corr_every < 1 or corr_batch < 2:
            raise ValueError(f"need dis_corr_every >= 1 and corr_batch >= 2, got {dis_corr_every}, {corr_batch}")
        self.self_corr_weight, self.dis_corr_weight = float(self_corr_weight), float(dis_corr_weight)
        self.dis_corr_every, self.corr_batch = dis_corr_every, corr_batch
        top = source.config.resolution
        self.self_corr_resolutions = (max(4, top // 4), top)
        self.dis_corr_max_resolution, self.dis_corr_window_from = max(4, top // 2), max(8, top // 4)

        projection = None
        if project:
            settings = InversionSettings(
                inversion_steps, inversion_lr, inversion_lr_halve_every, inversion_lpips_weight, inversion_mse_weight
            )
            if training_set is None:
                raise ValueError("the latent projection needs the training images (the runner gives them)")
            if settings.lpips_weight and perceptual is None:
                raise ValueError("the inversion's LPIPS needs a network: name one under the suite's 'perceptual' key")
            if settings.steps < 1 or settings.lr <= 0 or settings.lr_halve_every < 1:
                raise ValueError(f"need inversion steps >= 1, lr > 0 and lr_halve_every >= 1, got {settings}")
            inverter = frozen_reference(source.build_generator(ema=True))
            codes = cached_inversion(inverter, training_set, perceptual, settings.scaled(training_set.stage_scale))
            projection = LatentProjection(codes, projection_weights(source.config, tuple(projection_mix)))
        self.G = ProjectedGenerator(backbone, projection)
        if self.self_corr_weight or self.dis_corr_weight:
            self.G_source = ProjectedGenerator(frozen_reference(source.build_generator(ema=True)), projection)
        self.anchors = AnchorLatents(n_anchors, self.style_dim, anchor_every, anchor_jitter) if anchor_every else None
        self.patch_head = PatchHead(self.D, patch_resolution) if anchor_every else None

    def param_groups(self) -> list[ParamGroup]:
        groups = backbone_param_groups(self.G, self.D)
        if self.patch_head is not None:  # CDC's e_optim: Adam at D's lr and betas
            groups.append(ParamGroup("D", list(self.patch_head.parameters()), 1.0, "D patch head"))
        return groups

    def _patch_step(self, ctx: StepContext) -> bool:
        return self.anchors is not None and not self.anchors.active(ctx.step)

    def _labels(self, n: int, ctx: StepContext, device) -> torch.Tensor | None:
        if not self.target.conditional:
            return None
        return torch.randint(self.target.n_classes, (n,), generator=ctx.generator).to(device)

    # -- the step's hooks ----------------------------------------------------------------------
    def sample_latents(self, batch: Batch | None, ctx: StepContext) -> Latents:
        if self.anchors is None or not self.anchors.active(ctx.step):
            return super().sample_latents(batch, ctx)
        n = batch.images.shape[0]
        return self.anchors.draw(n, ctx.generator, self._labels(n, ctx, self.anchors.anchors.device))

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None, ctx: StepContext) -> torch.Tensor:
        if self._patch_step(ctx):  # ctx.augment: ADA, when a suite turns it on, sees every image D sees
            return patch_logits_for_loss(self.patch_head(self.D, ctx.augment(images)), images)
        return self.D(ctx.augment(images), labels)

    def g_regularizers(self, batch: Batch | None, fakes: Fakes, ctx: StepContext) -> dict[str, torch.Tensor]:
        terms = {}
        device = next(self.G.parameters()).device
        if self.self_corr_weight:
            z = torch.randn(self.corr_batch, self.style_dim, generator=ctx.generator).to(device)
            labels = self._labels(self.corr_batch, ctx, device)
            with torch.no_grad():
                source = self.G_source(z, noise=self.G_source.backbone.stored_noise(), return_layer_outputs=True)[1]
            target = self.G(z, labels, noise=self.G.backbone.stored_noise(), return_layer_outputs=True)[1]
            loss = self_correlation_loss(source, target, self.self_corr_resolutions)
            terms["self_corr"] = self.self_corr_weight * loss
        due = not self.self_corr_weight or ctx.step % self.dis_corr_every == 0
        if self.dis_corr_weight and due:
            z = torch.randn(self.corr_batch, self.style_dim, generator=ctx.generator).to(device)
            labels = self._labels(self.corr_batch, ctx, device)
            G_s, G_t = self.G_source.backbone, self.G.backbone  # plain z, no projection, as officially
            with torch.no_grad():
                source = G_s(z, noise=G_s.stored_noise(), return_layer_outputs=True)[1]
            target = G_t(z, labels, noise=G_t.stored_noise(), return_layer_outputs=True)[1]
            loss = disturbance_correlation_loss(source, target, self.dis_corr_max_resolution, self.dis_corr_window_from)
            terms["dis_corr"] = self.dis_corr_weight * loss
        return terms
