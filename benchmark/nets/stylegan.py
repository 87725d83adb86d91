"""The StyleGAN v1 backbone at a fixed resolution, with rosinality's state-dict layout.

rosinality/style-based-gan-pytorch grows progressively and keeps every resolution's modules in
lists indexed 0..8; a 256 px model is ``step = 6`` of that. Here a network is built for one
resolution only, but its blocks live in ``ModuleDict``s keyed by the *rosinality index*, so the
keys are the same (``generator.progression.6.conv2.conv.weight_orig``, ``from_rgb.2.0.conv.bias``)
and a real checkpoint loads by selecting the keys of the blocks this resolution uses.

Blocks are addressed by resolution, which is how methods name what they freeze:

- G part ``block{r}`` is the synthesis block whose output is r x r (rosinality index log2(r/4));
  ``mapping`` is the style MLP, ``to_rgb`` the final 1x1 conv, ``class_embed`` the label path.
- D part ``block{r}`` is the block whose *input* is r x r (rosinality index 8 - log2(r/4)), so
  ``block4`` is the final 4x4 block; ``from_rgb``, ``linear`` and ``class_projection`` complete D.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from benchmark.nets.backbone import BACKBONES, BackboneDiscriminator, BackboneGenerator
from benchmark.nets.layers import (
    AdaptiveInstanceNorm,
    Blur,
    ConstantInput,
    EqualConv2d,
    EqualLinear,
    FusedDownsample,
    FusedUpsample,
    NoiseInjection,
    PixelNorm,
)

# rosinality's widths: channels[r] is G's output width at r px and D's input width at r px.
ROSINALITY_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
N_ROSINALITY_BLOCKS = 9  # 4 px .. 1024 px


def resolution_index(resolution: int) -> int:
    """rosinality's G progression index of a resolution: 4 px -> 0, 256 px -> 6."""
    index = int(math.log2(resolution)) - 2
    if resolution != 4 * 2**index or not 0 <= index < N_ROSINALITY_BLOCKS:
        raise ValueError(f"resolution must be a power of two from 4 to 1024, got {resolution}")
    return index


@BACKBONES.register()
@dataclass(frozen=True)
class BackboneConfig:
    """Shape of a StyleGAN v1 backbone (registered as ``stylegan1``).

    Its recipe is ``TrainConfig``'s defaults, the StyleGAN v1 fine-tuning recipe of FreezeD and
    MineGAN (R1 every step, mapping network at lr x 0.01, constant EMA decay 0.999).

    Args:
        resolution: output size in pixels (256 for the FFHQ source, 32 for the toy suite).
        style_dim: width of z, w and the mapping MLP (512 in the original).
        n_mlp: number of mapping layers (8 in the original).
        channels: width per resolution; missing resolutions fall back to rosinality's widths.
        image_channels: 3 for RGB, 1 for the grayscale toy digits.
        fused_min_resolution: resolutions from which up/down-sampling uses the fused convs
            (rosinality fuses the 128 px and larger blocks).
    """

    resolution: int = 256
    style_dim: int = 512
    n_mlp: int = 8
    channels: dict[int, int] = field(default_factory=dict)
    image_channels: int = 3
    fused_min_resolution: int = 128

    name: ClassVar[str] = "stylegan1"
    recipe: ClassVar[dict] = {}  # TrainConfig's defaults are this backbone's recipe
    recipe_source: ClassVar[str] = "StyleGAN v1 fine-tuning as FreezeD's and MineGAN's finetune.py run it"

    def __post_init__(self):
        resolution_index(self.resolution)
        object.__setattr__(self, "channels", {int(k): int(v) for k, v in self.channels.items()})
        if self.style_dim <= 0 or self.n_mlp <= 0 or self.image_channels <= 0:
            raise ValueError("style_dim, n_mlp and image_channels must be positive")

    def width(self, resolution: int) -> int:
        return self.channels.get(resolution, ROSINALITY_CHANNELS[resolution])

    @property
    def resolutions(self) -> list[int]:
        """4, 8, ..., resolution."""
        return [4 * 2**i for i in range(resolution_index(self.resolution) + 1)]

    @property
    def n_styles(self) -> int:
        """Style inputs of the synthesis network: one per block (style mixing picks a crossover among them)."""
        return len(self.resolutions)

    def generator(self, n_classes: int = 0) -> StyledGenerator:
        return StyledGenerator(self, n_classes)

    def discriminator(self, n_classes: int = 0) -> Discriminator:
        return Discriminator(self, n_classes)

    @property
    def step(self) -> int:
        """rosinality's ``step`` for this resolution (256 px -> 6)."""
        return resolution_index(self.resolution)

    def to_dict(self) -> dict:
        return {
            "resolution": self.resolution,
            "style_dim": self.style_dim,
            "n_mlp": self.n_mlp,
            "channels": {r: self.width(r) for r in self.resolutions},
            "image_channels": self.image_channels,
            "fused_min_resolution": self.fused_min_resolution,
        }


