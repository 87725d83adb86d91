"""Fine-tuning with frozen generator blocks: FreezeG and partial fine-tuning (GmDn).

Both are plain adversarial fine-tuning from the source (``FineTuneMethod``); they differ in
which end of G stays fixed. FreezeG keeps the coarse, near-z blocks and retrains the
high-resolution ones; partial fine-tuning does the opposite and keeps the near-image blocks
of both G and D, which Zhao et al. found to be the most general part.

Freezing is by part name (``block{resolution}``), counted from one end of the network, so the
same option means the same thing at every resolution. The label path of a conditional target
(G's ``class_embed``, D's ``class_projection``) is new and zero-initialised, so it always trains.
"""

from __future__ import annotations

from benchmark.method import METHODS, TargetSpec
from benchmark.nets import parameters_of, set_trainable
from methods.finetune import FineTuneMethod


def _check_count(option: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{option} must be in {low}..{high} for this backbone, got {value}")


@METHODS.register()
class FreezeG(FineTuneMethod):
    """FreezeG (bryandlee/FreezeG; Park et al. 2023 "Freeze G"): retrain only G's high-resolution blocks.

    Official code (bryandlee/FreezeG stylegan2/train.py, ``--finetune_loc``, on rosinality's
    StyleGAN2) first freezes the whole generator, then unfreezes, for each of the top
    ``finetune_loc`` resolutions, its two convs (``convs.{num_layers - 2 - 2 loc}`` and
    ``convs.{num_layers - 3 - 2 loc}``) and its to_rgb (``to_rgbs.{log_size - 3 - loc}``). A
    StyleGAN2 conv holds its own style affine (``modulation``) and noise strength, so those train
    with their block and stay frozen in the frozen blocks; the mapping network, the constant
    input, ``conv1``, ``to_rgb1`` and the low-resolution blocks are frozen. All of D trains.

    On the ``stylegan2`` backbone this is the official split exactly: a ``block{r}`` holds that
    resolution's two convs and its to_rgb (NVIDIA's b{r}). The rest of the official run is the
    backbone's recipe (rosinality train.py: lazy R1 gamma 10 every 16 steps, Adam 0.002 with the
    lazy ratios, mixing 0.9, EMA 0.5 ** (32 / 10,000)), except that the official script skips
    path-length regularization whenever ``finetune_loc >= 0``, so this method does too
    (``path_length_regularization = False``). Two official details are not reproduced: its
    ``requires_grad`` matches parameter names by substring (``convs.1`` also unfreezes
    ``convs.10`` and ``convs.11``, which matters only for ``finetune_loc >= 6`` at 256 px), and it
    restores the source checkpoint's Adam moments (``g_optim``, ``d_optim``); here Adam starts
    fresh, as in every other method.

    On the ``stylegan1`` backbone the same split reads: a ``block{r}`` holds its two convs, noise
    strengths and AdaIN style affines, and the single ``to_rgb`` belongs to the top block.

    The argparse default ``finetune_loc = -1`` means "train everything" (plain fine-tuning), so
    the default here is 3, the value FreezeG's own demo (stylegan2/gradio_app.py) assumes for its
    256 px FFHQ -> AFHQ-dog checkpoint: the 64, 128 and 256 px blocks train.

    Args:
        g_trainable_blocks: how many of G's highest-resolution blocks train (FreezeG's
            ``finetune_loc``, default 3); ``to_rgb`` trains with them.
    """

    name = "freezeg"
    plot_style = ("#2ca02c", "-", "v")
    path_length_regularization = False  # official train.py: only with finetune_loc < 0 (all of G trains)
    summary = "fine-tune G's high-resolution blocks and all of D; freeze the mapping and low-res G blocks"

    def __init__(self, source, target: TargetSpec, g_trainable_blocks: int = 3):
        super().__init__(source, target, pretrained=True)
        resolutions = self.G.config.resolutions
        _check_count("g_trainable_blocks", g_trainable_blocks, 1, len(resolutions))
        frozen = ["mapping"] + [f"block{r}" for r in resolutions[: len(resolutions) - g_trainable_blocks]]
        set_trainable(parameters_of(self.G, frozen), False)


@METHODS.register()
class PartialFineTune(FineTuneMethod):
    """Partial fine-tuning (Park et al. 2023; Zhao et al. 2020's GmDn baseline): freeze the near-image blocks.

    Official code (MiaoyunZhao/GANTransferLimitedData CELEBA_[f]GmDn.py with
    gan_training/toggle_ImageNet.py): ``toggle_grad_G(G, True, -m)`` trains G's ``fc`` (z to the
    4x4 map) and its blocks up to the m-th stage counted from the image side, and never unfreezes
    ``conv_img``; ``toggle_grad_D(D, True, n)`` trains D's ``fc`` and its blocks from the n-th
    stage counted from the image side, and never unfreezes D's ``conv_img``. So "GmDn" freezes
    the RGB conv plus m - 1 (n - 1) blocks next to the image. Park et al.'s setting, "fixed up to
    G layer 4 and D layer 4", is G4D4: to_rgb and the 3 highest-resolution G blocks, from_rgb and
    the 3 highest-resolution D blocks stay fixed. At 128 px (Zhao's CelebA) that is G's 32-128 px
    blocks and D's 128-32 px blocks; at 256 px, G's 64-256 px and D's 256-64 px blocks.

    Trainable: the mapping network (Zhao's ``fc``; lr x 0.01 as in the shared recipe), the
    remaining low-resolution G blocks, D's remaining low-resolution blocks and ``linear``, and
    the label path when conditional.

    Args:
        g_frozen_blocks: G blocks frozen next to the image, with ``to_rgb`` (default 3, i.e. G4).
        d_frozen_blocks: D blocks frozen next to the image, with ``from_rgb`` (default 3, i.e. D4).
    """

    name = "partial"
    plot_style = ("#ff7f0e", "--", "D")
    summary = "fine-tune G's near-z blocks + mapping and D's near-logit blocks; freeze the near-image blocks"

    def __init__(self, source, target: TargetSpec, g_frozen_blocks: int = 3, d_frozen_blocks: int = 3):
        super().__init__(source, target, pretrained=True)
        resolutions = self.G.config.resolutions  # 4 .. resolution px
        _check_count("g_frozen_blocks", g_frozen_blocks, 0, len(resolutions) - 1)
        _check_count("d_frozen_blocks", d_frozen_blocks, 0, len(resolutions) - 1)
        near_image = resolutions[::-1]
        g_frozen = ["to_rgb"] + [f"block{r}" for r in near_image[:g_frozen_blocks]]
        d_frozen = ["from_rgb"] + [f"block{r}" for r in near_image[:d_frozen_blocks]]
        set_trainable(parameters_of(self.G, g_frozen), False)
        set_trainable(parameters_of(self.D, d_frozen), False)
