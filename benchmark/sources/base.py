"""The source contract: a pretrained GAN's backbone shape and its G and D weights.

A source loader is registered by name in ``SOURCES`` and called as
``loader(path, cache_dir=..., device=..., **options) -> Source``. Real sources read a checkpoint
from a path (rosinality StyleGAN v1); toy sources are pretrained by the harness and cached.
Methods never read checkpoints themselves: they ask the source for fresh networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from benchmark.errors import BenchmarkError, abbreviate
from benchmark.nets import BackboneDiscriminator, BackboneGenerator
from benchmark.registry import Registry

SOURCES: Registry = Registry(
    "source",
    contract="a callable loader(path, *, cache_dir, device, **options) -> Source with G (EMA) and D weights; "
    "a loader of a file may carry preflight(path) -> str, which --dry-run calls to check the file without loading it, "
    "and backbone (the registered backbone name its files hold); "
    "a loader that pretrains its source carries trained_by_harness = True and takes backbone, name and progress "
    "instead of a path and a resolution",
    plugins=(
        "benchmark.sources.nvlabs",
        "benchmark.sources.rosinality",
        "benchmark.sources.rosinality2",
        "benchmark.sources.toy",
    ),
)

# Keys a conditional network adds on top of an unconditional source (zero-initialised).
_LABEL_PATH_KEYS = ("class_embed.", "class_projection.")

# Attribute on a generator parameter built from a source: its value in the source's EMA generator,
# where the harness starts the parameter's moving average (``Method.attach_ema``).
EMA_START = "_ema_start"


@dataclass
class Source:
    """A pretrained (or, with no weights, randomly initialised) GAN of a registered backbone.

    A pretrained GAN has two generators: the one the optimizer trained (rosinality's
    ``generator``) and its moving average (``g_running``), which the source's samples come from.
    Fine-tuning continues the first and averages from the second (FreezeD and MineGAN
    finetune.py), so a Source keeps both.

    Args:
        name: the source's name in the suite.
        config: the backbone's config (``benchmark.nets.BACKBONES``), which builds its networks.
        g_state: the trained generator's state dict (``generator``), where fine-tuning starts.
        d_state: the discriminator's state dict; None when the source has no D.
        provenance: where the weights came from (path, hash, pretraining config), for run folders.
        g_ema_state: the EMA generator's state dict (``g_running``); None when the source has only
            one generator, which then serves as both.
        without_d: for a file that holds no discriminator, what it is and which file to use instead
            (the one-line error a method that needs D gets).
        latent_avg: the file's tracked mean w (style_dim,) for truncation, where it keeps one
            (convert_weight.py's ``latent_avg``, NVIDIA's ``w_avg``); None otherwise.
    """

    name: str
    config: Any  # a registered backbone's config (BackboneConfig, StyleGAN2Config)
    g_state: dict[str, torch.Tensor] | None
    d_state: dict[str, torch.Tensor] | None
    provenance: dict = field(default_factory=dict)
    g_ema_state: dict[str, torch.Tensor] | None = None
    without_d: str = "the source has no discriminator, which this method needs"
    latent_avg: torch.Tensor | None = None

    @classmethod
    def untrained(cls, config, name: str = "random-init") -> Source:
        return cls(name, config, None, None, {"kind": "random-init"})

    def build_generator(self, n_classes: int = 0, pretrained: bool = True, ema: bool = False) -> BackboneGenerator:
        """A new generator (with a zero-initialised label path when n_classes > 0).

        Args:
            n_classes: classes of the label path (0: unconditional).
            pretrained: load the source's weights (else random initialisation).
            ema: load the EMA generator (``g_running``) instead of the trained one. Without it, each
                parameter is marked with its EMA value (``EMA_START``) so the harness's moving
                average of a method's G starts from ``g_running``.
        """
        G = self.config.generator(n_classes)
        if pretrained:
            ema_state = self.g_ema_state if self.g_ema_state is not None else self.g_state
            _load(G, ema_state if ema else self.g_state, f"source {self.name!r} generator")
            if not ema and self.g_ema_state is not None:
                for key, p in G.named_parameters():
                    if key in self.g_ema_state:
                        setattr(p, EMA_START, self.g_ema_state[key])
        return G

    def build_discriminator(self, n_classes: int = 0, pretrained: bool = True) -> BackboneDiscriminator:
        if pretrained and self.d_state is None:
            raise BenchmarkError(f"source {self.name!r}: {self.without_d}")
        D = self.config.discriminator(n_classes)
        if pretrained:
            _load(D, self.d_state, f"source {self.name!r} discriminator")
        return D


def reinitialize_parts(G: BackboneGenerator, part_names: list[str]) -> None:
    """Give the named parts of a source-built generator fresh random weights (torch's global RNG),
    as a new module would have; their moving average then starts from the new weights too."""
    fresh = G.config.generator(G.n_classes).to(next(G.parameters()).device)
    parts, fresh_parts = G.parts(), fresh.parts()
    for name in part_names:
        parts[name].load_state_dict(fresh_parts[name].state_dict())
        for p in parts[name].parameters():
            if hasattr(p, EMA_START):
                delattr(p, EMA_START)


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


def source_backbone(kind: str) -> str | None:
    """The backbone a source kind's files hold (a loader's ``backbone`` attribute), or None for a kind
    that builds whatever backbone the suite names (the harness-pretrained toy sources)."""
    return getattr(SOURCES.get(kind), "backbone", None)


def trained_by_harness(kind: str) -> bool:
    """Whether sources of ``kind`` are pretrained by the harness (no checkpoint; named budgets shorten them)."""
    return kind in SOURCES and bool(getattr(SOURCES.get(kind), "trained_by_harness", False))


def load_source(kind: str, path=None, **options) -> Source:
    """Load a registered source kind, e.g. ``load_source("rosinality-stylegan1", path, resolution=256)``."""
    return SOURCES.get(kind)(path, **options)
