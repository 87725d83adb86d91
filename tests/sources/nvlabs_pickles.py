"""Pickles in NVIDIA stylegan2-ada-pytorch's layout, written without NVIDIA's code.

A network snapshot is ``pickle.dump({G, D, G_ema, augment_pipe, training_set_kwargs})`` where each
network is a persistent class (torch_utils/persistence.py) that reduces to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, meta = {type, version, module_src,
class_name, state} and state the module's ``__dict__``. :class:`PersistentModule` reduces the same
way; while pickling, :func:`fake_nvidia_modules` puts stand-ins for ``torch_utils.persistence``,
``dnnlib.util`` (EasyDict) and ``dnnlib.tflib.network`` (the TensorFlow Network class) in
``sys.modules`` so that pickle can name them, and removes them afterwards: the files load with
no NVlabs package importable, as users' machines have none.

The key layouts (:func:`generator_layout`, :func:`discriminator_layout`) are NVIDIA's
``state_dict()`` keys, shapes and order for training/networks.py's Generator and Discriminator;
they were compared by hand with the real networks' state dicts for the three configurations
below. Tensors are parameters (``nn.Parameter``) or buffers as in the original, so torch pickles
them as it does NVIDIA's (storages through ``torch.storage._load_from_bytes``).
"""

from __future__ import annotations

import math
import pickle
import re
import sys
import types
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from tests.sources.checkpoints2 import hashed

# The tiny stand-ins for NVIDIA's configurations (train.py cfg_specs): paper256 has half stylegan2's
# channel_base (channel multiplier 1 against 2), 8 mapping layers and mbstd group 8; auto has 2 mapping
# layers. Widths are min(channel_base // r, channel_max), as in NVIDIA's SynthesisNetwork.
CONFIGS = {
    "paper256": dict(resolution=32, z_dim=16, n_mapping=8, channel_base=256, channel_max=16, mbstd=8),
    "auto": dict(resolution=32, z_dim=16, n_mapping=2, channel_base=256, channel_max=16, mbstd=4),
    "stylegan2": dict(resolution=32, z_dim=16, n_mapping=8, channel_base=512, channel_max=16, mbstd=4),
}
# The same configurations at NVIDIA's 256 px sizes (z_dim 512), for key and shape checks on the meta device.
FULL_SIZE = {
    "paper256": dict(resolution=256, z_dim=512, n_mapping=8, channel_base=16384, channel_max=512, mbstd=8),
    "auto": dict(resolution=256, z_dim=512, n_mapping=2, channel_base=16384, channel_max=512, mbstd=4),
    "stylegan2": dict(resolution=256, z_dim=512, n_mapping=8, channel_base=32768, channel_max=512, mbstd=4),
}

NETWORKS_SRC = "# training/networks.py (stand-in): never executed by the reader\n"
STYLEGAN3_SRC = "# training/networks_stylegan3.py (stand-in)\nclass SynthesisInput(torch.nn.Module):\n    pass\n"
# upfirdn2d.setup_filter([1, 3, 3, 1]): the outer product normalised to sum 1.
RESAMPLE_FILTER = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64
BUFFERS = ("resample_filter", "noise_const", "w_avg", "p")  # AugmentPipe.p is a buffer too
LR_MULTIPLIER = 0.01  # MappingNetwork's lr_multiplier


# --------------------------------------------------------------------------------------------
# Layouts


