"""Transfer methods, one module per family; importing this package registers them all."""

from methods import adafm, finetune, hypermod, minegan, reconstruction  # noqa: F401  (registers)
from methods.base import METHODS, AdversarialMethod, Method, Stage, TargetSpec, build_method

__all__ = ["METHODS", "AdversarialMethod", "Method", "Stage", "TargetSpec", "build_method"]
