"""The feature-extractor contract and its registry.

Metrics compare generated and real images in a feature space. An extractor is registered by
name and built as ``builder(cache_dir=..., device=..., **options)``; it is an ``nn.Module`` in
eval mode mapping images in [-1, 1] of shape (B, C, H, W) to features (B, dim), doing its own
resizing and channel handling, so a metric never depends on how a method stores images. Every
metric records the extractor's ``name``: an FID on digits-classifier features is not comparable
to one on Inception features, and tables say which was used.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from benchmark.registry import Registry

FEATURES: Registry = Registry(
    "feature extractor",
    contract="builder(cache_dir=..., device=..., **options) -> FeatureExtractor: an eval-mode nn.Module, "
    "images in [-1, 1] (B, C, H, W) -> features (B, dim); a builder that reads a weights file also carries "
    "preflight(**options) -> str, which --dry-run calls to check the file without loading it",
)


class FeatureExtractor(nn.Module):
    """Base class: subclasses set ``name`` and ``dim`` and implement ``forward``.

    Extractors that can serve a perceptual loss (BSA, GLO) also implement ``feature_maps``:
    the intermediate activations the loss compares, from the image towards the output.
    """

    name: ClassVar[str] = ""
    dim: int = 0

    def train(self, mode: bool = True) -> FeatureExtractor:
        # Features always come from the eval-mode network (FreezeD's train-mode Inception doubled its FID).
        return super().train(False)

    # Input scalings besides the network's own that ``feature_maps`` accepts (VGG16: "caffe").
    input_scales: tuple[str, ...] = ()

    def feature_maps(self, images: torch.Tensor, input_scale: str | None = None) -> list[torch.Tensor]:
        """Intermediate activations for perceptual losses (differentiable with respect to ``images``).

        ``input_scale`` None feeds the network its own preprocessing; another name (one of
        ``input_scales``) feeds the inputs an official code used with it.
        """
        raise NotImplementedError(f"{self.name} provides no feature maps for a perceptual loss")

    @torch.no_grad()
    def extract(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Features of many images, in batches, as float32 on the CPU."""
        device = next(self.parameters()).device
        out = [self(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
        return torch.cat(out)


def build_extractor(name: str, *, cache_dir=None, device="cpu", **options) -> FeatureExtractor:
    extractor = FEATURES.get(name)(cache_dir=cache_dir, device=device, **options)
    return extractor.to(device).eval()


def check_extractor(name: str, **options) -> str | None:
    """What ``--dry-run`` can check of an extractor without building it: that its weights file is there and
    is the right kind. Returns a line saying what was found, or None for an extractor with no file to check."""
    preflight = getattr(FEATURES.get(name), "preflight", None)
    return preflight(**options) if preflight is not None else None
