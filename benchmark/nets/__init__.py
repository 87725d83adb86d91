"""Networks: the registered StyleGAN backbones (``BACKBONES``) and helpers to address their parts by name."""

from benchmark.nets.backbone import BACKBONES, BackboneDiscriminator, BackboneGenerator, backbone_config
from benchmark.nets.freezing import (
    count_parameters,
    frozen_reference,
    parameters_of,
    set_trainable,
    trainable_parameters,
)
from benchmark.nets.stylegan import BackboneConfig, Discriminator, StyledGenerator

__all__ = [
    "BACKBONES",
    "BackboneConfig",
    "BackboneDiscriminator",
    "BackboneGenerator",
    "Discriminator",
    "StyledGenerator",
    "backbone_config",
    "count_parameters",
    "frozen_reference",
    "parameters_of",
    "set_trainable",
    "trainable_parameters",
]