# --------------------------------------------------------------------------------------------
# Generator


class StyledConvBlock(nn.Module):
    """Two 3x3 convs, each followed by noise, LeakyReLU and AdaIN (rosinality's order)."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, initial: bool, fused: bool):
        super().__init__()
        if initial:
            self.conv1 = ConstantInput(in_ch)
        elif fused:
            self.conv1 = nn.Sequential(FusedUpsample(in_ch, out_ch, 3, padding=1), Blur(out_ch))
        else:
            self.conv1 = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), EqualConv2d(in_ch, out_ch, 3, padding=1), Blur(out_ch)
            )
        self.initial = initial
        self.noise1 = NoiseInjection(out_ch)
        self.adain1 = AdaptiveInstanceNorm(out_ch, style_dim)
        self.lrelu1 = nn.LeakyReLU(0.2)
        self.conv2 = EqualConv2d(out_ch, out_ch, 3, padding=1)
        self.noise2 = NoiseInjection(out_ch)
        self.adain2 = AdaptiveInstanceNorm(out_ch, style_dim)
        self.lrelu2 = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor | None, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        out = self.conv1(style.shape[0]) if self.initial else self.conv1(x)
        out = self.adain1(self.lrelu1(self.noise1(out, noise)), style)
        out = self.conv2(out)
        return self.adain2(self.lrelu2(self.noise2(out, noise)), style)


class Synthesis(nn.Module):
    """rosinality's ``Generator``: progression blocks 0..step and the final to_rgb."""

    def __init__(self, config: BackboneConfig):
        super().__init__()
        self.config = config
        self.progression = nn.ModuleDict()
        for r in config.resolutions:
            i = resolution_index(r)
            in_ch = config.width(r) if r == 4 else config.width(r // 2)
            fused = r >= config.fused_min_resolution
            self.progression[str(i)] = StyledConvBlock(in_ch, config.width(r), config.style_dim, r == 4, fused)
        self.to_rgb = nn.ModuleDict(
            {str(config.step): EqualConv2d(config.width(config.resolution), config.image_channels, 1)}
        )

    def forward(
        self,
        styles: Sequence[torch.Tensor],
        noise: Sequence[torch.Tensor],
        crossover: int | torch.Tensor | None = None,
        return_block_outputs: bool = False,
    ):
        """Run the blocks; with two styles, blocks 0..crossover use the first, the rest the second.

        ``crossover`` may be a 0-d integer tensor on the device: the style is then selected without
        a Python branch (the same values), so a compiled generator runs one graph for every crossover.
        """
        out = None
        block_outputs = []
        for i, block in enumerate(self.progression.values()):
            if len(styles) == 1 or crossover is None:
                style = styles[0]
            elif isinstance(crossover, torch.Tensor):
                style = torch.where(crossover >= i, styles[0], styles[1])
            else:
                style = styles[0] if i <= crossover else styles[1]
            out = block(out, style, noise[i])
            block_outputs.append(out)
        image = self.to_rgb[str(self.config.step)](out)
        return (image, block_outputs) if return_block_outputs else image

    def from_ws(self, ws: torch.Tensor, noise: Sequence[torch.Tensor]) -> torch.Tensor:
        """Images from per-block styles ws (B, n_blocks, style_dim): block i takes ws[:, i]."""
        out = None
        for i, block in enumerate(self.progression.values()):
            out = block(out, ws[:, i], noise[i])
        return self.to_rgb[str(self.config.step)](out)


class StyledGenerator(BackboneGenerator):
    """z -> PixelNorm -> mapping MLP -> w -> synthesis; optional zero-initialised class embedding.

    The class embedding is added to z before the mapping network and starts at zero, so a
    conditional generator built from an unconditional source gives the source's images at step 0.

    Args:
        config: the backbone shape.
        n_classes: 0 for an unconditional generator, else the number of target classes.
    """

    def __init__(self, config: BackboneConfig, n_classes: int = 0):
        super().__init__()
        self.config = config
        self.n_classes = n_classes
        self.generator = Synthesis(config)
        layers: list[nn.Module] = [PixelNorm()]
        for _ in range(config.n_mlp):
            layers += [EqualLinear(config.style_dim, config.style_dim), nn.LeakyReLU(0.2)]
        self.style = nn.Sequential(*layers)
        if n_classes:
            self.class_embed = nn.Embedding(n_classes, config.style_dim)
            nn.init.zeros_(self.class_embed.weight)

    def make_noise(self, batch: int, device=None, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """One (B, 1, r, r) noise map per block, shared by its two convs (as in rosinality)."""
        return [torch.randn(batch, 1, r, r, device=device, generator=generator) for r in self.config.resolutions]

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        noise: Sequence[torch.Tensor] | None = None,
        mix_z: torch.Tensor | None = None,
        crossover: int | torch.Tensor | None = None,
        return_block_outputs: bool = False,
    ):
        """Images in about [-1, 1] from z (B, style_dim).

        Args:
            labels: (B,) class indices, required when the generator is conditional.
            noise: per-block noise maps; drawn from the global RNG when omitted.
            mix_z: a second latent for style mixing; blocks after ``crossover`` use its style.
            crossover: last block index that uses z's style (an int, or a 0-d integer tensor);
                required with ``mix_z``.
        """
        styles = [self.mapping(z, labels)]
        if mix_z is not None:
            if crossover is None:
                raise ValueError("style mixing needs a crossover block index")
            styles.append(self.mapping(mix_z, labels))
        if noise is None:
            noise = self.make_noise(z.shape[0], z.device)
        return self.generator(styles, noise, crossover, return_block_outputs)

    def styles(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        mix_z: torch.Tensor | None = None,
        crossover: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-block styles ws (B, n_styles, style_dim): z's w for blocks 0..crossover, mix_z's after
        (the same styles ``forward`` uses); with ``synthesis`` it gives the path-length penalty its w."""
        w = self.mapping(z, labels)
        ws = w[:, None].expand(-1, self.config.n_styles, -1)
        if mix_z is None:
            return ws
        first = torch.arange(self.config.n_styles, device=z.device) <= torch.as_tensor(crossover, device=z.device)
        return torch.where(first[None, :, None], ws, self.mapping(mix_z, labels)[:, None])

    def synthesis(self, ws: torch.Tensor, noise: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Images from per-block styles ws (B, n_styles, style_dim); noise drawn when omitted."""
        if noise is None:
            noise = self.make_noise(ws.shape[0], ws.device)
        return self.generator.from_ws(ws, noise)

    # -- addressing parts for freezing ---------------------------------------------------------
    def parts(self) -> dict[str, nn.Module]:
        """Named parts: ``mapping``, ``block4`` .. ``block{resolution}``, ``to_rgb``, ``class_embed``."""
        parts: dict[str, nn.Module] = {"mapping": self.style}
        for r in self.config.resolutions:
            parts[f"block{r}"] = self.generator.progression[str(resolution_index(r))]
        parts["to_rgb"] = self.generator.to_rgb
        if self.n_classes:
            parts["class_embed"] = self.class_embed
        return parts


# --------------------------------------------------------------------------------------------
# Discriminator


def _d_index(resolution: int) -> int:
    """rosinality's D progression index of the block whose input is ``resolution`` px."""
    return N_ROSINALITY_BLOCKS - 1 - resolution_index(resolution)


class ConvBlock(nn.Module):
    """D block: conv in->out at full resolution, then a downsampling conv (or the final 4x4 conv)."""

    def __init__(self, in_ch: int, out_ch: int, final: bool = False, fused: bool = False):
        super().__init__()
        self.conv1 = nn.Sequential(EqualConv2d(in_ch, out_ch, 3, padding=1), nn.LeakyReLU(0.2))
        if final:
            self.conv2 = nn.Sequential(EqualConv2d(out_ch, out_ch, 4, padding=0), nn.LeakyReLU(0.2))
        elif fused:
            self.conv2 = nn.Sequential(Blur(out_ch), FusedDownsample(out_ch, out_ch, 3, padding=1), nn.LeakyReLU(0.2))
        else:
            self.conv2 = nn.Sequential(
                Blur(out_ch), EqualConv2d(out_ch, out_ch, 3, padding=1), nn.AvgPool2d(2), nn.LeakyReLU(0.2)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


def minibatch_stddev(x: torch.Tensor) -> torch.Tensor:
    """Append one channel: the mean over (C, H, W) of the per-position std over the whole batch."""
    std = torch.sqrt(x.var(0, unbiased=False) + 1e-8).mean()
    return torch.cat([x, std.expand(x.shape[0], 1, x.shape[2], x.shape[3])], 1)


class Discriminator(BackboneDiscriminator):
    """rosinality's ``Discriminator(from_rgb_activate=True)`` at one resolution, plus a projection head.

    Args:
        config: the backbone shape.
        n_classes: 0 for unconditional; else a zero-initialised projection embedding
            (Miyato & Koyama 2018) adds <embed(y), h> to the logit, so the source's scores are
            unchanged at step 0.
    """

    def __init__(self, config: BackboneConfig, n_classes: int = 0):
        super().__init__()
        self.config = config
        self.n_classes = n_classes
        top = config.resolution
        from_rgb = nn.Sequential(EqualConv2d(config.image_channels, config.width(top), 1), nn.LeakyReLU(0.2))
        self.from_rgb = nn.ModuleDict({str(_d_index(top)): from_rgb})
        self.progression = nn.ModuleDict()
        for r in reversed(config.resolutions):
            if r == 4:
                block = ConvBlock(config.width(4) + 1, config.width(4), final=True)
            else:
                block = ConvBlock(config.width(r), config.width(r // 2), fused=r >= config.fused_min_resolution)
            self.progression[str(_d_index(r))] = block
        self.linear = EqualLinear(config.width(4), 1)
        if n_classes:
            self.class_projection = nn.Embedding(n_classes, config.width(4))
            nn.init.zeros_(self.class_projection.weight)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The final feature h (B, C) and each block's output keyed by the block's input resolution."""
        out = self.from_rgb[str(_d_index(self.config.resolution))](x)
        block_outputs: dict[int, torch.Tensor] = {}
        for r in reversed(self.config.resolutions):
            if r == 4:
                out = minibatch_stddev(out)
            out = self.progression[str(_d_index(r))](out)
            block_outputs[r] = out
        return out.flatten(1), block_outputs

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h)

    def parts(self) -> dict[str, nn.Module]:
        """Named parts: ``from_rgb``, ``block{resolution}`` .. ``block4`` (by input size), ``linear``."""
        parts: dict[str, nn.Module] = {"from_rgb": self.from_rgb}
        for r in reversed(self.config.resolutions):
            parts[f"block{r}"] = self.progression[str(_d_index(r))]
        parts["linear"] = self.linear
        if self.n_classes:
            parts["class_projection"] = self.class_projection
        return parts
