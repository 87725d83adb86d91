"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training generative adversarial
networks with limited data"), as an option of the shared step (``train.ada``).

Definition (NVlabs/stylegan2-ada-pytorch training/loss.py and training/training_loop.py): every
image D sees is augmented with probability ``p``: the reals and the fakes of the D step, the
fakes of the G step, and the reals of R1, whose gradient is taken with respect to the images
*before* augmentation (``run_D`` augments inside). ``p`` starts at 0 and every ``ada_every`` D
steps moves by ``sign(r_t - ada_target) * (batch images seen since the last move) / ada_length``,
clipped to [0, 1], where ``r_t = E[sign(D(real))]`` over those images (the overfitting
heuristic). Here ``r_t`` is read from the D step's real logits only, as rosinality's train.py
does (``ada_augment.tune(real_pred)``); NVlabs also counts the R1 step's.

Augmentations: the ``bgc`` pipeline (NVlabs train.py's default), with the constants of
rosinality/stylegan2-pytorch non_leaking.py, which the CDC line's ``--augment`` runs: x-flip,
90-degree rotations, integer translation (uniform +-0.125 of the size, rounded), isotropic scale
(lognormal, std 0.2 ln 2), pre-rotation (uniform, probability 1 - sqrt(1 - p)), anisotropic scale
(lognormal, std 0.2 ln 2), post-rotation (as pre), fractional translation (normal, std 0.125);
then brightness (normal, std 0.2), contrast (lognormal, std 0.5 ln 2), luma flip, hue rotation
(uniform), saturation (lognormal, std ln 2). Each transform is applied per image with
probability ``p``. Constants: ``ada_target`` 0.6 and ``ada_length`` 500,000 images are
rosinality's (and NVlabs' ``ada_kimg`` 500 from scratch; NVlabs sets 100 when resuming from a
pretrained pickle); ``ada_every`` 4 is NVlabs' ``ada_interval`` (rosinality's train.py hard-codes
8; CDC's older copy moves p after every 256 real images by ``ada_target / ada_length`` per image).

Departures, named: the geometric transform is resampled once with bilinear ``grid_sample`` and
reflection padding, at the image's own size; rosinality and NVlabs upsample 2x with a SYM6
wavelet filter, sample, and downsample again (anti-aliasing). With p = 0 the images pass through
untouched and no random number is drawn, so an ADA run at p = 0 is bit for bit the plain run
(the originals still resample an identity transform). Grayscale images take the colour
transforms' luma part (NVlabs' rule for one channel). Random draws come from the training RNG,
so a resumed run draws the same augmentations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LUMA_AXIS = torch.full((3,), 1 / math.sqrt(3))


class AdaptiveAugment:
    """The augmentation probability ``p`` and its controller (rosinality's ``AdaptiveAugment``).

    Args:
        target: the r_t that ``p`` steers toward (0.6).
        length: images over which ``p`` can move by 1 (500,000).
        every: D steps between two moves of ``p`` (4).
        p: the starting probability.
    """

    def __init__(self, target: float = 0.6, length: int = 500_000, every: int = 4, p: float = 0.0):
        self.target, self.length, self.every = float(target), int(length), int(every)
        self.p = float(p)
        self.signs = 0.0  # sum of sign(D(real)) since the last move
        self.count = 0  # real logits seen since the last move
        self.steps = 0  # D steps since the last move
        self.r_t = 0.0

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor) -> None:
        """Accumulate sign(D(real)) of one D step; every ``every`` steps move ``p``."""
        self.signs += float(torch.sign(real_logits.detach().float()).sum())
        self.count += real_logits.numel()
        self.steps += 1
        if self.steps % self.every == 0:
            self.r_t = self.signs / self.count
            sign = 1.0 if self.r_t > self.target else -1.0
            self.p = min(1.0, max(0.0, self.p + sign * self.count / self.length))
            self.signs, self.count, self.steps = 0.0, 0, 0

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return augment(images, self.p, generator)

    def state_dict(self) -> dict:
        return {"p": self.p, "signs": self.signs, "count": self.count, "steps": self.steps, "r_t": self.r_t}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.signs, self.r_t = float(state["p"]), float(state["signs"]), float(state["r_t"])
        self.count, self.steps = int(state["count"]), int(state["steps"])


