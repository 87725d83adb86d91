"""StyleGAN v1 layers with the parameter names of rosinality/style-based-gan-pytorch.

Equalized learning rate stores the weight unscaled as ``weight_orig`` and multiplies it by
sqrt(2 / fan_in) at forward time, exactly as rosinality's ``EqualLR`` hook does; the modules
here compute the scaled weight in a ``weight()`` method instead of a forward pre-hook, so a
method can wrap or re-parameterise it (AdaFM, Hyper-Modulation) without touching hooks, while
the state-dict keys (``conv.weight_orig``, ``linear.bias``, ...) stay identical and real
checkpoints load without renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def equalized_scale(weight: torch.Tensor) -> float:
    """He constant sqrt(2 / fan_in), with rosinality's fan_in = size(1) * prod(size[2:])."""
    fan_in = weight.shape[1] * weight[0][0].numel()
    return math.sqrt(2.0 / fan_in)


class EqualConv2dInner(nn.Module):
    """The conv that holds ``weight_orig`` and ``bias`` (rosinality's ``nn.Conv2d`` after equal_lr)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0):
        super().__init__()
        self.weight_orig = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.padding = padding

    def weight(self) -> torch.Tensor:
        return self.weight_orig * equalized_scale(self.weight_orig)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate; keys ``conv.weight_orig``, ``conv.bias``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0):
        super().__init__()
        self.conv = EqualConv2dInner(in_channels, out_channels, kernel_size, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class EqualLinearInner(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.weight_orig = nn.Parameter(torch.randn(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def weight(self) -> torch.Tensor:
        return self.weight_orig * equalized_scale(self.weight_orig)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


class EqualLinear(nn.Module):
    """Linear with equalized learning rate; keys ``linear.weight_orig``, ``linear.bias``."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = EqualLinearInner(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class Blur(nn.Module):
    """Depthwise [1 2 1] x [1 2 1] / 16 blur.

    rosinality registers both the kernel and its flip as buffers (its custom autograd function
    uses the flip for the backward pass); both are kept so the keys match. F.conv2d supports the
    double backward R1 needs, so the custom function is not required. The kernel is symmetric,
    so the flip equals the kernel.
    """

    def __init__(self, channels: int):
        super().__init__()
        kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
        kernel = (kernel / kernel.sum()).view(1, 1, 3, 3)
        self.register_buffer("weight", kernel.repeat(channels, 1, 1, 1))
        self.register_buffer("weight_flip", torch.flip(kernel, [2, 3]).repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=1, groups=x.shape[1])


def average_shifted_kernel(weight: torch.Tensor) -> torch.Tensor:
    """rosinality's fused-resampling kernel: pad by 1 and average the four shifted copies.

    Works on the last two dimensions, so a batch of kernels (per class, per sample) works too.
    """
    w = F.pad(weight, [1, 1, 1, 1])
    return (w[..., 1:, 1:] + w[..., :-1, 1:] + w[..., 1:, :-1] + w[..., :-1, :-1]) / 4


class FusedUpsample(nn.Module):
    """Transposed conv with stride 2 (upsample + conv in one op); keys ``weight``, ``bias`` (no _orig).

    The weight is (in, out, k, k) as conv_transpose2d expects, scaled by sqrt(2 / (in * k * k)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_channels, out_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.multiplier = math.sqrt(2.0 / (in_channels * kernel_size * kernel_size))
        self.pad = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = average_shifted_kernel(self.weight * self.multiplier)
        return F.conv_transpose2d(x, weight, self.bias, stride=2, padding=self.pad)


class FusedDownsample(nn.Module):
    """Strided conv (conv + downsample in one op); keys ``weight``, ``bias`` (no _orig)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.multiplier = math.sqrt(2.0 / (in_channels * kernel_size * kernel_size))
        self.pad = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = average_shifted_kernel(self.weight * self.multiplier)
        return F.conv2d(x, weight, self.bias, stride=2, padding=self.pad)


class NoiseInjection(nn.Module):
    """Per-channel scaled noise; rosinality applies equal_lr here too, so the key is ``weight_orig``."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight_orig = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight_orig * equalized_scale(self.weight_orig) * noise


class AdaptiveInstanceNorm(nn.Module):
    """Instance norm, then a per-channel scale and shift predicted from the style vector.

    The style affine's bias starts at (1, 0) so a fresh layer is the identity after the norm.
    """

    def __init__(self, channels: int, style_dim: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels)
        self.style = EqualLinear(style_dim, channels * 2)
        with torch.no_grad():
            self.style.linear.bias[:channels] = 1
            self.style.linear.bias[channels:] = 0

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.style(style)[:, :, None, None].chunk(2, 1)
        return gamma * self.norm(x) + beta


class ConstantInput(nn.Module):
    """The learned 4x4 input of the synthesis network; key ``input``."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)
