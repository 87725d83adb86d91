"""Swap the backbone's convolutions for re-parameterised ones (AdaFM, Hyper-Modulation).

The equalized-lr convs of the synthesis blocks come in two kinds: ``EqualConv2dInner`` (weight
``(out, in, k, k)`` stored unscaled as ``weight_orig``) and, from ``fused_min_resolution`` up,
``FusedUpsample`` (a transposed conv, weight ``(in, out, k, k)`` stored as ``weight``). A method
that modulates conv kernels replaces both with its own module; the state-dict keys of the
replaced convs change, which is fine for parts a method owns.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from benchmark.nets.layers import EqualConv2dInner, FusedUpsample


def swap_convs(
    module: nn.Module,
    plain: Callable[[EqualConv2dInner], nn.Module],
    fused: Callable[[FusedUpsample], nn.Module],
) -> list[nn.Module]:
    """Replace every ``EqualConv2dInner`` and ``FusedUpsample`` inside ``module``; returns the replacements.

    Args:
        module: e.g. one synthesis block (``G.parts()["block64"]``).
        plain: builds the replacement of an ``EqualConv2dInner`` from it.
        fused: builds the replacement of a ``FusedUpsample`` from it.
    """
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, (EqualConv2dInner, FusedUpsample))]
    replacements = []
    for name, conv in found:
        parent_name, _, child = name.rpartition(".")
        replacement = plain(conv) if isinstance(conv, EqualConv2dInner) else fused(conv)
        setattr(module.get_submodule(parent_name), child, replacement)
        replacements.append(replacement)
    return replacements
