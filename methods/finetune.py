"""Plain adversarial fine-tuning and its frozen variants: scratch, TransferGAN, FreezeD.

These methods differ only in where G and D start and which parts train; the adversarial step
is the harness's (``benchmark.method.accumulate_gradients``).
"""

from __future__ import annotations

from benchmark.method import METHODS, Method, TargetSpec
from benchmark.nets import parameters_of, set_trainable


class FineTuneMethod(Method):
    """G and D built from the source (or randomly initialised), every parameter trainable.

    Args:
        pretrained: start from the source's weights (False trains from scratch).
    """

    def __init__(self, source, target: TargetSpec, pretrained: bool = True):
        super().__init__(source, target)
        self.G = source.build_generator(target.label_classes, pretrained=pretrained)
        self.D = source.build_discriminator(target.label_classes, pretrained=pretrained)


@METHODS.register()
class Scratch(FineTuneMethod):
    """Train G and D from a random initialisation on the target alone: every paper's baseline."""

    name = "scratch"
    plot_style = ("#000000", "-", "o")
    summary = "all of G and D from random init"

    def __init__(self, source, target: TargetSpec):
        super().__init__(source, target, pretrained=False)


@METHODS.register()
class TransferGAN(FineTuneMethod):
    """Wang et al. 2018, Transferring GANs: fine-tune all of G and D from the source.

    The original (yaxingwang/Transferring-GANs transfer_gan.py) fine-tuned a WGAN-GP at 64 px
    with lr 1e-5; here the method keeps its defining property, plain fine-tuning of everything,
    under the suite's shared recipe so that only the transfer method differs between rows.
    """

    name = "transfergan"
    plot_style = ("#1f77b4", "-", "s")
    summary = "fine-tune all of G and D from the source"

    def __init__(self, source, target: TargetSpec):
        super().__init__(source, target, pretrained=True)


@METHODS.register()
class FreezeD(FineTuneMethod):
    """Mo et al. 2020, Freeze the Discriminator: fine-tune G and only D's lowest-resolution blocks.

    Official code (sangwoomo/FreezeD stylegan/finetune.py, ``--freeze_D --feature_loc 3``) trains
    ``progression.{8, 7, 6}`` and ``linear`` of rosinality's D, i.e. the blocks whose inputs are
    4, 8 and 16 px, and freezes ``from_rgb`` and every block above (256..32 px at 256 px).
    FreezeD's README (stylegan/README.md) names its layers by ``feature_loc = 7 - layer_num``:
    "freeze D up to layer n" is ``d_trainable_blocks = 7 - n`` (the default 3 is its layer 4;
    Park et al.'s "FreezeD D5" is 2, configs/park2023.yaml).

    On StyleGAN2 (rosinality's residual D, the CDC paper's "FreezeD" baseline): the same default
    trains ``block4`` (minibatch stddev, ``final_conv``, ``final_linear.0``), ``block8`` and
    ``block16`` (ResBlocks ``convs.6`` and ``convs.5`` at 256 px) and ``linear``, and freezes
    ``from_rgb`` (``convs.0``) and the ResBlocks whose inputs are 256 .. 32 px (``convs.1`` ..
    ``convs.4``). The CDC paper (Ojha et al. 2021) runs FreezeD as a baseline without, in what we
    could read of it and its code (utkarshojha/few-shot-gan-adaptation ships no FreezeD script),
    a layer count of its own; FreezeD has no StyleGAN2 code either, so configs/cdc2021.yaml uses
    FreezeD's own depth, ``feature_loc`` 3, named there as this reading.

    Args:
        d_trainable_blocks: how many of D's lowest-resolution blocks train (FreezeD's
            ``feature_loc``, default 3); the final linear (and a conditional projection) train too.
    """

    name = "freezed"
    plot_style = ("#d62728", "--", "^")
    summary = "fine-tune G; freeze D's from_rgb and high-resolution blocks"

    def __init__(self, source, target: TargetSpec, d_trainable_blocks: int = 3):
        super().__init__(source, target, pretrained=True)
        resolutions = self.D.config.resolutions
        if not 1 <= d_trainable_blocks <= len(resolutions):
            raise ValueError(f"d_trainable_blocks must be in 1..{len(resolutions)}, got {d_trainable_blocks}")
        d_blocks = resolutions[:d_trainable_blocks]  # 4, 8, 16 px for the default 3
        frozen = ["from_rgb"] + [f"block{r}" for r in resolutions if r not in d_blocks]
        set_trainable(parameters_of(self.D, frozen), False)
