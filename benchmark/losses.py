"""The shared GAN losses: small pure functions every adversarial method uses.

The recipe is the one FreezeD, MineGAN and Hyper-Modulation fine-tune StyleGAN v1 with
(rosinality/style-based-gan-pytorch train.py): the non-saturating logistic loss and an R1
penalty of gamma / 2 * ||grad_x D(x)||^2 on reals. StyleGAN2's recipe (rosinality/stylegan2-pytorch
train.py) adds the path-length penalty.
"""

from __future__ import annotations

import math

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


def path_length_penalty(
    images: torch.Tensor, ws: torch.Tensor, mean_length: torch.Tensor, decay: float, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2's path-length penalty (Karras et al. 2020; rosinality stylegan2-pytorch train.py
    ``g_path_regularize``): E (||J_w^T y|| - a)^2 with y the image-shaped ``noise``, a the running
    mean of the lengths.

    Args:
        images: (B, C, H, W) generated from ``ws`` (with the graph kept).
        ws: (B, n_styles, style_dim) the per-layer styles the images came from.
        mean_length: 0-d running mean a of the path lengths (0 at the start of training).
        decay: a's update rate (0.01 in the official code).
        noise: standard normal draws shaped like ``images``; scaled here by 1 / sqrt(H * W) as officially.

    Returns:
        The penalty (differentiable w.r.t. the generator) and the updated running mean (detached).
    """
    noise = noise / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    lengths = grad.pow(2).sum(2).mean(1).sqrt()
    mean = mean_length + decay * (lengths.mean() - mean_length)
    return (lengths - mean).pow(2).mean(), mean.detach()
