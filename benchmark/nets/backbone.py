"""The backbone contract: G and D of every registered StyleGAN share one vocabulary of parts.

A backbone is registered by name in ``BACKBONES`` as its config class (a frozen dataclass:
``benchmark.nets.stylegan.BackboneConfig`` for ``stylegan1``, ``benchmark.nets.stylegan2.
StyleGAN2Config`` for ``stylegan2``). A config knows its shape and builds its networks
(``config.generator(n_classes)``, ``config.discriminator(n_classes)``), and carries the backbone's
official training recipe (``recipe``: ``TrainConfig`` fields), which suites on that backbone
start from. Methods speak only this vocabulary, never a backbone's classes:

Generator (``BackboneGenerator``): ``mapping(z, labels) -> w`` (B, style_dim), ``make_noise``,
``forward(z, labels, noise, mix_z, crossover, return_block_outputs)``, and ``parts()`` naming
``mapping``, ``block{r}`` for r = 4 .. resolution (what runs at r px), ``to_rgb`` (the last
to_rgb) and, when conditional, ``class_embed`` (a zero-initialised embedding added to z before
the mapping network, so a conditional G built from an unconditional source starts as the source).

Discriminator (``BackboneDiscriminator``): ``features(x) -> (h, {r: block output})`` with blocks
keyed by their *input* resolution, ``head(h, labels) -> logits (B,)``, and ``parts()`` naming
``from_rgb``, ``block{r}`` for r = resolution .. 4, ``linear`` (the last layer) and, when
conditional, ``class_projection`` (zero-initialised projection, Miyato & Koyama 2018).

A method that cannot run on a backbone says why in ``Method.unsupported_backbones``; the dry run
refuses such a cell in one line.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.registry import Registry

BACKBONES: Registry = Registry(
    "backbone",
    contract="a frozen config dataclass with name, resolution, style_dim, image_channels, resolutions, n_styles "
    "(style inputs of the synthesis network), recipe (TrainConfig fields of the official training recipe), "
    "to_dict(), generator(n_classes) -> BackboneGenerator and discriminator(n_classes) -> BackboneDiscriminator",
    plugins=("benchmark.nets.stylegan", "benchmark.nets.stylegan2"),
)


class BackboneGenerator(nn.Module):
    """Base of every backbone's generator: the marker the harness finds a G by (mapping network
    learning rates, style mixing), and the vocabulary methods address it with (module docstring).

    A backbone keeps its mapping MLP as ``style`` (PixelNorm first, as rosinality's keys have it) and,
    when conditional, its label path as ``class_embed``; ``mapping`` is shared.
    """

    n_classes: int

    def mapping(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """w (B, style_dim) from z (B, style_dim); a conditional G adds its class embedding to z first."""
        if self.n_classes:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            z = z + self.class_embed(labels)
        return self.style(z)

    def parts(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    @property
    def mapping_network(self) -> nn.Module:
        """The z -> w MLP (its parameters take ``train.mapping_lr_mult``)."""
        return self.parts()["mapping"]


class BackboneDiscriminator(nn.Module):
    """Base of every backbone's discriminator (module docstring): a backbone gives ``features`` and
    ``logit`` (its last layer, ``linear``); the head and its label path are shared.

    The conditional label path is a projection (Miyato & Koyama 2018): ``class_projection``, an
    embedding zero-initialised by the backbone, adds <embed(y), h> to the logit, so a conditional D
    built from an unconditional source scores as the source at step 0.
    """

    n_classes: int

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        raise NotImplementedError

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        """(B, 1) from the final feature h (B, C): the backbone's last layer."""
        raise NotImplementedError

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B,) from the final feature; the projection term is added when conditional."""
        logits = self.logit(h).squeeze(1)
        if self.n_classes:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            logits = logits + (self.class_projection(labels) * h).sum(1)
        return logits

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x)[0], labels)

    def parts(self) -> dict[str, nn.Module]:
        raise NotImplementedError


def backbone_config(raw: dict, where: str = "backbone"):
    """A backbone config from a suite's ``backbone:`` section: ``name`` (default ``stylegan1``) picks
    the registered config class, the other keys are its fields.

    Raises:
        BenchmarkError: an unknown backbone name or field, or an invalid value.
    """
    raw = dict(raw)
    cls = BACKBONES.get(raw.pop("name", "stylegan1"))
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(valid))
    if unknown:
        raise BenchmarkError(
            f"{where}: unknown key(s) {', '.join(unknown)} for backbone {cls.name!r}; "
            f"valid keys: name, {', '.join(valid)}"
        )
    try:
        return cls(**raw)
    except (TypeError, ValueError) as exc:
        raise BenchmarkError(f"{where}: {exc}") from None
