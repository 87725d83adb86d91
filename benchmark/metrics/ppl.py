"""Perceptual path length (Karras et al., StyleGAN, 2019), as stylegan2-ada-pytorch computes it.

NVIDIA's definition (metrics/perceptual_path_length.py, ``compute_ppl`` and ``PPLSampler``):

1. Draw latent pairs z0, z1 ~ N(0, I) and t ~ U(0, 1) (``sampling="full"``) or t = 0
   (``sampling="end"``); a class label per pair for a conditional generator.
2. ``space="z"``: spherical interpolation (slerp) of z0, z1 at t and t + epsilon, then the mapping
   network; ``space="w"``: the mapping network on z0, z1, then linear interpolation of w at t and
   t + epsilon.
3. Synthesise both images of a pair with the same noise maps (NVIDIA randomises its constant noise
   buffers once per batch and renders both halves with them).
4. ``crop=True`` (the face metrics ``ppl_zfull`` etc.) keeps rows 3/8..7/8 and columns 2/8..6/8 of a
   square image; images above 256 px are box-downsampled to 256; a gray image is repeated to RGB.
5. The pair's distance is LPIPS / epsilon^2, with epsilon = 1e-4.
6. Values below the 1st percentile (``interpolation="lower"``) or above the 99th (``"higher"``)
   are dropped; PPL is the mean of the rest.

Differences, all deliberate: the LPIPS is the ``lpips`` package's LPIPS-VGG v0.1 (the same network
as intra-cluster LPIPS; NVIDIA's ``vgg16.pt`` is a TorchScript port of the same LPIPS-VGG, taking
[0, 255] images, where this one takes [-1, 1]); the latents, t, labels and noise come from a
generator seeded by ``seed``, so a cell's PPL is reproducible; NVIDIA samples 50,000 pairs (here
``n_samples``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.errors import BenchmarkError

EPSILON = 1e-4
SPACES = ("z", "w")
SAMPLINGS = ("end", "full")


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of unit-normalised rows of ``a`` and ``b`` at ``t`` (B, 1); unit-norm result."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    d = a * torch.cos(p) + c * torch.sin(p)
    return d / d.norm(dim=-1, keepdim=True)


@dataclass
class GeneratorParts:
    """What PPL calls on a generator: its mapping and synthesis halves and its noise maps.

    Args:
        style_dim: the size of z.
        n_classes: 0 for an unconditional generator, else the number of classes.
        mapping: ``mapping(z, labels) -> w``.
        synthesis: ``synthesis(w, noise) -> images`` in about [-1, 1].
        make_noise: ``make_noise(batch, device=..., generator=...) -> noise`` (what ``synthesis`` takes).
    """

    style_dim: int
    n_classes: int
    mapping: object
    synthesis: object
    make_noise: object


def generator_parts(G) -> GeneratorParts:
    """The parts of a generator: its own ``ppl_parts()`` if it has one, else those both StyleGAN backbones
    share: ``mapping(z, labels) -> w``, ``synthesis(ws, noise)`` on per-layer styles (B, n_styles, D),
    ``make_noise``. As in NVIDIA's code, w is broadcast to every layer before it is interpolated."""
    if hasattr(G, "ppl_parts"):
        return G.ppl_parts()
    if all(hasattr(G, name) for name in ("mapping", "synthesis", "make_noise", "config")):
        n_styles = G.config.n_styles
        return GeneratorParts(
            style_dim=G.config.style_dim,
            n_classes=getattr(G, "n_classes", 0),
            mapping=lambda z, labels: G.mapping(z, labels)[:, None].expand(-1, n_styles, -1),
            synthesis=G.synthesis,
            make_noise=G.make_noise,
        )
    raise BenchmarkError(
        f"ppl: the generator {type(G).__name__} has no mapping and synthesis halves that PPL can interpolate "
        "between (give it a ppl_parts() method), or drop ppl from eval.metrics"
    )


def _prepare(images: torch.Tensor, crop: bool) -> torch.Tensor:
    if crop:
        if images.shape[2] != images.shape[3]:
            raise BenchmarkError(f"ppl: crop needs square images, got {images.shape[2]} x {images.shape[3]}")
        c = images.shape[2] // 8
        images = images[:, :, c * 3 : c * 7, c * 2 : c * 6]
    factor = images.shape[-1] // 256  # NVIDIA: G.img_resolution // 256, on the (cropped) image as it does
    if factor > 1:
        b, ch, h, w = images.shape
        images = images.reshape(b, ch, h // factor, factor, w // factor, factor).mean([3, 5])
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return images


@torch.no_grad()
def path_distances(
    parts: GeneratorParts,
    distance,
    n_samples: int,
    *,
    epsilon: float = EPSILON,
    space: str = "w",
    sampling: str = "end",
    crop: bool = False,
    batch_size: int = 16,
    seed: int = 0,
    device="cpu",
) -> np.ndarray:
    """The ``n_samples`` values LPIPS(pair) / epsilon^2 that PPL filters and averages (float64)."""
    if space not in SPACES or sampling not in SAMPLINGS:
        raise BenchmarkError(f"ppl: space must be one of {SPACES} and sampling one of {SAMPLINGS}")
    generator = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n_samples, batch_size):
        b = min(batch_size, n_samples - start)
        t = torch.rand(b, generator=generator) * (1 if sampling == "full" else 0)
        z0, z1 = torch.randn(2 * b, parts.style_dim, generator=generator).to(device).chunk(2)
        labels = torch.randint(parts.n_classes, (b,), generator=generator).to(device) if parts.n_classes else None
        pair_labels = torch.cat([labels, labels]) if labels is not None else None
        t = t.to(device).unsqueeze(1)
        if space == "w":
            w0, w1 = parts.mapping(torch.cat([z0, z1]), pair_labels).chunk(2)
            tw = t.view(b, *([1] * (w0.ndim - 1)))
            w = torch.cat([w0.lerp(w1, tw), w0.lerp(w1, tw + epsilon)])
        else:
            w = parts.mapping(torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)]), pair_labels)
        noise = [torch.cat([n, n]).to(device) for n in parts.make_noise(b, device="cpu", generator=generator)]
        images = _prepare(parts.synthesis(w, noise).float(), crop)
        first, second = images.chunk(2)
        out.append((distance(first, second).double() / epsilon**2).cpu())
    return torch.cat(out).numpy()


def filtered_mean(distances: np.ndarray) -> float:
    """NVIDIA's PPL from the pair distances: the mean of those within the 1st and 99th percentiles."""
    lo = np.percentile(distances, 1, method="lower")
    hi = np.percentile(distances, 99, method="higher")
    return float(np.extract(np.logical_and(distances >= lo, distances <= hi), distances).mean())


def perceptual_path_length(G, distance, n_samples: int = 50_000, **options) -> float:
    """PPL of generator ``G`` (lower is smoother), NVIDIA's definition (module docstring).

    Args:
        G: the generator (StyleGAN's ``mapping``/``generator`` halves, or one with ``ppl_parts()``).
        distance: an ``LPIPSDistance`` (two (B, 3, H, W) batches in [-1, 1] -> (B,)).
        n_samples: latent pairs (NVIDIA: 50,000).
        options: ``epsilon`` (1e-4), ``space`` ("w" or "z"), ``sampling`` ("end" or "full"), ``crop``
            (faces: True in NVIDIA's ``ppl_*``, False in ``ppl2_wend``), ``batch_size``, ``seed``, ``device``.
    """
    return filtered_mean(path_distances(generator_parts(G), distance, n_samples, **options))
