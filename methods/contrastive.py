"""Barlow Twins on discriminator features, with its two augmentation pipelines as batched torch ops.

Hyper-Modulation (hecoding/Hyper-Modulation barlow_twins.py) adds a Barlow Twins loss (Zbontar et
al. 2021) on D's final features of two augmented views of each real and each fake batch, with no
projector: BatchNorm1d(affine=False) on each view's features, then
sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2 of their cross-correlation C.

The official views come from kornia (``DiffTransform``); here the same steps are written with
torch ops on the batch, and every random draw comes from a given ``torch.Generator`` (the
harness's training RNG), so runs are reproducible and resumable:

- random resized crop to the input size (area 0.08-1, aspect 3/4-4/3, bicubic) and a
  horizontal flip (p 0.5), as one affine resampling;
- colour jitter (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1; p 0.8), the four
  adjustments in a random order per call, each as torchvision defines it (hue through HSV);
- grayscale (p 0.2);
- Gaussian blur, 3x3, sigma 1.05 (p 0.5 in the first view, 0.1 in the second);
- solarize with a threshold drawn from [0, 0.5] (p 0 in the first view, 0.2 in the second).

Single-channel images (the toy digits) are already gray: saturation, hue and grayscale leave
them unchanged, and brightness, contrast, crop, flip, blur and solarize apply as to RGB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, off_diagonal_weight: float = 5e-3) -> torch.Tensor:
    """Barlow Twins on (N, D) features: BatchNorm1d(affine=False) in training mode, then the loss."""
    n = z1.shape[0]
    z1 = F.batch_norm(z1, None, None, training=True, eps=1e-5)
    z2 = F.batch_norm(z2, None, None, training=True, eps=1e-5)
    c = z1.T @ z2 / n
    diagonal = torch.diagonal(c)
    on_diagonal = (diagonal - 1).pow(2).sum()
    off_diagonal = c.pow(2).sum() - diagonal.pow(2).sum()
    return on_diagonal + off_diagonal_weight * off_diagonal


@dataclass(frozen=True)
class ViewAugmentation:
    """One of the two asymmetric views (BYOL's recipe, as in the official ``DiffTransform``)."""

    blur_p: float
    solarize_p: float
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_sigma: float = 1.05
    solarize_max_threshold: float = 0.5


FIRST_VIEW = ViewAugmentation(blur_p=0.5, solarize_p=0.0)
SECOND_VIEW = ViewAugmentation(blur_p=0.1, solarize_p=0.2)


def barlow_views(images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The two augmented views of a batch of images in [-1, 1]."""
    return augment(images, FIRST_VIEW, generator), augment(images, SECOND_VIEW, generator)


def augment(images: torch.Tensor, view: ViewAugmentation, generator: torch.Generator) -> torch.Tensor:
    """One augmented view of images in [-1, 1] (B, C, H, W), C = 1 or 3; returns [-1, 1]."""
    draw = _Draws(generator, images.device)
    x = (images + 1) / 2
    x = _resized_crop_and_flip(x, view, draw)
    x = _where(draw(len(x)) < view.jitter_p, _color_jitter(x, view.jitter, draw), x)
    x = _where(draw(len(x)) < view.grayscale_p, _grayscale(x).expand_as(x), x)
    x = _where(draw(len(x)) < view.blur_p, _gaussian_blur(x, view.blur_sigma), x)
    threshold = draw(len(x))[:, None, None, None] * view.solarize_max_threshold
    x = _where(draw(len(x)) < view.solarize_p, torch.where(x < threshold, x, 1 - x), x)
    return x * 2 - 1


class _Draws:
    """Random draws from the training generator (on its own device), moved to the images' device."""

    def __init__(self, generator: torch.Generator, device: torch.device):
        self.generator, self.device = generator, device

    def __call__(self, n: int) -> torch.Tensor:
        """n uniform draws in [0, 1)."""
        return torch.rand(n, generator=self.generator, device=self.generator.device).to(self.device)

    def permutation(self, n: int) -> list[int]:
        return torch.randperm(n, generator=self.generator, device=self.generator.device).tolist()


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask[:, None, None, None], a, b)


def _resized_crop_and_flip(x: torch.Tensor, view: ViewAugmentation, draw: _Draws) -> torch.Tensor:
    n = len(x)
    lo, hi = view.crop_scale
    area = lo + (hi - lo) * draw(n)
    log_lo, log_hi = math.log(view.crop_ratio[0]), math.log(view.crop_ratio[1])
    ratio = torch.exp(log_lo + (log_hi - log_lo) * draw(n))
    width = torch.sqrt(area * ratio).clamp(max=1)  # fractions of the image side
    height = torch.sqrt(area / ratio).clamp(max=1)
    center_x = (width / 2 + (1 - width) * draw(n)) * 2 - 1  # in grid coordinates [-1, 1]
    center_y = (height / 2 + (1 - height) * draw(n)) * 2 - 1
    flip = torch.where(draw(n) < view.flip_p, -1.0, 1.0)
    zero = torch.zeros_like(width)
    theta = torch.stack([torch.stack([width * flip, zero, center_x], 1), torch.stack([zero, height, center_y], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bicubic", padding_mode="reflection", align_corners=False).clamp(0, 1)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luma (ITU-R 601, as torchvision)."""
    if x.shape[1] == 1:
        return x
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor * a + (1 - factor) * b).clamp(0, 1)


def _color_jitter(x: torch.Tensor, strengths: tuple[float, float, float, float], draw: _Draws) -> torch.Tensor:
    n = len(x)
    brightness, contrast, saturation, hue = strengths

    def factor(strength: float) -> torch.Tensor:
        return (1 - strength + 2 * strength * draw(n))[:, None, None, None]

    def adjust(op: int, x: torch.Tensor) -> torch.Tensor:
        if op == 0:
            return (x * factor(brightness)).clamp(0, 1)
        if op == 1:
            return _blend(x, _grayscale(x).mean((1, 2, 3), keepdim=True), factor(contrast))
        if x.shape[1] == 1:  # gray images have no saturation or hue
            return x
        if op == 2:
            return _blend(x, _grayscale(x), factor(saturation))
        return _shift_hue(x, (2 * draw(n) - 1) * hue)

    for op in draw.permutation(4):  # a random order per call, as torchvision's ColorJitter
        x = adjust(op, x)
    return x


def _shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB images in [0, 1] by ``shift`` (B,) turns, through HSV."""
    r, g, b = x.unbind(1)
    value, _ = x.max(1)
    minimum, _ = x.min(1)
    chroma = value - minimum
    safe_chroma = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    saturation = chroma / torch.where(value > 0, value, torch.ones_like(value))  # 0 where value is 0
    hue = torch.where(
        value == r,
        (g - b) / safe_chroma,
        torch.where(value == g, 2 + (b - r) / safe_chroma, 4 + (r - g) / safe_chroma),
    )
    hue = torch.where(chroma > 0, hue / 6, torch.zeros_like(hue))
    hue = torch.remainder(hue + shift[:, None, None], 1.0)
    # HSV -> RGB: channel n is v - v * s * clamp(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + hue * 6, 6)
        channels.append(value - value * saturation * torch.minimum(k, 4 - k).clamp(0, 1))
    return torch.stack(channels, 1)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """3x3 Gaussian blur with reflected borders (kornia's default), channel by channel."""
    taps = torch.exp(-((torch.arange(3, dtype=x.dtype, device=x.device) - 1) ** 2) / (2 * sigma**2))
    taps = taps / taps.sum()
    kernel = (taps[:, None] * taps[None, :]).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, [1, 1, 1, 1], mode="reflect"), kernel, groups=x.shape[1])
