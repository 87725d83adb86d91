"""AdaFM (Zhao et al. 2020, On Leveraging Pretrained GANs for Generation with Limited Data).

G is split by resolution into a *specific* part near z (mapping network, low-resolution blocks,
the latter new as in the official code), which trains, and a *general* part near the image
(high-resolution blocks and to_rgb), which is frozen; each general conv kernel is adapted by
adaptive filter modulation, a learned scale and shift per (output, input) channel pair:
W' = gamma * W + beta, broadcast over the kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import METHODS, Method, ParamGroup, Stage, TargetSpec, backbone_param_groups
from benchmark.nets import parameters_of, set_trainable
from benchmark.nets.layers import EqualConv2dInner, FusedUpsample, average_shifted_kernel, equalized_scale
from benchmark.sources.base import reinitialize_parts
from methods.conv_swap import swap_convs


class AdaFMConv2d(nn.Module):
    """A frozen equalized-lr conv with AdaFM: ((gamma * W + beta) * sqrt(2 / fan_in)) conv x + b.

    W is the stored, unscaled source weight (rosinality's ``weight_orig``); the modulation acts on
    it before the equalized-lr scale, so beta is in the units of the stored weight. The official
    AdaFM (resnet2_AdaFM.py ``AdaFM``) modulates a plain conv weight with no normalisation of W;
    gamma = 1, beta = 0 gives the source conv exactly.

    Args:
        source: the conv to adapt; its weight and bias are frozen.
    """

    def __init__(self, source: EqualConv2dInner):
        super().__init__()
        self.source = source.requires_grad_(False)
        out_channels, in_channels = source.weight_orig.shape[:2]
        self.gamma = nn.Parameter(torch.ones(out_channels, in_channels))
        self.beta = nn.Parameter(torch.zeros(out_channels, in_channels))

    def weight(self) -> torch.Tensor:
        w = self.gamma[:, :, None, None] * self.source.weight_orig + self.beta[:, :, None, None]
        return w * equalized_scale(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.source.bias, padding=self.source.padding)


class AdaFMFusedUpsample(nn.Module):
    """A frozen fused upsampling conv with AdaFM on its stored (in, out, k, k) kernel.

    gamma and beta are kept as (out, in) like every other AdaFM layer and transposed onto the
    stored layout; the modulated kernel then goes through the layer's own scale, shifted-kernel
    average and transposed conv.

    Args:
        source: the fused conv to adapt; its weight and bias are frozen.
    """

    def __init__(self, source: FusedUpsample):
        super().__init__()
        self.source = source.requires_grad_(False)
        in_channels, out_channels = source.weight.shape[:2]
        self.gamma = nn.Parameter(torch.ones(out_channels, in_channels))
        self.beta = nn.Parameter(torch.zeros(out_channels, in_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.gamma.t()[:, :, None, None] * self.source.weight + self.beta.t()[:, :, None, None]
        kernel = average_shifted_kernel(w * self.source.multiplier)
        return F.conv_transpose2d(x, kernel, self.source.bias, stride=2, padding=self.source.pad)


@METHODS.register()
class AdaFM(Method):
    """Zhao et al. 2020: train G's specific part, adapt its frozen general part with AdaFM.

    Defaults and where they come from (MiaoyunZhao/GANTransferLimitedData):

    - General/specific split: the official 128 px generator (gan_training/models/resnet2_AdaFM.py
      ``Generator``) replaces the pretrained blocks up to 16 px by a trainable "small" network and
      keeps the 32, 64 and 128 px blocks and ``conv_img`` frozen, with AdaFM on their convs. Here
      the general part is the ``general_blocks`` highest-resolution synthesis blocks (default 3:
      64-256 px at 256 px, 32-128 px at 128 px, 8-32 px at 32 px) plus ``to_rgb``; everything in
      it is frozen (conv weights and biases, noise scales, AdaIN affines: the official general
      blocks have no noise or AdaIN, and every non-"small" parameter is frozen, Flower_[h]our.py
      L174-180) except gamma/beta; ``to_rgb`` has no AdaFM, like the official ``conv_img``.
    - Specific part: the mapping network (at the suite's mapping lr x 0.01, the shared recipe),
      the low-resolution blocks, the constant input and a conditional target's class embedding.
      The low-resolution blocks start from random initialisation (``specific_init="random"``):
      the official generator replaces GP-GAN's low-resolution blocks by new ones, and its loader
      copies only the keys that match, so the new part keeps its initial weights (Zhao et al. 2020).
      Departure: the mapping network keeps the source's weights (it still trains). The official
      generator has no mapping network; its frozen general blocks read only the features of the
      new part, while ours also read styles from the mapping through their frozen AdaIN affines,
      and a random mapping would feed them styles they never saw. On the toy suite (digit 7, 10
      shots, seed 0) a random mapping ended at FID 124.8, as bad as scratch; the source's, 6.8.
      ``"source"`` keeps the source's weights in the low-resolution blocks too (an ablation, not
      the paper's method).
    - D: everything trains except ``from_rgb`` and the first ``d_frozen_blocks`` near-image blocks
      (default 1: ``D_Layer_FIX = 2`` freezes ``conv_img`` and ``resnet_0``, toggle_ImageNet.py).
    - AdaFM starts late: gamma/beta are switched on at iteration 10000 (Flower_[h]our.py
      L309-314, ``if it == 10000``), before which only the specific part and D train. The paper
      does not mention the delay; it is kept as the default (``adafm_start``).

    Args:
        general_blocks: number of G's highest-resolution blocks in the frozen general part.
        adafm_start: step from which gamma/beta train (stage ``adafm``; 0 trains them throughout).
        d_frozen_blocks: D's near-image blocks frozen together with ``from_rgb``.
        specific_init: "random" (official: new low-resolution blocks) or "source" weights for them;
            the mapping network keeps the source's weights either way.
    """

    name = "adafm"
    plot_style = ("#000080", "-.", ">")
    unsupported_backbones = {
        "stylegan2": "AdaFM modulates the plain conv kernels of its general part (official GP-GAN, here "
        "StyleGAN v1's); a StyleGAN2 kernel is already modulated per sample by its style, and no paper defines "
        "AdaFM on it"
    }
    summary = "train G's low-res blocks and mapping; AdaFM on frozen high-res blocks; freeze D's from_rgb + first block"

    def __init__(
        self,
        source,
        target: TargetSpec,
        general_blocks: int = 3,
        adafm_start: int = 10_000,
        d_frozen_blocks: int = 1,
        specific_init: str = "random",
    ):
        super().__init__(source, target)
        self.G = source.build_generator(target.label_classes)
        self.D = source.build_discriminator(target.label_classes)
        resolutions = self.G.config.resolutions
        if not 1 <= general_blocks < len(resolutions):
            raise ValueError(f"general_blocks must be in 1..{len(resolutions) - 1}, got {general_blocks}")
        if adafm_start < 0:
            raise ValueError(f"adafm_start must be >= 0, got {adafm_start}")
        if not 0 <= d_frozen_blocks < len(resolutions):
            raise ValueError(f"d_frozen_blocks must be in 0..{len(resolutions) - 1}, got {d_frozen_blocks}")
        if specific_init not in ("random", "source"):
            raise ValueError(f"specific_init must be 'random' or 'source', got {specific_init!r}")
        self.adafm_start = adafm_start
        self.specific_parts = ("mapping",) + tuple(f"block{r}" for r in resolutions[:-general_blocks])
        if specific_init == "random":
            reinitialize_parts(self.G, list(self.specific_parts[1:]))  # the mapping stays the source's

        self.general_parts = tuple(f"block{r}" for r in resolutions[-general_blocks:]) + ("to_rgb",)
        set_trainable(parameters_of(self.G, self.general_parts), False)
        parts = self.G.parts()
        for name in self.general_parts[:-1]:
            swap_convs(parts[name], AdaFMConv2d, AdaFMFusedUpsample)
        set_trainable(self.modulation_parameters(), False)  # until the "adafm" stage

        d_frozen = [f"block{r}" for r in reversed(resolutions)][:d_frozen_blocks]
        set_trainable(parameters_of(self.D, ["from_rgb", *d_frozen]), False)

    def modulation_parameters(self) -> list[nn.Parameter]:
        """The AdaFM gamma and beta of every general conv."""
        layers = [m for m in self.G.modules() if isinstance(m, (AdaFMConv2d, AdaFMFusedUpsample))]
        return [p for m in layers for p in (m.gamma, m.beta)]

    def param_groups(self) -> list[ParamGroup]:
        modulation = self.modulation_parameters()
        ids = {id(p) for p in modulation}
        groups = backbone_param_groups(self.G, self.D)
        for group in groups:
            group.params = [p for p in group.params if id(p) not in ids]
        groups.append(ParamGroup("G", modulation, 1.0, "G AdaFM"))
        return [g for g in groups if g.params]

    @classmethod
    def schedule(cls, *, adafm_start: int, **_) -> list[Stage]:
        return [Stage("specific", adafm_start, set_by="adafm_start"), Stage("adafm", main=True)]

    def enter_stage(self, stage: Stage) -> None:
        set_trainable(self.modulation_parameters(), stage.name == "adafm")
