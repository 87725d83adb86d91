"""StyleGAN2 layers with the parameter names of rosinality/stylegan2-pytorch ``model.py``, in pure PyTorch.

rosinality's ``op/`` package compiles two CUDA extensions on import (``fused_bias_act`` and
``upfirdn2d``) and falls back to pure-torch formulas on the CPU. Here the CPU formulas are the
only ones: ``fused_leaky_relu`` is ``leaky_relu(x + bias, 0.2) * sqrt(2)`` and ``upfirdn2d`` is
zero-insertion, padding and a convolution with the flipped kernel (``upfirdn2d_native``), so
autograd differentiates through them to any order (R1 and path-length regularisation need the
double backward that rosinality's custom CUDA functions implement by hand). ``conv2d_gradfix``
only changes how weight gradients are computed on CUDA; plain ``F.conv2d`` is used.

Equalized learning rate is as in the original: weights are stored unscaled (``weight``, no
``_orig`` suffix as in v1) and multiplied by 1 / sqrt(fan_in) at forward time; the mapping
network's ``EqualLinear`` stores weights divided by ``lr_mul`` and applies ``lr_mul`` to weight
and bias at forward time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# rosinality's blur_kernel default: the binomial [1 3 3 1] filter of the StyleGAN2 paper.
BLUR_KERNEL = (1, 3, 3, 1)
LEAKY_SLOPE = 0.2
LEAKY_GAIN = math.sqrt(2)  # FusedLeakyReLU's scale: keeps activations at unit variance


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """rosinality's ``fused_leaky_relu``: per-channel bias (dim 1), LeakyReLU(0.2), times sqrt(2)."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, LEAKY_SLOPE) * LEAKY_GAIN


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: Sequence[int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with ``kernel`` (true convolution), downsample.

    The formula of rosinality's ``upfirdn2d_native`` for square factors: ``pad`` is (p0, p1) for both
    axes or (x0, x1, y0, y1); negative pads crop. Each channel is filtered on its own.

    Args:
        x: (B, C, H, W).
        kernel: (kh, kw) FIR filter.
    """
    px0, px1, py0, py1 = (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else tuple(pad)
    batch, channels, height, width = x.shape
    out = x.reshape(batch * channels, 1, height, width)
    if up > 1:
        out = out.reshape(-1, 1, height, 1, width, 1)
        out = F.pad(out, [0, up - 1, 0, 0, 0, up - 1])  # up - 1 zeros after every sample, both axes
        out = out.reshape(-1, 1, height * up, width * up)
    out = F.pad(out, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    out = out[:, :, max(-py0, 0) : out.shape[2] - max(-py1, 0), max(-px0, 0) : out.shape[3] - max(-px1, 0)]
    # F.conv2d is a correlation; flipping the kernel makes it the convolution upfirdn2d defines.
    out = F.conv2d(out, torch.flip(kernel, [0, 1])[None, None].to(out.dtype))
    out = out[:, :, ::down, ::down]
    return out.reshape(batch, channels, out.shape[2], out.shape[3])


def make_kernel(k: Sequence[float]) -> torch.Tensor:
    """rosinality's ``make_kernel``: outer product of a 1-D filter with itself, normalised to sum 1."""
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


class Upsample(nn.Module):
    """2x upsampling with the blur filter (ToRGB's skip path); buffer ``kernel`` = 4 x make_kernel."""

    def __init__(self, kernel: Sequence[float] = BLUR_KERNEL, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor**2)  # x factor^2 keeps the mean after zeros
        p = len(kernel) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Blur(nn.Module):
    """FIR filtering with padding; buffer ``kernel`` (x factor^2 after a transposed-conv upsample)."""

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class EqualConv2d(nn.Module):
    """Conv2d with equalized lr: ``weight`` (out, in, k, k) unscaled, times 1 / sqrt(in * k * k)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, bias=True
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear with equalized lr and a learning-rate multiplier, as rosinality stores it.

    ``weight`` is initialised as randn / lr_mul and used times lr_mul / sqrt(in_dim); ``bias`` is
    used times lr_mul. With ``activation`` the bias goes through ``fused_leaky_relu`` instead.

    Args:
        bias_init: initial bias (1 for the modulation affines, so a fresh style scales by 1).
        lr_mul: 0.01 in the mapping network (``lr_mlp``), 1 elsewhere.
        activation: True for rosinality's ``activation="fused_lrelu"``.
    """

    def __init__(
        self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class FusedLeakyReLU(nn.Module):
    """Bias, LeakyReLU(0.2) and gain sqrt(2); key ``bias`` (absent with bias=False)."""

    def __init__(self, channels: int, bias: bool = True):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class ModulatedConv2d(nn.Module):
    """Weight (de)modulation by a per-sample style, run as one grouped conv (rosinality's fused path).

    The weight (1, out, in, k, k) is scaled by 1 / sqrt(in * k * k) and by the style s (B, in) from
    the ``modulation`` affine; with ``demodulate`` each output filter is renormalised to unit norm
    (the StyleGAN2 paper's eq. 3, eps 1e-8). Upsampling is a stride-2 transposed conv followed by
    the blur (x 4); downsampling is never used by the generator and is not implemented.

    Args:
        upsample: double the resolution (the first conv of each block above 4 px).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.upsample = upsample
        self.demodulate = demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1)

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-sample weights (B, out, in, k, k) for styles (B, style_dim)."""
        s = self.modulation(style).view(style.shape[0], 1, self.in_channels, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(style.shape[0], self.out_channels, 1, 1, 1)
        return weight

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, in_channels, height, width = x.shape
        weight = self.modulated_weight(style)
        k = self.kernel_size
        x = x.reshape(1, batch * in_channels, height, width)
        if self.upsample:
            # conv_transpose2d wants (in, out, k, k) per group: no spatial flip, as in the original.
            weight = weight.transpose(1, 2).reshape(batch * in_channels, self.out_channels, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            out = self.blur(out.reshape(batch, self.out_channels, out.shape[2], out.shape[3]))
        else:
            weight = weight.reshape(batch * self.out_channels, in_channels, k, k)
            out = F.conv2d(x, weight, padding=self.padding, groups=batch)
            out = out.reshape(batch, self.out_channels, out.shape[2], out.shape[3])
        return out


class NoiseInjection(nn.Module):
    """Adds ``weight`` (one scalar per layer, initialised to 0) times a (B, 1, H, W) noise map."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4x4 input of the synthesis network; key ``input`` (1, C, 4, 4)."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated 3x3 conv, noise, bias + LeakyReLU; keys ``conv.*``, ``noise.weight``, ``activate.bias``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, kernel_size, style_dim, upsample=upsample, blur_kernel=blur_kernel
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation, plus bias, plus the upsampled skip image.

    Keys ``conv.*``, ``bias`` (1, C, 1, 1) and, when it upsamples, the ``upsample.kernel`` buffer.
    """

    def __init__(self, in_channels: int, style_dim: int, image_channels: int = 3, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = Upsample(BLUR_KERNEL)
        self.conv = ModulatedConv2d(in_channels, image_channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, image_channels, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConvLayer(nn.Sequential):
    """D's conv: [Blur], EqualConv2d, [FusedLeakyReLU]; keys ``0.*``, ``1.*`` (``2.*``) as in the original.

    With ``activate`` the bias lives in the activation (``FusedLeakyReLU.bias``) and the conv has none.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        bias: bool = True,
        activate: bool = True,
    ):
        layers: list[nn.Module] = []
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """D block: two 3x3 convs (the second downsamples) plus a 1x1 downsampling skip, summed / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(
            in_channels, out_channels, 1, downsample=True, blur_kernel=blur_kernel, activate=False, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)