# -- random parameters and matrices ------------------------------------------------------------
def _where(p: float, n: int, transform: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each of the n transforms kept with probability p, else the identity."""
    keep = (torch.rand(n, generator=g) < p).float().view(n, 1, 1)
    eye = torch.eye(transform.shape[-1]).expand_as(transform)
    return keep * transform + (1 - keep) * eye


def _mat3(n: int) -> torch.Tensor:
    return torch.eye(3).repeat(n, 1, 1)


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _mat3(len(tx))
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = _mat3(len(sx))
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate(theta: torch.Tensor) -> torch.Tensor:
    m = _mat3(len(theta))
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _lognormal(n: int, std: float, g: torch.Generator) -> torch.Tensor:
    return torch.exp(torch.randn(n, generator=g) * std)


def sample_geometry(p: float, n: int, height: int, width: int, g: torch.Generator) -> torch.Tensor:
    """(n, 3, 3) forward transforms in pixel units about the image centre (non_leaking.py ``sample_affine``)."""
    m = _mat3(n)
    flip = torch.randint(2, (n,), generator=g).float()
    m = _where(p, n, _scale(1 - 2 * flip, torch.ones(n)), g) @ m
    quarter = torch.randint(4, (n,), generator=g).float()
    m = _where(p, n, _rotate(-math.pi / 2 * quarter), g) @ m
    shift = (torch.rand(2, n, generator=g) * 0.25 - 0.125) * torch.tensor([[height], [width]])
    m = _where(p, n, _translate(torch.round(shift[1]), torch.round(shift[0])), g) @ m
    s = _lognormal(n, 0.2 * math.log(2), g)
    m = _where(p, n, _scale(s, s), g) @ m
    p_rot = 1 - math.sqrt(1 - p)  # pre- and post-rotation together are applied with probability p
    m = _where(p_rot, n, _rotate(-(torch.rand(n, generator=g) * 2 - 1) * math.pi), g) @ m
    s = _lognormal(n, 0.2 * math.log(2), g)
    m = _where(p, n, _scale(s, 1 / s), g) @ m
    m = _where(p_rot, n, _rotate(-(torch.rand(n, generator=g) * 2 - 1) * math.pi), g) @ m
    shift = torch.randn(2, n, generator=g) * 0.125
    return _where(p, n, _translate(shift[1] * width, shift[0] * height), g) @ m


def sample_color(p: float, n: int, g: torch.Generator) -> torch.Tensor:
    """(n, 4, 4) colour transforms of RGB in [-1, 1] (non_leaking.py ``sample_color``)."""
    eye = torch.eye(4).repeat(n, 1, 1)
    c = eye.clone()
    b = torch.randn(n, generator=g) * 0.2
    t = eye.clone()
    t[:, :3, 3] = b[:, None]
    c = _where(p, n, t, g) @ c
    s = _lognormal(n, 0.5 * math.log(2), g)
    t = eye.clone()
    t[:, :3, :3] *= s.view(n, 1, 1)
    c = _where(p, n, t, g) @ c
    axis = torch.cat([LUMA_AXIS, torch.zeros(1)])
    outer = torch.outer(axis, axis)
    flip = torch.randint(2, (n,), generator=g).float()
    c = _where(p, n, eye - 2 * outer * flip.view(n, 1, 1), g) @ c
    theta = (torch.rand(n, generator=g) * 2 - 1) * math.pi
    u = LUMA_AXIS
    cross = torch.tensor([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    rot = eye.clone()
    cos, sin = torch.cos(theta).view(n, 1, 1), torch.sin(theta).view(n, 1, 1)
    rot[:, :3, :3] = cos * torch.eye(3) + sin * cross + (1 - cos) * torch.outer(u, u)
    c = _where(p, n, rot, g) @ c
    s = _lognormal(n, math.log(2), g)
    c = _where(p, n, outer + (eye - outer) * s.view(n, 1, 1), g) @ c
    return c


# -- applying them -------------------------------------------------------------------------------
def apply_geometry(images: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Resample ``images`` under the forward transforms (pixel units about the centre), reflecting at the borders."""
    n, _, h, w = images.shape
    to_unit = torch.diag(
        torch.tensor([2 / w, 2 / h, 1.0])
    )  # centred pixels -> grid_sample's units (align_corners=False)
    theta = to_unit @ torch.linalg.inv(forward) @ torch.linalg.inv(to_unit)
    grid = F.affine_grid(theta[:, :2].to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def apply_color(images: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    """RGB: x -> A x + b per pixel; one channel: the luma row's gain and offset (NVlabs' rule)."""
    color = color.to(images)
    if images.shape[1] == 1:
        gain = color[:, :3, :3].mean(1).sum(1).view(-1, 1, 1, 1)
        offset = color[:, :3, 3].mean(1).view(-1, 1, 1, 1)
        return images * gain + offset
    out = torch.einsum("nij,njhw->nihw", color[:, :3, :3], images)
    return out + color[:, :3, 3, None, None]


def augment(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """The ``bgc`` augmentation of a batch with probability ``p``; at p = 0 the batch itself (nothing drawn)."""
    if p <= 0:
        return images
    n, _, h, w = images.shape
    images = apply_geometry(images, sample_geometry(p, n, h, w, generator))
    return apply_color(images, sample_color(p, n, generator))
