"""Transfer methods, one module per family; importing this package registers them all."""

from methods import (  # noqa: F401  (importing registers each family)
    adafm,
    finetune,
    freeze,
    hypermod,
    minegan,
    reconstruction,
    regularized,
    scaleshift,
)
from methods.base import METHODS, AdversarialMethod, Method, Stage, TargetSpec, build_method

__all__ = ["METHODS", "AdversarialMethod", "Method", "Stage", "TargetSpec", "build_method"]
