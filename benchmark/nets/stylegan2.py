"""The StyleGAN2 backbone with the state-dict layout of rosinality/stylegan2-pytorch ``model.py``.

rosinality's ``Generator(size, style_dim, n_mlp, channel_multiplier)`` and ``Discriminator(size,
channel_multiplier)`` are rebuilt module for module, so their checkpoints (train.py's ``g``,
``g_ema``, ``d``; convert_weight.py's ``g_ema``) load without renaming, and the parameters are
created in the original's order (``torch.manual_seed(s)`` then either network gives the same
initial weights). The CUDA ops of the original are replaced by their pure-torch formulas
(``benchmark.nets.layers2``), which autograd differentiates twice.

Parts are addressed by resolution, as in the v1 backbone (``stylegan.py``), so methods name what
they freeze the same way for both:

- G part ``block{r}`` holds the two convs that produce r x r features and that resolution's
  to_rgb (NVIDIA's ``SynthesisBlock`` b{r}: conv0, conv1, torgb); ``block4`` is the constant
  input, ``conv1`` and ``to_rgb1``. ``mapping`` is the style MLP; ``to_rgb`` the top resolution's
  to_rgb (the same module as in the top block); ``class_embed`` the label path.
- D part ``block{r}`` is the block whose *input* is r x r: the ResBlocks for r >= 8, and for r = 4
  minibatch stddev + ``final_conv`` + ``final_linear.0``; ``from_rgb`` is ``convs.0``, ``linear``
  is ``final_linear.1``, ``class_projection`` the label path.

The wrapper modules that ``parts()`` returns are built on each call and never assigned to the
network, so the state-dict keys stay rosinality's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from benchmark.nets.backbone import BACKBONES, BackboneDiscriminator, BackboneGenerator
from benchmark.nets.layers2 import (
    ConstantInput,
    ConvLayer,
    EqualLinear,
    PixelNorm,
    ResBlock,
    StyledConv,
    ToRGB,
)
from benchmark.nets.stylegan import resolution_index

# rosinality's Generator.channels / Discriminator channels: 512 up to 32 px, then base * channel_multiplier.
_BASE_CHANNELS = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def rosinality_width(resolution: int, channel_multiplier: int) -> int:
    """The width rosinality gives ``resolution`` px (512 up to 32 px; 256 * cm at 64 px, ... 16 * cm at 1024)."""
    return 512 if resolution <= 32 else _BASE_CHANNELS[resolution] * channel_multiplier


@BACKBONES.register()
@dataclass(frozen=True)
class StyleGAN2Config:
    """Shape of a StyleGAN2 backbone (rosinality's Generator and Discriminator arguments), registered
    as ``stylegan2``.

    Its recipe is rosinality stylegan2-pytorch train.py's, which CDC, RSSA, AdAM, RICK and FreezeG
    fine-tune with: non-saturating logistic loss; lazy R1 (gamma 10 every 16 D steps, scaled by 16)
    and path-length regularization (weight 2 every 4 G steps on half the batch, mean decay 0.01),
    each in its own optimizer step with Adam's lr and betas scaled by every / (every + 1); Adam lr
    0.002, betas (0, 0.99); style mixing 0.9; EMA decay 0.5 ** (32 / 10,000) ~ 0.99778 per step
    (``accum``) from step 0. The mapping network's 0.01 lives in its parametrization (``lr_mlp``),
    so the optimizer's ``mapping_lr_mult`` is 1.

    Args:
        resolution: output size in pixels, a power of two from 4 to 1024 (``size``).
        style_dim: width of z, w and the mapping MLP (512 in every released model).
        n_mlp: mapping layers (8; NVIDIA's ``auto`` config uses 2).
        channel_multiplier: 2 for rosinality's and NVIDIA's config-f models, 1 for NVIDIA's ``paper256``.
        channels: width per resolution for tiny test and toy nets; missing resolutions fall back to
            rosinality's widths for ``channel_multiplier``.
        image_channels: channels of to_rgb's output and from_rgb's input (3; 1 for the grayscale toy).
        mbstd_group: minibatch-stddev group size (rosinality's ``stddev_group`` 4; NVIDIA's paper256 uses 8).
        lr_mlp: the mapping network's learning-rate multiplier (rosinality's ``lr_mlp``).
    """

    name: ClassVar[str] = "stylegan2"
    recipe: ClassVar[dict] = {
        "lr": 0.002,
        "betas": (0.0, 0.99),
        "mapping_lr_mult": 1.0,  # lr_mlp (0.01) is applied inside EqualLinear, as rosinality does
        "r1_gamma": 10.0,
        "r1_every": 16,  # d_reg_every
        "lazy_regularization": True,
        "pl_weight": 2.0,  # path_regularize
        "pl_every": 4,  # g_reg_every
        "pl_batch_shrink": 2,  # path_batch_shrink
        "pl_decay": 0.01,
        "mixing_prob": 0.9,
        "ema_decay": 0.5 ** (32 / 10_000),  # accum = 0.5 ** (32 / (10 * 1000))
        "ema_rampup": False,
    }
    recipe_source: ClassVar[str] = "rosinality stylegan2-pytorch train.py"

    resolution: int = 256
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channels: dict[int, int] = field(default_factory=dict)
    image_channels: int = 3
    mbstd_group: int = 4
    lr_mlp: float = 0.01

    def __post_init__(self):
        resolution_index(self.resolution)
        object.__setattr__(self, "channels", {int(k): int(v) for k, v in self.channels.items()})
        if min(self.style_dim, self.n_mlp, self.image_channels, self.channel_multiplier, self.mbstd_group) <= 0:
            raise ValueError("style_dim, n_mlp, image_channels, channel_multiplier and mbstd_group must be positive")
        if self.lr_mlp <= 0:
            raise ValueError(f"lr_mlp must be positive, got {self.lr_mlp}")
        if any(v <= 0 for v in self.channels.values()):
            raise ValueError(f"channel widths must be positive, got {self.channels}")

    def width(self, resolution: int) -> int:
        return self.channels.get(resolution, rosinality_width(resolution, self.channel_multiplier))

    @property
    def resolutions(self) -> list[int]:
        """4, 8, ..., resolution."""
        return [4 * 2**i for i in range(resolution_index(self.resolution) + 1)]

    @property
    def n_styles(self) -> int:
        """Style inputs of the synthesis network (rosinality's ``n_latent``): 2 per resolution, 14 at 256 px."""
        return 2 * len(self.resolutions)

    @property
    def n_noises(self) -> int:
        """Noise inputs (rosinality's ``num_layers``): one per StyledConv, 13 at 256 px."""
        return 2 * len(self.resolutions) - 1

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "resolution": self.resolution,
            "style_dim": self.style_dim,
            "n_mlp": self.n_mlp,
            "channel_multiplier": self.channel_multiplier,
            "channels": {r: self.width(r) for r in self.resolutions},
            "image_channels": self.image_channels,
            "mbstd_group": self.mbstd_group,
            "lr_mlp": self.lr_mlp,
        }

    def generator(self, n_classes: int = 0) -> StyleGAN2Generator:
        return StyleGAN2Generator(self, n_classes)

    def discriminator(self, n_classes: int = 0) -> StyleGAN2Discriminator:
        return StyleGAN2Discriminator(self, n_classes)


# --------------------------------------------------------------------------------------------
# Generator


class StyleGAN2Generator(BackboneGenerator):
    """z -> PixelNorm -> mapping MLP -> w -> n_styles copies -> synthesis; rosinality's ``Generator``.

    Synthesis: the constant 4x4 input, ``conv1`` (style 0) and ``to_rgb1`` (style 1); then per
    resolution r >= 8 an upsampling StyledConv, a StyledConv and a ToRGB whose image is added to
    the upsampled image of the resolution below (the skip architecture). Each StyledConv takes one
    noise map, n_noises in all.

    The class embedding (conditional G only) is added to z before the mapping network and starts
    at zero, as in the v1 ``StyledGenerator``, so a conditional generator built from an
    unconditional source gives the source's images at step 0; its ``class_embed.*`` keys are not
    in rosinality checkpoints.

    Args:
        config: the backbone shape.
        n_classes: 0 for an unconditional generator, else the number of target classes.
    """

    def __init__(self, config: StyleGAN2Config, n_classes: int = 0):
        super().__init__()
        self.config = config
        self.n_classes = n_classes
        sd = config.style_dim
        # Modules are created in rosinality's order, so the same seed gives the same initial weights.
        layers: list[nn.Module] = [PixelNorm()]
        layers += [EqualLinear(sd, sd, lr_mul=config.lr_mlp, activation=True) for _ in range(config.n_mlp)]
        self.style = nn.Sequential(*layers)
        width4 = config.width(4)
        self.input = ConstantInput(width4)
        self.conv1 = StyledConv(width4, width4, 3, sd)
        self.to_rgb1 = ToRGB(width4, sd, config.image_channels, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(config.n_noises):
            size = 4 * 2 ** ((i + 1) // 2)  # 4, 8, 8, 16, 16, ...
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, size, size))
        in_channels = width4
        for r in config.resolutions[1:]:
            out_channels = config.width(r)
            self.convs.append(StyledConv(in_channels, out_channels, 3, sd, upsample=True))
            self.convs.append(StyledConv(out_channels, out_channels, 3, sd))
            self.to_rgbs.append(ToRGB(out_channels, sd, config.image_channels))
            in_channels = out_channels
        if n_classes:
            self.class_embed = nn.Embedding(n_classes, sd)
            nn.init.zeros_(self.class_embed.weight)

    # -- latents ---------------------------------------------------------------------------------
    def mean_latent(
        self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The mean w (1, style_dim) of n random z (rosinality's ``mean_latent``), for truncation."""
        z = torch.randn(n, self.config.style_dim, generator=generator).to(self.input.input.device)
        return self.mapping(z, labels).mean(0, keepdim=True)

    def styles(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        mix_z: torch.Tensor | None = None,
        crossover: int | torch.Tensor | None = None,
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The synthesis inputs ws (B, n_styles, style_dim), rosinality's ``latent``.

        Args:
            mix_z: a second latent for style mixing: styles after ``crossover`` take its w.
            crossover: the last style index that takes z's w (rosinality's ``inject_index - 1``), an int
                or a 0-d integer tensor; required with ``mix_z``. A tensor is applied with ``torch.where``,
                without a Python branch, so a compiled generator runs one graph for every crossover.
            truncation: psi; below 1, each w moves towards ``truncation_latent`` (before mixing, as
                in the original).
            truncation_latent: the centre for truncation, e.g. ``mean_latent(4096)``.
        """
        ws = [self.mapping(z, labels)]
        if mix_z is not None:
            if crossover is None:
                raise ValueError("style mixing needs a crossover style index")
            ws.append(self.mapping(mix_z, labels))
        if truncation != 1:
            if truncation_latent is None:
                raise ValueError("truncation needs a truncation_latent (e.g. mean_latent(4096))")
            ws = [truncation_latent + truncation * (w - truncation_latent) for w in ws]
        n = self.config.n_styles
        if len(ws) == 1:
            return ws[0][:, None].expand(-1, n, -1)
        first = torch.arange(n, device=ws[0].device) <= crossover  # (n_styles,) True where z's w is used
        return torch.where(first[None, :, None], ws[0][:, None], ws[1][:, None])

    def make_noise(self, batch: int, device=None, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """One (B, 1, r, r) noise map per StyledConv, n_noises of them (4, 8, 8, 16, 16, ... px)."""
        device = self.input.input.device if device is None else device
        sizes = [4 * 2 ** ((i + 1) // 2) for i in range(self.config.n_noises)]
        return [torch.randn(batch, 1, s, s, device=device, generator=generator) for s in sizes]

    def stored_noise(self) -> list[torch.Tensor]:
        """The checkpoint's fixed noise maps ``noises.noise_i`` (1, 1, r, r): rosinality's randomize_noise=False."""
        return [getattr(self.noises, f"noise_{i}") for i in range(self.config.n_noises)]

    # -- synthesis -------------------------------------------------------------------------------
    def synthesis(
        self,
        ws: torch.Tensor,
        noise: Sequence[torch.Tensor | None] | None = None,
        return_block_outputs: bool = False,
        return_layer_outputs: bool = False,
    ):
        """Images (B, image_channels, r, r) from ws (B, n_styles, style_dim).

        Args:
            noise: n_noises maps broadcastable to (B, 1, r, r); None draws fresh noise in every
                layer (rosinality's randomize_noise=True).
            return_block_outputs: also return each resolution's features after its last conv
                (4 px: ``conv1``; r px: ``convs[2k + 1]``), as the v1 backbone does.
            return_layer_outputs: also return every StyledConv's output (after noise, bias and
                activation) in order: ``conv1``, ``convs.0``, ``convs.1``, ... (n_noises tensors).
                This is the ``feat_list`` of CDC's model.py (``return_feats=True``), whose distance
                consistency loss picks one of indices 1 .. n_noises - 1 per sample.

        Returns:
            images, or (images, block_outputs), (images, layer_outputs) or
            (images, block_outputs, layer_outputs) for the lists requested.
        """
        if noise is None:
            noise = [None] * self.config.n_noises
        elif len(noise) != self.config.n_noises:
            raise ValueError(f"expected {self.config.n_noises} noise maps (one per StyledConv), got {len(noise)}")
        out = self.conv1(self.input(ws.shape[0]), ws[:, 0], noise[0])
        layer_outputs, block_outputs = [out], [out]
        skip = self.to_rgb1(out, ws[:, 1])
        for k, to_rgb in enumerate(self.to_rgbs):
            i = 2 * k + 1  # style and noise index of the block's first conv
            out = self.convs[2 * k](out, ws[:, i], noise[i])
            layer_outputs.append(out)
            out = self.convs[2 * k + 1](out, ws[:, i + 1], noise[i + 1])
            layer_outputs.append(out)
            block_outputs.append(out)
            skip = to_rgb(out, ws[:, i + 2], skip)
        extras = ([block_outputs] if return_block_outputs else []) + ([layer_outputs] if return_layer_outputs else [])
        return (skip, *extras) if extras else skip

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        noise: Sequence[torch.Tensor | None] | None = None,
        mix_z: torch.Tensor | None = None,
        crossover: int | torch.Tensor | None = None,
        return_block_outputs: bool = False,
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
        return_layer_outputs: bool = False,
    ):
        """Images in about [-1, 1] from z (B, style_dim): ``synthesis(styles(z, ...), noise, ...)``.

        rosinality's ``g([z], noise=noise, randomize_noise=False)`` is ``G(z, noise=noise)``, and
        ``g([z, z2], inject_index=k)`` is ``G(z, mix_z=z2, crossover=k - 1)``. See ``styles`` and
        ``synthesis`` for the arguments.
        """
        ws = self.styles(z, labels, mix_z, crossover, truncation, truncation_latent)
        return self.synthesis(ws, noise, return_block_outputs, return_layer_outputs)

    # -- addressing parts for freezing -----------------------------------------------------------
    def parts(self) -> dict[str, nn.Module]:
        """Named parts: ``mapping``, ``block4`` .. ``block{resolution}``, ``to_rgb``, ``class_embed``.

        ``block4`` holds ``input``, ``conv1`` and ``to_rgb``; ``block{r}`` holds ``conv0`` (upsampling),
        ``conv1`` and ``to_rgb``. ``to_rgb`` is also inside the top block.
        """
        parts: dict[str, nn.Module] = {"mapping": self.style}
        parts["block4"] = nn.ModuleDict({"input": self.input, "conv1": self.conv1, "to_rgb": self.to_rgb1})
        for k, r in enumerate(self.config.resolutions[1:]):
            parts[f"block{r}"] = nn.ModuleDict(
                {"conv0": self.convs[2 * k], "conv1": self.convs[2 * k + 1], "to_rgb": self.to_rgbs[k]}
            )
        parts["to_rgb"] = self.to_rgbs[-1] if len(self.to_rgbs) else self.to_rgb1
        if self.n_classes:
            parts["class_embed"] = self.class_embed
        return parts


# --------------------------------------------------------------------------------------------
# Discriminator


def minibatch_stddev(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Append one channel: per group of samples, the mean over (C, H, W) of the std over the group.

    rosinality's grouping: ``x.view(group, -1, ...)`` puts sample b in group b % (B / group), and
    the group is min(B, group_size); B must be a multiple of it.
    """
    batch, channels, height, width = x.shape
    group = min(batch, group_size)
    if batch % group:
        raise ValueError(f"minibatch stddev: batch {batch} is not a multiple of the group size {group}")
    std = x.view(group, -1, 1, channels, height, width)
    std = torch.sqrt(std.var(0, unbiased=False) + 1e-8)
    std = std.mean([2, 3, 4], keepdim=True).squeeze(2)  # (B / group, 1, 1, 1)
    return torch.cat([x, std.repeat(group, 1, height, width)], 1)


class StyleGAN2Discriminator(BackboneDiscriminator):
    """rosinality's residual ``Discriminator``, plus a projection head when conditional.

    ``convs.0`` is a 1x1 ConvLayer from the image, ``convs.1..`` ResBlocks down to 4 px, then
    minibatch stddev, ``final_conv`` (3x3) and ``final_linear`` (an EqualLinear with LeakyReLU to
    width(4), then one to 1). The logits are (B,) (the original returns (B, 1)).

    Args:
        config: the backbone shape.
        n_classes: 0 for unconditional; else a zero-initialised projection embedding
            (Miyato & Koyama 2018) adds <embed(y), h> to the logit, as the v1 ``Discriminator``
            does, so the source's scores are unchanged at step 0.
    """

    def __init__(self, config: StyleGAN2Config, n_classes: int = 0):
        super().__init__()
        self.config = config
        self.n_classes = n_classes
        convs: list[nn.Module] = [ConvLayer(config.image_channels, config.width(config.resolution), 1)]
        for r in reversed(config.resolutions[1:]):
            convs.append(ResBlock(config.width(r), config.width(r // 2)))
        self.convs = nn.Sequential(*convs)
        width4 = config.width(4)
        self.final_conv = ConvLayer(width4 + 1, width4, 3)
        self.final_linear = nn.Sequential(EqualLinear(width4 * 4 * 4, width4, activation=True), EqualLinear(width4, 1))
        if n_classes:
            self.class_projection = nn.Embedding(n_classes, width4)
            nn.init.zeros_(self.class_projection.weight)

    def _block_index(self, resolution: int) -> int:
        """Index in ``convs`` of the ResBlock whose input is ``resolution`` px (the top one is 1)."""
        return resolution_index(self.config.resolution) - resolution_index(resolution) + 1

    def features(self, x: torch.Tensor, return_layer_outputs: bool = False):
        """The penultimate feature h (B, width(4)), the output of ``final_linear.0``, and each block's
        output keyed by the block's input resolution ({top: (B, C, top/2, top/2), ..., 8: (B, C, 4, 4),
        4: h}).

        Args:
            return_layer_outputs: also return every conv layer's output, in order, keyed ``from_rgb``,
                ``block{r}.conv1``, ``block{r}.conv2`` (the downsampling conv, before the skip is added),
                ..., ``block4.final_conv``: the ``feat`` list of CDC's model.py Discriminator. CDC's patch
                discriminator (``Patch_Discriminator``, ``--highp 1``) scores ``block64.conv2`` of a 256 px
                D (512 channels, 32 x 32) with an extra ConvLayer(512, 1, 3).

        Returns:
            (h, block_outputs), or (h, block_outputs, layer_outputs).
        """
        out = self.convs[0](x)
        layer_outputs = {"from_rgb": out}
        block_outputs: dict[int, torch.Tensor] = {}
        for r in reversed(self.config.resolutions[1:]):
            block = self.convs[self._block_index(r)]
            # ResBlock.forward, spelled out to keep its two convs' outputs (the same operations).
            layer_outputs[f"block{r}.conv1"] = hidden = block.conv1(out)
            layer_outputs[f"block{r}.conv2"] = hidden = block.conv2(hidden)
            out = (hidden + block.skip(out)) / math.sqrt(2)
            block_outputs[r] = out
        out = self.final_conv(minibatch_stddev(out, self.config.mbstd_group))
        layer_outputs["block4.final_conv"] = out
        h = self.final_linear[0](out.flatten(1))
        block_outputs[4] = h
        return (h, block_outputs, layer_outputs) if return_layer_outputs else (h, block_outputs)

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        """(B, 1) from h: ``final_linear.1``."""
        return self.final_linear[1](h)

    def parts(self) -> dict[str, nn.Module]:
        """Named parts: ``from_rgb``, ``block{resolution}`` .. ``block4`` (by input size), ``linear``,
        ``class_projection``; ``block4`` holds ``final_conv`` and ``final_linear`` (its first layer)."""
        parts: dict[str, nn.Module] = {"from_rgb": self.convs[0]}
        for r in reversed(self.config.resolutions[1:]):
            parts[f"block{r}"] = self.convs[self._block_index(r)]
        parts["block4"] = nn.ModuleDict({"final_conv": self.final_conv, "final_linear": self.final_linear[0]})
        parts["linear"] = self.final_linear[1]
        if self.n_classes:
            parts["class_projection"] = self.class_projection
        return parts