def widths(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    return {4 * 2**i: min(channel_base // (4 * 2**i), channel_max) for i in range(int(math.log2(resolution)) - 1)}


def generator_layout(
    resolution: int,
    z_dim: int,
    n_mapping: int,
    channel_base: int,
    channel_max: int,
    img_channels: int = 3,
    c_dim: int = 0,
    **_,
) -> dict[str, tuple[int, ...]]:
    """``Generator(z_dim, c_dim, w_dim=z_dim, ...).state_dict()``'s keys and shapes, in its order."""
    w, layout = z_dim, {}
    ch = widths(resolution, channel_base, channel_max)

    def layer(prefix: str, cin: int, cout: int, r: int) -> None:
        layout.update(
            {f"{prefix}.weight": (cout, cin, 3, 3), f"{prefix}.noise_strength": (), f"{prefix}.bias": (cout,)}
        )
        layout.update({f"{prefix}.resample_filter": (4, 4), f"{prefix}.noise_const": (r, r)})
        layout.update({f"{prefix}.affine.weight": (cin, w), f"{prefix}.affine.bias": (cin,)})

    def torgb(prefix: str, cin: int) -> None:
        layout.update({f"{prefix}.weight": (img_channels, cin, 1, 1), f"{prefix}.bias": (img_channels,)})
        layout.update({f"{prefix}.affine.weight": (cin, w), f"{prefix}.affine.bias": (cin,)})

    for r in ch:
        if r == 4:
            layout["synthesis.b4.const"] = (ch[4], 4, 4)
        layout[f"synthesis.b{r}.resample_filter"] = (4, 4)
        if r > 4:
            layer(f"synthesis.b{r}.conv0", ch[r // 2], ch[r], r)
        layer(f"synthesis.b{r}.conv1", ch[r], ch[r], r)
        torgb(f"synthesis.b{r}.torgb", ch[r])
    layout["mapping.w_avg"] = (w,)
    if c_dim:
        layout.update({"mapping.embed.weight": (w, c_dim), "mapping.embed.bias": (w,)})
    for i in range(n_mapping):
        layout[f"mapping.fc{i}.weight"] = (w, z_dim + (w if c_dim and i == 0 else 0)) if i == 0 else (w, w)
        layout[f"mapping.fc{i}.bias"] = (w,)
    return layout


def discriminator_layout(
    resolution: int, channel_base: int, channel_max: int, img_channels: int = 3, **_
) -> dict[str, tuple[int, ...]]:
    """``Discriminator(c_dim=0, ...).state_dict()``'s keys and shapes (architecture 'resnet'), in its order."""
    ch, layout = widths(resolution, channel_base, channel_max), {}
    for r in sorted(ch, reverse=True)[:-1]:
        layout[f"b{r}.resample_filter"] = (4, 4)
        if r == resolution:
            layout.update({f"b{r}.fromrgb.weight": (ch[r], img_channels, 1, 1), f"b{r}.fromrgb.bias": (ch[r],)})
            layout[f"b{r}.fromrgb.resample_filter"] = (4, 4)
        layout.update({f"b{r}.conv0.weight": (ch[r], ch[r], 3, 3), f"b{r}.conv0.bias": (ch[r],)})
        layout[f"b{r}.conv0.resample_filter"] = (4, 4)
        layout.update({f"b{r}.conv1.weight": (ch[r // 2], ch[r], 3, 3), f"b{r}.conv1.bias": (ch[r // 2],)})
        layout[f"b{r}.conv1.resample_filter"] = (4, 4)
        layout.update({f"b{r}.skip.weight": (ch[r // 2], ch[r], 1, 1), f"b{r}.skip.resample_filter": (4, 4)})
    layout.update(
        {"b4.conv.weight": (ch[4], ch[4] + 1, 3, 3), "b4.conv.bias": (ch[4],), "b4.conv.resample_filter": (4, 4)}
    )
    layout.update({"b4.fc.weight": (ch[4], ch[4] * 16), "b4.fc.bias": (ch[4],)})
    layout.update({"b4.out.weight": (1, ch[4]), "b4.out.bias": (1,)})
    return layout


def nvlabs_state(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Values for ``layout`` from the hashed pool (unit variance, no RNG), the i-th key from seed ``seed + i``.

    Filters are NVIDIA's real filter; mapping weights are divided by lr_multiplier, as NVIDIA
    stores them (FullyConnectedLayer initialises ``randn / lr_multiplier``).
    """
    state = {}
    for i, (key, shape) in enumerate(layout.items()):
        if key.endswith("resample_filter"):
            state[key] = RESAMPLE_FILTER.clone()
            continue
        value = hashed(math.prod(shape), seed + i).view(shape)
        if re.fullmatch(r"mapping\.fc\d+\.weight", key):
            value = value / LR_MULTIPLIER
        state[key] = value
    return state


# --------------------------------------------------------------------------------------------
# Persistent objects


class PersistentModule:
    """Pickles as an NVIDIA persistent class: ``_reconstruct_persistent_obj(meta)``."""

    def __init__(self, class_name: str, state: dict, module_src: str = NETWORKS_SRC):
        self.class_name, self.state, self.module_src = class_name, state, module_src

    def __reduce__(self):
        persistence = sys.modules["torch_utils.persistence"]  # the stand-in from fake_nvidia_modules
        meta = dict(type="class", version=6, module_src=self.module_src, class_name=self.class_name, state=self.state)
        return persistence._reconstruct_persistent_obj, (meta,)


def module_state(parameters=None, buffers=None, modules=None, init_kwargs=None, **attributes) -> dict:
    """An ``nn.Module.__dict__`` as NVIDIA's pickles hold it (hook dicts, init args, plain attributes)."""
    state = {
        "training": False,
        "_parameters": OrderedDict(
            (k, torch.nn.Parameter(v, requires_grad=False)) for k, v in (parameters or {}).items()
        ),
        "_buffers": OrderedDict(buffers or {}),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(),
        "_forward_hooks": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(modules or {}),
    }
    state.update(attributes)
    state["_init_args"] = ()
    state["_init_kwargs"] = init_kwargs or {}
    return state


def _class_name(path: str, top: str) -> str:
    """NVIDIA's class for the module at ``path`` (dotted, '' for the network itself)."""
    last = path.rsplit(".", 1)[-1]
    if not path:
        return top
    if top == "Generator":
        patterns = {"mapping": "MappingNetwork", "synthesis": "SynthesisNetwork", "torgb": "ToRGBLayer"}
        if last in patterns:
            return patterns[last]
        if re.fullmatch(r"b\d+", last):
            return "SynthesisBlock"
        return "SynthesisLayer" if last in ("conv0", "conv1") else "FullyConnectedLayer"
    if path == "b4":
        return "DiscriminatorEpilogue"
    if re.fullmatch(r"b\d+", path):
        return "DiscriminatorBlock"
    if last == "mbstd":
        return "MinibatchStdLayer"
    return "FullyConnectedLayer" if last in ("fc", "out") or path.startswith("mapping") else "Conv2dLayer"


def persistent_network(
    state: dict[str, torch.Tensor],
    top: str,
    init_kwargs: dict,
    module_src: str = NETWORKS_SRC,
    empty_modules: tuple[str, ...] = (),
    class_names: dict[str, str] | None = None,
) -> PersistentModule:
    """A flat state dict as a tree of persistent modules, as NVIDIA's networks pickle.

    Args:
        state: NVIDIA ``state_dict()`` keys onto tensors.
        top: the network's class (``Generator``, ``Discriminator``).
        init_kwargs: the network's constructor arguments (``_init_kwargs``).
        empty_modules: modules without tensors (D's ``b4.mbstd``).
        class_names: overrides of :func:`_class_name` by module path.
    """
    tree: dict[str, dict] = {"": {"parameters": {}, "buffers": {}, "children": []}}

    def node(path: str) -> dict:
        if path not in tree:
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            node(parent)["children"].append(path)
            tree[path] = {"parameters": {}, "buffers": {}, "children": []}
        return tree[path]

    for key, value in state.items():
        path, name = key.rsplit(".", 1) if "." in key else ("", key)
        node(path)["buffers" if name in BUFFERS else "parameters"][name] = value
    for path in empty_modules:
        node(path)

    def build(path: str) -> PersistentModule:
        entry = tree[path]
        children = OrderedDict((child.rsplit(".", 1)[-1], build(child)) for child in entry["children"])
        name = (class_names or {}).get(path) or _class_name(path, top)
        extra = (
            {"weight_gain": np.float64(0.25)} if name == "FullyConnectedLayer" else {}
        )  # a numpy scalar, as NVIDIA's
        kwargs = init_kwargs if not path else {}
        return PersistentModule(
            name, module_state(entry["parameters"], entry["buffers"], children, kwargs, **extra), module_src
        )

    return build("")


# --------------------------------------------------------------------------------------------
# Writing files


class EasyDict(dict):
    """Stands in for dnnlib.util.EasyDict while pickling (a dict subclass, as the original)."""


class TFNetwork:
    """Stands in for dnnlib.tflib.network.Network, whose TensorFlow pickles hold (G, D, Gs)."""

    def __init__(self, name: str):
        self.state = {"version": 4, "name": name, "static_kwargs": {}, "components": {}, "variables": []}

    def __getstate__(self):
        return self.state


def _reconstruct_persistent_obj(meta):
    raise AssertionError("the stand-in for NVIDIA's reconstruction must never be called")


@contextmanager
def fake_nvidia_modules():
    """Put stand-ins for NVIDIA's modules in ``sys.modules`` while pickling; remove them afterwards."""
    modules = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": types.ModuleType("dnnlib.util"),
        "dnnlib.tflib": types.ModuleType("dnnlib.tflib"),
        "dnnlib.tflib.network": types.ModuleType("dnnlib.tflib.network"),
    }
    for module, name, obj in (
        ("torch_utils.persistence", "_reconstruct_persistent_obj", _reconstruct_persistent_obj),
        ("dnnlib.util", "EasyDict", EasyDict),
        ("dnnlib.tflib.network", "Network", TFNetwork),
    ):
        obj.__module__, obj.__qualname__ = module, name
        setattr(modules[module], name, obj)
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield modules
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
        for obj in (_reconstruct_persistent_obj, EasyDict, TFNetwork):  # back to this module for repr and pickling
            obj.__module__ = __name__
            obj.__qualname__ = obj.__name__


def write_pickle(obj, path: Path) -> Path:
    with fake_nvidia_modules(), open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


def generator(config: dict, seed: int = 0, c_dim: int = 0) -> PersistentModule:
    """A persistent Generator with ``config``'s shape (one of CONFIGS) and hashed values."""
    init_kwargs = {
        "z_dim": config["z_dim"],
        "w_dim": config["z_dim"],
        "mapping_kwargs": EasyDict(num_layers=config["n_mapping"]),
        "synthesis_kwargs": EasyDict(
            channel_base=config["channel_base"], channel_max=config["channel_max"], num_fp16_res=4, conv_clamp=256
        ),
        "c_dim": c_dim,
        "img_resolution": config["resolution"],
        "img_channels": 3,
    }
    return persistent_network(nvlabs_state(generator_layout(**config, c_dim=c_dim), seed), "Generator", init_kwargs)


def discriminator(config: dict, seed: int = 500) -> PersistentModule:
    init_kwargs = {
        "block_kwargs": EasyDict(),
        "mapping_kwargs": EasyDict(),
        "epilogue_kwargs": EasyDict(mbstd_group_size=config["mbstd"]),
        "channel_base": config["channel_base"],
        "channel_max": config["channel_max"],
        "num_fp16_res": 4,
        "conv_clamp": 256,
        "c_dim": 0,
        "img_resolution": config["resolution"],
        "img_channels": 3,
    }
    state = nvlabs_state(discriminator_layout(**config), seed)
    return persistent_network(state, "Discriminator", init_kwargs, empty_modules=("b4.mbstd",))


def snapshot(config: dict, **overrides) -> dict:
    """``{G, D, G_ema, augment_pipe, training_set_kwargs}`` as training_loop.py saves it; G and G_ema differ."""
    augment = persistent_network({"p": torch.zeros([])}, "AugmentPipe", {"xflip": 1, "rotate90": 1})
    data = {
        "G": generator(config, seed=1000),
        "D": discriminator(config),
        "G_ema": generator(config, seed=0),
        "augment_pipe": augment,
        "training_set_kwargs": EasyDict(
            class_name="training.dataset.ImageFolderDataset", path="ffhq.zip", resolution=32
        ),
    }
    data.update(overrides)
    return data
