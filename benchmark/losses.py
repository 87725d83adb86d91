"""The shared GAN losses: small pure functions every adversarial method uses.

The recipe is the one FreezeD, MineGAN and Hyper-Modulation fine-tune StyleGAN v1 with
(rosinality/style-based-gan-pytorch train.py): the non-saturating logistic loss and an R1
penalty of gamma / 2 * ||grad_x D(x)||^2 on reals.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """softplus(-D(x)) on reals and softplus(D(G(z))) on fakes, each averaged over the batch."""
    return F.softplus(-real_logits).mean(), F.softplus(fake_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """softplus(-D(G(z))): the generator's non-saturating loss."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor, gamma: float) -> torch.Tensor:
    """gamma / 2 * E ||grad_x D(x)||^2 on real images (Mescheder et al. 2018).

    ``real_images`` must require grad and ``real_logits`` must come from them; the graph is kept
    so the penalty itself can be differentiated with respect to D's parameters.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return gamma / 2 * grad.pow(2).flatten(1).sum(1).mean()
