"""The two pieces of CDC that its successors keep: anchor latents and the patch discriminator.

Ojha et al. CVPR 2021, "Few-shot image generation via cross-domain correspondence"
(utkarshojha/few-shot-gan-adaptation train.py, model.py), and RSSA after it
(StevenShaw1999/RSSA train_face_proj.py, whose training loop is CDC's), split every iteration
``i`` by ``i % subspace_freq`` (``--subspace_freq`` 4):

- **anchor steps** (``i % 4 == 0``): both the D and the G phase draw their fakes' z near one of
  ``n_train`` (10) anchors drawn once before training (``init_z``), z = anchor + N(0, 0.1^2)
  (``get_subspace``: random anchor indices with replacement, ``--subspace_std`` 0.1, no style
  mixing), and D scores whole images (its usual logit);
- **other steps**: the usual z (with style mixing) and a *patch* discriminator: the D layer
  ``block64.conv2`` of a 256 px D (512 channels at 32 x 32; ``Patch_Discriminator`` with
  ``--highp 1`` always picks the first of its four 32/16 px feature maps) goes through one more
  ``ConvLayer(512, 1, 3)`` (``Extra``; with its leaky-ReLU activation, as officially) to a map of
  logits, each a patch's real/fake score. The logistic loss averages softplus over every patch
  (``d_logistic_loss`` on the map); R1 differentiates the per-image mean of the map (train.py's
  ``real_pred.view(B, -1).mean(1)``). The head has its own Adam at D's lr and betas
  (``e_optim``), the same as putting it in D's optimizer, since Adam is per parameter.

This module only provides the pieces; a method decides when to use them (see ``methods.rssa``).
Here the patch layer is named by the resolution of its output (``patch_resolution``, default
resolution / 8: 32 px at 256 px), so a smaller backbone gets the layer at the same relative depth.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.nets.layers2 import ConvLayer
from benchmark.step import Latents

ANCHOR_EVERY = 4  # --subspace_freq
ANCHOR_JITTER = 0.1  # --subspace_std
N_ANCHORS = 10  # --n_train


class AnchorLatents(nn.Module):
    """CDC's anchor region: ``n`` latents drawn once (the global RNG, at build), jittered at each use.

    The anchors are a buffer, so they are saved with the method's checkpoint and a resumed run
    uses the same ones.

    Args:
        n: number of anchors (``--n_train``, 10).
        style_dim: width of z.
        every: anchor steps are those with ``step % every == 0`` (``--subspace_freq`` 4); 0 turns
            them off.
        jitter: std of the Gaussian added to an anchor at each draw (``--subspace_std`` 0.1).
    """

    def __init__(self, n: int, style_dim: int, every: int = ANCHOR_EVERY, jitter: float = ANCHOR_JITTER):
        super().__init__()
        if n < 1 or every < 0 or jitter < 0:
            raise ValueError(f"anchors need n >= 1, every >= 0 and jitter >= 0, got {n}, {every}, {jitter}")
        self.every, self.jitter = every, jitter
        self.register_buffer("anchors", torch.randn(n, style_dim))

    def active(self, step: int) -> bool:
        """Whether ``step`` is an anchor step (image-level D, z near the anchors)."""
        return self.every > 0 and step % self.every == 0

    def draw(self, batch: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> Latents:
        """``batch`` latents: anchors picked uniformly with replacement, plus N(0, jitter^2); no mixing."""
        index = torch.randint(len(self.anchors), (batch,), generator=generator)
        noise = torch.randn(batch, self.anchors.shape[1], generator=generator)
        z = self.anchors[index.to(self.anchors.device)] + self.jitter * noise.to(self.anchors.device)
        return Latents(z, labels)


def default_patch_resolution(resolution: int) -> int:
    """CDC's patch layer outputs 32 x 32 at 256 px: resolution / 8 (at least 4)."""
    return max(4, resolution // 8)


class PatchHead(nn.Module):
    """CDC's patch discriminator head (``Extra``): one ``ConvLayer(C, 1, 3)`` on a D layer's output.

    The layer is the downsampling conv of the D block whose input is ``2 * patch_resolution`` px
    (``block{2r}.conv2`` in ``StyleGAN2Discriminator.features(..., return_layer_outputs=True)``),
    whose output is ``patch_resolution`` px; at 256 px that is CDC's ``block64.conv2``.

    Args:
        D: the discriminator it reads (a ``StyleGAN2Discriminator``; only its config is kept).
        patch_resolution: the output size of the layer read (default resolution / 8).
    """

    def __init__(self, D: nn.Module, patch_resolution: int | None = None):
        super().__init__()
        config = D.config
        r = default_patch_resolution(config.resolution) if patch_resolution is None else patch_resolution
        if r not in config.resolutions or 2 * r not in config.resolutions:
            valid = [x for x in config.resolutions if 2 * x in config.resolutions]
            raise ValueError(f"patch_resolution must be one of {valid} for this backbone, got {patch_resolution}")
        self.patch_resolution = r
        self.layer = f"block{2 * r}.conv2"
        self.conv = ConvLayer(config.width(r), 1, 3)

    def forward(self, D: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Patch logits (B, r * r) of ``images`` under ``D``."""
        layers = D.features(images, return_layer_outputs=True)[2]
        return self.conv(layers[self.layer]).flatten(1)


def patch_logits_for_loss(patch_logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """What D's logit hook returns for patch logits (B, P): the map itself, whose logistic loss averages
    every patch as CDC's does; for R1's real batch (a leaf input that requires grad, as in
    ``benchmark.method.accumulate_regularization``) the per-image mean, which CDC's R1 differentiates."""
    if images.is_leaf and images.requires_grad:
        return patch_logits.mean(1)
    return patch_logits
