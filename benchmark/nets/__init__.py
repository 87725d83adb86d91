"""Networks: the StyleGAN v1 backbone and helpers to address its parts by name."""

from benchmark.nets.freezing import (
    count_parameters,
    frozen_reference,
    parameters_of,
    set_trainable,
    trainable_parameters,
)
from benchmark.nets.stylegan import BackboneConfig, Discriminator, StyledGenerator

__all__ = [
    "BackboneConfig",
    "Discriminator",
    "StyledGenerator",
    "count_parameters",
    "frozen_reference",
    "parameters_of",
    "set_trainable",
    "trainable_parameters",
]
