"""The source contract: a pretrained GAN's backbone shape and its G and D weights.

A source loader is registered by name in ``SOURCES`` and called as
``loader(path, cache_dir=..., device=..., **options) -> Source``. Real sources read a checkpoint
from a path (rosinality StyleGAN v1); toy sources are pretrained by the harness and cached.
Methods never read checkpoints themselves: they ask the source for fresh networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from benchmark.errors import BenchmarkError, abbreviate
from benchmark.nets import BackboneConfig, Discriminator, StyledGenerator
from benchmark.registry import Registry

SOURCES: Registry = Registry(
    "source",
    contract="a callable loader(path, *, cache_dir, device, **options) -> Source with G (EMA) and D weights; "
    "a loader of a file may carry preflight(path) -> str, which --dry-run calls to check the file without loading it",
)

# Keys a conditional network adds on top of an unconditional source (zero-initialised).
_LABEL_PATH_KEYS = ("class_embed.", "class_projection.")


@dataclass
class Source:
    """A pretrained (or, with no weights, randomly initialised) StyleGAN v1.

    Args:
        name: the source's name in the suite.
        config: the backbone shape.
        g_state: the generator's state dict (the EMA generator, ``g_running`` in rosinality).
        d_state: the discriminator's state dict; None when the source has no D.
        provenance: where the weights came from (path, hash, pretraining config), for run folders.
    """

    name: str
    config: BackboneConfig
    g_state: dict[str, torch.Tensor] | None
    d_state: dict[str, torch.Tensor] | None
    provenance: dict = field(default_factory=dict)

    @classmethod
    def untrained(cls, config: BackboneConfig, name: str = "random-init") -> Source:
        return cls(name, config, None, None, {"kind": "random-init"})

    def build_generator(self, n_classes: int = 0, pretrained: bool = True) -> StyledGenerator:
        """A new generator (with a zero-initialised label path when n_classes > 0)."""
        G = StyledGenerator(self.config, n_classes)
        if pretrained:
            _load(G, self.g_state, f"source {self.name!r} generator")
        return G

    def build_discriminator(self, n_classes: int = 0, pretrained: bool = True) -> Discriminator:
        D = Discriminator(self.config, n_classes)
        if pretrained:
            _load(D, self.d_state, f"source {self.name!r} discriminator")
        return D


def _load(net: nn.Module, state: dict | None, what: str) -> None:
    if state is None:
        raise BenchmarkError(f"{what}: the source has no such weights")
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(_LABEL_PATH_KEYS)]
    if missing or unexpected:
        raise BenchmarkError(
            f"{what}: weights do not fit the backbone ({net.config.resolution} px); "
            f"missing keys: {_short(missing)}; unexpected keys: {_short(unexpected)}"
        )


def _short(keys: list[str]) -> str:
    return abbreviate(keys, 5) if keys else "none"


def load_source(kind: str, path=None, **options) -> Source:
    """Load a registered source kind, e.g. ``load_source("rosinality-stylegan1", path, resolution=256)``."""
    return SOURCES.get(kind)(path, **options)
