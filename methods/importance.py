"""What AdAM and RICK share: per-filter Fisher information on the EMA networks, the quantile rule, D's EMA.

Both official code bases (yunqing-me/AdAM, yunqing-me/RICK) estimate the Fisher information as in
GAN Memory (``estimate_fisher`` in ``gan_training/models/model*.py``): for each of a fixed set of
noises, one image at a time, the squared gradient of the generator's non-saturating loss on
``g_ema`` (through ``d_ema``) and of the discriminator's logistic loss (one real image against that
fake) on ``d_ema``, averaged over the samples. Filters are then scored per output channel and
split by ``np.percentile`` of all scores of one pool of layers (``fisher_quantile``, in percent).
The official noises are files (``_noise/0000.pt`` ...) and the real images come from the training
loader (flipped at random); here the latents, the noise maps and the real images' indices are drawn
from a generator seeded by the method's ``fisher_seed`` and the reals are not flipped, so the same
run always gets the same Fisher, resumed or not.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from benchmark.losses import d_logistic_loss, g_nonsaturating_loss
from benchmark.trainer import update_ema

STYLEGAN1_REASON = (
    "the official code scores and modulates StyleGAN2's modulated convolutions, style affines and residual "
    "D blocks, which StyleGAN v1 does not have"
)


def buffer_name(key: str) -> str:
    """A parameter path as a buffer name (buffers cannot hold dots)."""
    return key.replace(".", "__")


def quantile_line(scores: Iterable[torch.Tensor], q: float) -> float:
    """``np.percentile`` (linear interpolation, q in percent) of all scores of one pool, as the official code."""
    pooled = np.concatenate([s.detach().double().cpu().numpy().ravel() for s in scores])
    return float(np.percentile(pooled, q))


def estimate_fisher(
    G: nn.Module,
    D: nn.Module,
    g_params: dict[str, nn.Parameter],
    d_params: dict[str, nn.Parameter],
    images: torch.Tensor,
    labels: torch.Tensor | None,
    n_classes: int,
    samples: int,
    seed: int,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The Fisher information of ``g_params`` (of G) and ``d_params`` (of D), sample by sample.

    Args:
        G, D: the EMA generator and discriminator (their ``requires_grad`` is restored afterwards).
        images: the training set, uint8 (N, C, H, W); one image per sample, drawn with the noise.
        labels: its labels (used when ``n_classes``), else None.
        n_classes: classes of a conditional target (0: unconditional).
        samples: how many noises (AdAM 250 files x batch 4, RICK 5 files x batch 2).
        seed: seeds the noises, noise maps and image indices.
    """
    generator = torch.Generator().manual_seed(seed)
    device = images.device
    wanted = list(g_params.values()) + list(d_params.values())
    was = [p.requires_grad for p in wanted]
    for p in wanted:
        p.requires_grad_(True)
    g_fisher = {k: torch.zeros_like(p) for k, p in g_params.items()}
    d_fisher = {k: torch.zeros_like(p) for k, p in d_params.items()}
    try:
        for _ in range(samples):
            z = torch.randn(1, G.config.style_dim, generator=generator).to(device)
            index = int(torch.randint(len(images), (), generator=generator))
            noise = [n.to(device) for n in G.make_noise(1, "cpu", generator=generator)]
            label = labels[index : index + 1] if n_classes else None
            real = images[index : index + 1].float() / 127.5 - 1
            fake = G(z, label, noise=noise)
            fake_logits = D(fake, label)
            grads = torch.autograd.grad(g_nonsaturating_loss(fake_logits), list(g_params.values()), allow_unused=True)
            for k, g in zip(g_params, grads):
                if g is not None:
                    g_fisher[k] += g.detach() ** 2
            d_real, d_fake = d_logistic_loss(D(real, label), D(fake.detach(), label))
            grads = torch.autograd.grad(d_real + d_fake, list(d_params.values()), allow_unused=True)
            for k, g in zip(d_params, grads):
                if g is not None:
                    d_fisher[k] += g.detach() ** 2
    finally:
        for p, flag in zip(wanted, was):
            p.requires_grad_(flag)
    return {k: v / samples for k, v in g_fisher.items()}, {k: v / samples for k, v in d_fisher.items()}


class DiscriminatorEMA:
    """D's moving average (the official ``d_ema``, accumulated like ``g_ema`` every iteration), which
    the Fisher is computed on. A mixin for a method that has ``self.D``: call ``attach_d_ema`` after
    building D (it starts from the source's D, as ``d_ema.load_state_dict(ckpt["d"])``)."""

    def attach_d_ema(self) -> None:
        self.D_ema = copy.deepcopy(self.D).requires_grad_(False)

    def update_d_ema(self, decay: float) -> None:
        update_ema(self.D_ema, self.D, decay)
