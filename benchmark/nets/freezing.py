"""Freezing by part name: methods say *what* trains ("D block32", "G mapping"), never module indices.

``net.parts()`` (see stylegan.py) maps names such as ``mapping``, ``block16``, ``to_rgb``,
``from_rgb`` and ``linear`` to modules; these helpers turn a list of names into parameters.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def parameters_of(net: nn.Module, part_names: Iterable[str]) -> list[nn.Parameter]:
    """Parameters of the named parts of ``net`` (a network with a ``parts()`` method)."""
    parts = net.parts()
    params: list[nn.Parameter] = []
    for name in part_names:
        if name not in parts:
            raise KeyError(f"{type(net).__name__} has no part {name!r}; parts: {', '.join(parts)}")
        params.extend(parts[name].parameters())
    return params


def set_trainable(target: nn.Module | Iterable[nn.Parameter], flag: bool) -> None:
    """Set ``requires_grad`` on a module's parameters or on an iterable of parameters."""
    params = target.parameters() if isinstance(target, nn.Module) else target
    for p in params:
        p.requires_grad_(flag)


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def count_parameters(params: Iterable[nn.Parameter]) -> int:
    """Number of distinct scalars (a parameter shared by two modules counts once)."""
    return sum(p.numel() for p in {id(p): p for p in params}.values())


def frozen_reference(net: nn.Module) -> nn.Module:
    """Turn ``net``, in place, into a frozen reference copy (a source G or D kept for a loss).

    Every parameter and buffer becomes a non-persistent buffer: the copy follows ``.to(device)``
    with its owner, is never optimised, and stays out of checkpoints (``state_dict``), which hold
    only what training changes. Names are kept, so ``named_buffers()`` pairs with the trained
    network's ``named_parameters()`` (L2-SP). The forward code is unchanged because a buffer is
    read through the same attribute as the parameter it replaces.
    """
    for module in net.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            delattr(module, name)
            module.register_buffer(name, param.detach(), persistent=False)
        for name, buffer in list(module.named_buffers(recurse=False)):
            module.register_buffer(name, buffer, persistent=False)
    return net.eval()
