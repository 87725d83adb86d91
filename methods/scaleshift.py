"""Scale/Shift: adversarial training of a per-channel scale and shift per G layer, every G weight frozen.

Noguchi & Harada 2019 (Batch Statistics Adaptation) adapt a pretrained generator by learning
only a per-channel gamma and beta that multiply and shift each normalised feature map; Park et
al. 2023's "Scale/Shift" trains that parameterisation adversarially, with a discriminator,
instead of BSA's reconstruction losses. That is this method: free per-channel parameters, the
same for every sample, after each AdaIN, with every G weight frozen and all of D training.

It is not FreezeD's ``--only_adain`` (stylegan/finetune.py), which trains the parameters with
"adain" in their name: AdaIN's style projections, the EqualLinear layers that map w to each
layer's per-channel scale and bias, so the adaptation there still depends on w (and the mapping
network is left frozen with the rest of G).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.method import METHODS, Method, TargetSpec
from benchmark.nets import set_trainable
from benchmark.nets.layers import AdaptiveInstanceNorm


class ScaledAdaIN(AdaptiveInstanceNorm):
    """AdaIN followed by a learned per-channel affine: ``scale * AdaIN(x, w) + shift``.

    A subclass rather than a wrapper so the frozen AdaIN keeps its state-dict keys
    (``adain1.style.linear.weight_orig``); only ``scale`` and ``shift`` are new keys. With
    ``scale = 1`` and ``shift = 0`` the layer is exactly the AdaIN it replaces.

    Args:
        channels: feature channels.
        style_dim: width of the style vector w.
    """

    def __init__(self, channels: int, style_dim: int):
        super().__init__(channels, style_dim)
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))

    @classmethod
    def replacing(cls, adain: AdaptiveInstanceNorm) -> ScaledAdaIN:
        """A ScaledAdaIN around ``adain``'s own modules (the same parameters), at the identity scale and shift."""
        channels, style_dim = adain.norm.num_features, adain.style.linear.weight_orig.shape[1]
        layer = cls(channels, style_dim).to(adain.style.linear.weight_orig)
        layer.norm, layer.style = adain.norm, adain.style  # kept, not copied: they stay the source's parameters
        return layer

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return super().forward(x, style) * self.scale[:, None, None] + self.shift[:, None, None]


def add_scale_shift(generator: nn.Module) -> list[ScaledAdaIN]:
    """Replace, in place, every AdaIN of ``generator`` by a ScaledAdaIN; returns the new layers."""
    layers = []
    for parent in list(generator.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is AdaptiveInstanceNorm:
                layer = ScaledAdaIN.replacing(child)
                setattr(parent, child_name, layer)
                layers.append(layer)
    return layers


def freeze_all_but_scale_shift(generator: nn.Module) -> list[ScaledAdaIN]:
    """``add_scale_shift``, then freeze every other weight of ``generator``: G's part in Scale/Shift and BSA."""
    layers = add_scale_shift(generator)
    set_trainable(generator, False)
    set_trainable([p for layer in layers for p in (layer.scale, layer.shift)], True)
    return layers


@METHODS.register()
class ScaleShift(Method):
    """Scale/Shift (Park et al. 2023; Noguchi & Harada 2019): train per-channel gamma, beta in G and all of D.

    Where the affine goes: BSA (nogu-atsu/small-dataset-image-generation gen_models/sngan.py and
    sngan_resblocks.py ``shift``) applies gamma, beta to the output of each normalisation layer
    (after the source's own BN affine, before the activation and the next conv), one pair per
    normalised layer plus the input map. In StyleGAN v1 every conv output (and the constant
    input) is normalised by its AdaIN, so one (gamma, beta) pair of shape (C,) acts on each
    AdaIN's output: two per block, before the next conv. On the raw conv output instead, the
    instance norm that follows would cancel a positive scale exactly up to the noise term
    (LeakyReLU is positively homogeneous), leaving half of the parameters nearly inert.
    ``to_rgb`` is not adapted, like BSA's final layer.

    Trainable: every ``scale`` (init 1) and ``shift`` (init 0), G's class embedding when the
    target is conditional (a new, zero-initialised label path, not a source weight), and all of
    D. Frozen: every G weight (mapping, convs, noise strengths, style affines, to_rgb). Loss: the
    shared adversarial loss; no regulariser (BSA's 0.02 * MSE(gamma, 1) belongs to its
    reconstruction objective and is not part of this adversarial baseline).
    """

    name = "scaleshift"
    plot_style = ("#9467bd", "-", "P")
    unsupported_backbones = {
        "stylegan2": "its scale/shift acts on StyleGAN v1's AdaIN outputs (normalised statistics); StyleGAN2's "
        "demodulated convs have no normalisation layer to adapt, and no paper defines the port"
    }
    summary = "train a per-channel scale/shift after every G layer and all of D; every G weight frozen"

    def __init__(self, source, target: TargetSpec):
        super().__init__(source, target)
        self.G = source.build_generator(target.label_classes, pretrained=True)
        self.D = source.build_discriminator(target.label_classes, pretrained=True)
        freeze_all_but_scale_shift(self.G)
        if target.conditional:
            set_trainable(self.G.class_embed, True)
