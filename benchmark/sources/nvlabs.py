"""NVIDIA stylegan2-ada-pytorch network pickles, read without running the code inside them.

A ``network-snapshot-*.pkl`` (and NVIDIA's released ``ffhq.pkl``, ``metfaces.pkl``, ...) is a
plain ``pickle`` of ``{G, D, G_ema, augment_pipe, training_set_kwargs}``. Every network in it is
a *persistent class* (torch_utils/persistence.py): it pickles as
``_reconstruct_persistent_obj(meta)`` with ``meta = {type, version, module_src, class_name,
state}``, where ``module_src`` is the whole source text of training/networks.py, which NVIDIA's
unpickling ``exec``s, and ``state`` the module's ``__dict__`` (``_parameters``, ``_buffers``,
``_modules``, ``_init_args``, ``_init_kwargs``, ...). Unpickling such a file the ordinary way
runs whatever its author put in ``module_src`` or in any other global it names. Here a
restricted unpickler (:class:`_NetworkUnpickler`) resolves no global from the file except an
allow-list: each persistent object becomes a :class:`PersistentObject` holding its class name
and saved state, every other class or function the file names (``dnnlib.util.EasyDict``,
numpy scalars, ``os.system``) becomes an inert :class:`Stub` that records its arguments, and
tensors are rebuilt by torch's own ``_rebuild_tensor_v2`` from storages that go through
``torch.load(weights_only=True)`` (a pickled storage is ``torch.storage._load_from_bytes(b)``,
whose own ``torch.load`` would allow any code). Nothing from the file is imported, ``exec``'d or
called beyond that list.

The networks' weights are then renamed onto rosinality/stylegan2-pytorch model.py's keys
(:func:`nvlabs_generator_to_rosinality`, :func:`nvlabs_discriminator_to_rosinality`), which our
StyleGAN2 backbone keeps. The two codes compute the same function with the same stored values:

- FullyConnectedLayer stores its weight unscaled (``randn / lr_multiplier``) and multiplies by
  ``lr_multiplier / sqrt(in)`` (bias by ``lr_multiplier``) at run time, exactly as rosinality's
  EqualLinear (``randn / lr_mul``, scale ``lr_mul / sqrt(in)``, bias times ``lr_mul``): mapping
  layers (``lr_multiplier`` 0.01, or the pickle's ``mapping_kwargs.lr_multiplier``) and affines
  (``bias_init`` 1 in both, so the +1 is already in the bias) copy as they are.
- Conv weights are ``[out, in, k, k]`` in both; rosinality's ModulatedConv2d adds a leading 1.
  NVIDIA's up-sampling SynthesisLayer convolves with ``flip_weight=False`` through a transposed
  convolution, as rosinality's does, so no flip (the flip in legacy.py and in rosinality's
  convert_weight.py is for TensorFlow's layout only).
- NVIDIA's ``resample_filter`` is ``[1, 3, 3, 1]`` normalised to sum 1 (upfirdn2d.setup_filter);
  where it up-samples (conv0 of a block, the skip connection of the image) it runs with gain 4,
  which rosinality bakes into the buffer (``Blur(upsample_factor=2)``, ``Upsample``): those
  kernels are 4 x the filter; D's down-sampling kernels are the filter as it is.
- ``noise_strength`` [] -> ``noise.weight`` [1]; ``noise_const`` [r, r] -> ``noises.noise_k``
  [1, 1, r, r] in layer order (b4.conv1, then conv0, conv1 of each block); ``mapping.w_avg`` is
  rosinality's ``latent_avg`` (for truncation), kept beside the state dict.

Numbers differ slightly from NVIDIA's own runs: stylegan2-ada training runs the top 4
resolutions in float16 and clamps every conv layer's output to +-256 (``conv_clamp``,
``num_fp16_res`` in train.py); these networks run in float32 without the clamp, which is
NVIDIA's own ``force_fp32=True`` result wherever no activation reaches 256.

Supported: unconditional pickles of training/networks.py's Generator (``architecture='skip'``)
and Discriminator (``'resnet'``) with one minibatch-stddev channel, the ``paper256`` (channel_base
16384, channel_max 512, 8 mapping layers, mbstd group 8), ``auto`` (2 mapping layers, channel
base 16384 below 512 px, mbstd group up to 4) and ``stylegan2`` (32768: rosinality's channel
multiplier 2) configurations and any other widths, which come from the tensors' shapes.
"""

from __future__ import annotations

import _compat_pickle
import hashlib
import io
import logging
import pickle
import pickletools
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch

from benchmark.errors import BenchmarkError, abbreviate, describe
from benchmark.files import file_sha256, identify
from benchmark.nets.stylegan2 import StyleGAN2Config, rosinality_width
from benchmark.sources.base import SOURCES, Source
from benchmark.sources.rosinality2 import KIND as ROSINALITY_STYLEGAN2
from benchmark.sources.rosinality2 import V1_KIND as ROSINALITY_STYLEGAN1
from benchmark.sources.rosinality2 import checkpoint_strings, stylegan_version

log = logging.getLogger(__name__)

KIND = "nvlabs-stylegan2-ada"
EXPECTED_FORMAT = (
    "expected an NVIDIA stylegan2-ada-pytorch network pickle (network-snapshot-*.pkl, or a released ffhq.pkl: "
    "a pickle of {G, D, G_ema, augment_pipe, training_set_kwargs})"
)
WHERE_TO_GET = "NVIDIA's pretrained pickles are listed in the README of github.com/NVlabs/stylegan2-ada-pytorch"
LEGACY_CONVERSION = (
    "convert it with NVIDIA's legacy.py, which reads TensorFlow pickles without TensorFlow: in a checkout of "
    "github.com/NVlabs/stylegan2-ada-pytorch run `python legacy.py --source=FILE.pkl --dest=FILE-pytorch.pkl` and "
    "pass the new file (StyleGAN2 and StyleGAN2-ADA TensorFlow pickles convert; StyleGAN v1 ones do not)"
)

# The global that persistent classes pickle through (torch_utils/persistence.py).
_PERSISTENT = ("torch_utils.persistence", "_reconstruct_persistent_obj")
# The class TensorFlow StyleGAN/StyleGAN2(-ADA) pickles hold (legacy.py's _LegacyUnpickler stubs it out too).
_TF_NETWORK = "dnnlib.tflib.network.Network"
# rosinality's blur and upsample padding assume NVIDIA's default 4-tap filter ([1, 3, 3, 1]).
_FILTER_SHAPE = (4, 4)
_UPSAMPLE_GAIN = 4  # up ** 2 for up = 2: NVIDIA's upfirdn2d gain, rosinality's kernel scale
_DEFAULT_LR_MULTIPLIER = 0.01  # MappingNetwork(lr_multiplier=0.01) in training/networks.py
_DEFAULT_MBSTD_GROUP = 4  # DiscriminatorEpilogue(mbstd_group_size=4)


# --------------------------------------------------------------------------------------------
# Reading the pickle without running it


class Stub(dict):
    """An inert stand-in for a class or function that a pickle names (``dnnlib.util.EasyDict``, a numpy
    scalar, ``os.system``): calling it, building it and setting its state only record the arguments.

    A dict subclass, because dict-like classes (EasyDict) are pickled as "new object, then set
    items"; their items land in the stub. ``global_name`` is the ``module.name`` the file gave.
    """

    global_name: ClassVar[str] = "?"

    def __new__(cls, *args, **kwargs):
        stub = super().__new__(cls)
        stub.args, stub.state, stub.list_items = args, None, []
        return stub

    def __init__(self, *args, **kwargs):  # dict.__init__ would read the arguments as items
        pass

    def __setstate__(self, state):
        self.state = state

    def append(self, item):  # list-like classes are pickled as "new object, then append items"
        self.list_items.append(item)

    def extend(self, items):
        self.list_items.extend(items)

    def __repr__(self) -> str:
        return f"<{self.global_name} (not loaded)>"


@dataclass
class PersistentObject:
    """What ``_reconstruct_persistent_obj(meta)`` would have rebuilt, without rebuilding it.

    Args:
        class_name: the class in the pickled module (``Generator``, ``SynthesisLayer``, ...).
        state: the object's saved ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, ...).
        module_sha256: sha256 of the module source the file carries (never executed), so a run
            records which version of training/networks.py wrote the networks.
    """

    class_name: str
    state: dict
    module_sha256: str

    @property
    def init_kwargs(self) -> dict:
        """The constructor's keyword arguments, as plain dicts (EasyDicts become dicts)."""
        return _plain(self.state.get("_init_kwargs") or {})

    def __setstate__(self, state):  # NVIDIA's __reduce__ passes everything in meta, never a BUILD state
        raise pickle.UnpicklingError("a state set on a persistent object, which NVIDIA's pickles never do")


def _plain(value):
    """Nested containers with EasyDict (and other dict-like) stubs turned into plain dicts."""
    if isinstance(value, Stub) and not len(value):
        return value  # a stub of something that is not a dict: keep it, inert
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _reconstruct(meta) -> PersistentObject:
    """Stands in for ``torch_utils.persistence._reconstruct_persistent_obj``: keeps ``meta['state']``,
    never executes ``meta['module_src']``."""
    if not (isinstance(meta, dict) and isinstance(meta.get("class_name"), str) and isinstance(meta.get("state"), dict)):
        raise pickle.UnpicklingError("a persistent object without class_name and state")
    source = meta.get("module_src")
    digest = hashlib.sha256(source.encode("utf-8", "replace")).hexdigest() if isinstance(source, str) else ""
    return PersistentObject(meta["class_name"], meta["state"], digest)


def _load_storage(data):
    """Stands in for ``torch.storage._load_from_bytes``: the bytes are a ``torch.save`` of one storage,
    read weights-only (so the blob cannot name code either) onto the CPU."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"a storage given as {_what(data)}, not bytes")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TypedStorage is deprecated")
        storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError(f"a storage blob holding a {_what(storage)}")
    return storage


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """torch's ``_rebuild_tensor_v2`` on a storage this reader made; the file's hooks and metadata are dropped."""
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError(f"a tensor rebuilt from a {_what(storage)}, not a storage")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TypedStorage is deprecated")
        return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, False, OrderedDict())


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """An ``nn.Parameter``'s data as a plain tensor: only the values are wanted."""
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError(f"a parameter rebuilt from a {_what(data)}, not a tensor")
    return data


class _Sealed:
    """One of this reader's functions as the file sees it: callable, but with no attributes to set.

    Pickle's BUILD opcode sets attributes on whatever object is on its stack; on a plain function
    it could replace ``__defaults__`` for the rest of the process. Here it fails instead.
    """

    __slots__ = ("_function",)

    def __init__(self, function):
        object.__setattr__(self, "_function", function)

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    def __setattr__(self, name, value):
        raise pickle.UnpicklingError(f"a pickle that sets {name!r} on {self._function.__name__}")


# The only globals a file may resolve to something that runs: containers, and torch's tensor rebuilding.
_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): _Sealed(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Sealed(_rebuild_parameter),
    ("torch.storage", "_load_from_bytes"): _Sealed(_load_storage),
    _PERSISTENT: _Sealed(_reconstruct),
}


class _NetworkUnpickler(pickle.Unpickler):
    """Resolves the allow-list above and turns every other global into a :class:`Stub` class."""

    def __init__(self, file):
        super().__init__(file)
        self._stubs: dict[str, type[Stub]] = {}

    def find_class(self, module: str, name: str):
        module, name = _python3(module, name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        qualified = f"{module}.{name}"
        if qualified not in self._stubs:  # a class named after the global, with our (inert) methods only
            self._stubs[qualified] = type(name, (Stub,), {"global_name": qualified})
        return self._stubs[qualified]

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("a persistent id, which NVIDIA's pickles do not use (a torch.save file?)")


def _python3(module: str, name: str) -> tuple[str, str]:
    """Protocol 2 pickles name Python 2 modules (``__builtin__.set``); map them as pickle itself would."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _module_state(obj, where: str) -> dict:
    """The saved ``__dict__`` of a pickled ``nn.Module``, persistent or not."""
    if isinstance(obj, PersistentObject):
        return obj.state
    if isinstance(obj, Stub) and isinstance(obj.state, dict) and "_parameters" in obj.state:
        return obj.state  # an ordinary torch module (pickled as a class plus its __dict__)
    raise BenchmarkError(f"{where} is a {_what(obj)}, not a network; {EXPECTED_FORMAT}")


def flat_state(obj, what: str = "network") -> dict[str, torch.Tensor]:
    """A pickled network's ``state_dict()``: ``mapping.fc0.weight``, ``synthesis.b4.const``, ...

    Parameters then persistent buffers of each module, then its submodules, as torch orders them.
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()

    def walk(node, prefix: str) -> None:
        where = f"{what} {prefix.rstrip('.') or '(top)'}"
        if id(node) in seen:  # a crafted file can make a module its own submodule
            raise BenchmarkError(f"{where} is a module that contains itself; {EXPECTED_FORMAT}")
        seen.add(id(node))
        state = _module_state(node, where)
        skip = state.get("_non_persistent_buffers_set") or set()
        for group in ("_parameters", "_buffers"):
            for name, value in (state.get(group) or {}).items():
                if value is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise BenchmarkError(f"{what} {prefix}{name} is a {_what(value)}, not a tensor; {EXPECTED_FORMAT}")
                out[prefix + name] = value.detach()
        for name, child in (state.get("_modules") or {}).items():
            if child is not None:
                walk(child, f"{prefix}{name}.")

    walk(obj, "")
    return out


def _what(obj) -> str:
    if isinstance(obj, PersistentObject):
        return f"persistent {obj.class_name}"
    if isinstance(obj, Stub):
        return obj.global_name
    return type(obj).__name__


def _class_names(obj) -> set[str]:
    """Every persistent class name in a pickled network (Generator, SynthesisInput, ...)."""
    names: set[str] = set()
    stack, seen = [obj], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, PersistentObject):
            names.add(node.class_name)
        if isinstance(node, (PersistentObject, Stub)) and isinstance(getattr(node, "state", None), dict):
            stack.extend(m for m in (node.state.get("_modules") or {}).values() if m is not None)
    return names


@dataclass
class NVlabsNetwork:
    """One network of the pickle: its class, constructor arguments and flat state dict.

    Args:
        class_name: ``Generator`` or ``Discriminator``.
        init_kwargs: the constructor's keyword arguments (z_dim, w_dim, c_dim, img_resolution,
            img_channels, mapping_kwargs, synthesis_kwargs / channel_base, epilogue_kwargs, ...).
        state: ``state_dict()`` keys onto tensors, on the CPU.
        module_sha256: sha256 of the (never executed) module source it was pickled with.
    """

    class_name: str
    init_kwargs: dict
    state: dict[str, torch.Tensor]
    module_sha256: str = ""


@dataclass
class NVlabsPickle:
    """The networks of a stylegan2-ada-pytorch pickle; ``G`` and ``D`` are None where the file lacks them."""

    G_ema: NVlabsNetwork
    G: NVlabsNetwork | None
    D: NVlabsNetwork | None
    training_set_kwargs: dict | None = None
    other_keys: list[str] = field(default_factory=list)


def read_network_pickle(path) -> NVlabsPickle:
    """Read ``path`` as an NVIDIA network pickle without running anything in it.

    Raises a one-line :class:`BenchmarkError` for any other file (``check_network_pickle`` names
    the kinds: a TensorFlow pickle, StyleGAN3, a rosinality checkpoint, ...), a conditional network,
    and a pickle that cannot be read.
    """
    path = Path(path).expanduser()
    check_network_pickle(path)
    try:
        with open(path, "rb") as f:
            data = _NetworkUnpickler(f).load()
    except BenchmarkError:
        raise
    except Exception as exc:  # pickle, torch and our own checks raise many kinds on a damaged or foreign file
        raise BenchmarkError(
            f"{path}: cannot be read as a network pickle ({describe(exc)}); {EXPECTED_FORMAT}"
        ) from None
    if _is_tf_pickle(data):
        raise BenchmarkError(
            f"{path}: a TensorFlow StyleGAN pickle (dnnlib.tflib Network objects); {LEGACY_CONVERSION}"
        )
    if not isinstance(data, dict) or not isinstance(data.get("G_ema"), PersistentObject):
        raise BenchmarkError(f"{path}: a pickle of {_describe_top(data)}, not NVIDIA's networks; {EXPECTED_FORMAT}")
    networks = {}
    for key in ("G_ema", "G", "D"):
        obj = data.get(key)
        if obj is None:
            networks[key] = None
            continue
        if not isinstance(obj, PersistentObject):
            raise BenchmarkError(f"{path}: {key} is a {_what(obj)}, not a network; {EXPECTED_FORMAT}")
        if "SynthesisInput" in _class_names(obj):
            raise BenchmarkError(f"{path}: {_STYLEGAN3}")
        try:
            networks[key] = NVlabsNetwork(obj.class_name, obj.init_kwargs, flat_state(obj, key), obj.module_sha256)
        except RecursionError:  # init kwargs or modules nested in a cycle by a crafted file
            raise BenchmarkError(f"{path}: {key} nests its modules or arguments endlessly; {EXPECTED_FORMAT}") from None
        except BenchmarkError as exc:
            raise BenchmarkError(f"{path}: {exc}") from None
    for key, net in networks.items():
        if net is not None:
            _refuse_conditional(net, key, path)
    kwargs = data.get("training_set_kwargs")
    return NVlabsPickle(
        networks["G_ema"],
        networks["G"],
        networks["D"],
        _plain(kwargs) if isinstance(kwargs, dict) else None,
        [str(k) for k in data if k not in ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")],
    )


_STYLEGAN3 = (
    "a StyleGAN3 pickle (training/networks_stylegan3.py: SynthesisInput and L*_ layers with filtered, alias-free "
    "resampling), which has no rosinality StyleGAN2 equivalent; use a stylegan2-ada-pytorch pickle (or a "
    "stylegan3 repository pickle trained with --cfg=stylegan2)"
)


def _is_tf_pickle(data) -> bool:
    items = data if isinstance(data, (tuple, list)) else ()
    return any(isinstance(x, Stub) and x.global_name == _TF_NETWORK for x in items)


def _describe_top(data) -> str:
    if isinstance(data, dict):
        keys = [str(k) for k in data]
        return f"a dict with keys {abbreviate(keys, 5)}" if keys else "an empty dict"
    return f"a {_what(data)}"


def _refuse_conditional(net: NVlabsNetwork, key: str, path: Path) -> None:
    """A class label enters G through ``mapping.embed`` and D through its own mapping network (``cmap``)."""
    c_dim = net.init_kwargs.get("c_dim") or 0
    label_keys = ("mapping.embed.",) if key.startswith("G") else ("mapping.",)
    if c_dim or any(k.startswith(label_keys) for k in net.state):
        raise BenchmarkError(
            f"{path}: {key} is conditional (c_dim {c_dim}: a class-label embedding in its mapping network); only "
            f"unconditional pickles are supported, since the rosinality layout has no place for NVIDIA's label "
            f"embedding"
        )


# --------------------------------------------------------------------------------------------
# Telling files apart from their bytes (--dry-run)


@dataclass
class _PickleScan:
    globals: set[str] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)  # short strings: dict keys, class names
    stylegan3_source: bool = False


def _scan_pickle(stream) -> _PickleScan:
    """The globals and short strings of one pickle, read from its opcodes (nothing is unpickled).

    Protocol 4 names a global by pushing two strings (perhaps fetched from the memo) and then
    STACK_GLOBAL, so the memo is followed for strings: MEMOIZE and PUT store whatever the last
    opcode pushed (a string or, as None, anything else). A module source (NVIDIA's networks.py,
    carried as one long string) is checked for StyleGAN3's SynthesisInput class.
    """
    scan, recent, memo = _PickleScan(), ["", ""], {}
    top: str | None = None  # the string the last opcode pushed; None when it pushed something else
    for opcode, arg, _ in pickletools.genops(stream):
        name = opcode.name
        if name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
            memo[len(memo) if name == "MEMOIZE" else arg] = top
            continue  # stores the top of the stack, does not change it
        top = None
        if name in _STRING_OPCODES:
            top = arg if isinstance(arg, str) else arg.decode("latin-1")
            if len(top) <= 64:
                scan.strings.add(top)
            elif "class SynthesisInput(" in top:
                scan.stylegan3_source = True
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            top = memo.get(arg)
        elif name == "GLOBAL":
            scan.globals.add(".".join(_python3(*arg.split(" ", 1))))
        elif name == "STACK_GLOBAL":
            scan.globals.add(".".join(_python3(recent[-2], recent[-1])))
        if top is not None:
            recent = [recent[-1], top]
    return scan


_STRING_OPCODES = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING", "STRING")


def check_network_pickle(path) -> str:
    """What ``--dry-run`` checks: the file is an NVIDIA stylegan2-ada-pytorch network pickle.

    Told from the bytes alone (the torch zip or legacy signature, the names a pickle imports and
    its short strings), never by unpickling. Returns the file's kind in words; raises a one-line
    error naming what the file is otherwise and which source reads it: a TensorFlow pickle
    (convert it with NVIDIA's legacy.py), a StyleGAN3 pickle, a conditional network, a rosinality
    StyleGAN2 ``.pt`` (``rosinality-stylegan2``) or StyleGAN v1 checkpoint (``rosinality-stylegan1``),
    a pickle of something else, or a failed download.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise BenchmarkError(f"{path} is a folder, not a network pickle: pass the .pkl file inside it; {WHERE_TO_GET}")
    if not path.exists():
        raise BenchmarkError(f"{path}: no such network pickle; {WHERE_TO_GET}")
    found = identify(path)
    if found.kind in ("checkpoint", "torchscript"):
        raise BenchmarkError(f"{path}: {found.what}, {_which_torch_source(path)}")
    with open(path, "rb") as f:
        head = f.read(2)
    if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= pickle.HIGHEST_PROTOCOL:
        fix = f": {found.fix}" if found.fix else ""
        raise BenchmarkError(f"{path}: it is {found.what}{fix}; {EXPECTED_FORMAT}")
    try:
        with open(path, "rb") as f:
            scan = _scan_pickle(f)
    except Exception as exc:  # pickletools raises ValueError and others on a cut file
        raise BenchmarkError(
            f"{path}: a damaged or incomplete pickle ({describe(exc)}): the download did not finish, download it "
            f"again; {WHERE_TO_GET}"
        ) from None
    if _TF_NETWORK in scan.globals:
        raise BenchmarkError(
            f"{path}: a TensorFlow StyleGAN pickle (dnnlib.tflib Network objects); {LEGACY_CONVERSION}"
        )
    if ".".join(_PERSISTENT) not in scan.globals:
        foreign = [g for g in sorted(scan.globals) if tuple(g.rsplit(".", 1)) not in _ALLOWED]  # name the model's
        shown = abbreviate(foreign or sorted(scan.globals), 3) or "no classes"
        raise BenchmarkError(f"{path}: a pickle of other objects (it imports {shown}); {EXPECTED_FORMAT}")
    if scan.stylegan3_source or "SynthesisInput" in scan.strings:
        raise BenchmarkError(f"{path}: {_STYLEGAN3}")
    if "embed" in scan.strings:  # the label embedding's module name (MappingNetwork.embed), there only when c_dim > 0
        raise BenchmarkError(
            f"{path}: a conditional (class-label) network pickle; only unconditional pickles are supported, since "
            f"the rosinality layout has no place for NVIDIA's label embedding"
        )
    if "G_ema" not in scan.strings:
        raise BenchmarkError(f"{path}: a pickle of persistent networks without G_ema; {EXPECTED_FORMAT}")
    missing = [k for k in ("G", "D") if k not in scan.strings]
    return "an NVIDIA stylegan2-ada-pytorch network pickle" + (f" (without {', '.join(missing)})" if missing else "")


def _which_torch_source(path: Path) -> str:
    """Which of our sources reads a torch.save file, from the keys its pickle holds (rosinality2's rule)."""
    version = stylegan_version(checkpoint_strings(path))
    if version == "stylegan1":
        return f"a rosinality StyleGAN v1 checkpoint: use source '{ROSINALITY_STYLEGAN1}'"
    if version == "stylegan2":
        return f"a rosinality stylegan2-pytorch checkpoint: use source '{ROSINALITY_STYLEGAN2}'"
    return (
        f"not an NVIDIA network pickle (rosinality checkpoints are read by sources '{ROSINALITY_STYLEGAN2}' and "
        f"'{ROSINALITY_STYLEGAN1}'); {EXPECTED_FORMAT}"
    )


# --------------------------------------------------------------------------------------------
# The key mapping onto rosinality/stylegan2-pytorch model.py


@dataclass(frozen=True)
class GeneratorShape:
    """A pickled Generator's shape, read from its tensors.

    Args:
        resolution: output size (the highest ``synthesis.b{r}``).
        style_dim: z and w dimensionality (rosinality has one ``style_dim`` for both).
        n_mlp: mapping layers (``mapping.fc{i}``): 8 in paper256 / stylegan2, 2 in auto.
        widths: channels per resolution, ``min(channel_base // r, channel_max)`` in NVIDIA's code.
        image_channels: output channels (``torgb``'s).
        lr_mlp: the mapping layers' learning-rate multiplier (``mapping_kwargs.lr_multiplier``).
    """

    resolution: int
    style_dim: int
    n_mlp: int
    widths: dict[int, int]
    image_channels: int
    lr_mlp: float = _DEFAULT_LR_MULTIPLIER


@dataclass(frozen=True)
class DiscriminatorShape:
    """A pickled Discriminator's shape: resolution, channels per resolution (4 included), image
    channels, and the minibatch-stddev group size (``epilogue_kwargs.mbstd_group_size``)."""

    resolution: int
    widths: dict[int, int]
    image_channels: int
    mbstd_group: int = _DEFAULT_MBSTD_GROUP


def _block_resolutions(state: dict, prefix: str) -> list[int]:
    found = sorted({int(m.group(1)) for k in state if (m := re.match(rf"{re.escape(prefix)}b(\d+)\.", k))})
    if not found or found[0] != 4:
        raise BenchmarkError(f"no {prefix}b4 block among its keys ({abbreviate(sorted(state), 4)}); {EXPECTED_FORMAT}")
    expected = [4 * 2**i for i in range(len(found))]
    if found != expected or found[-1] & (found[-1] - 1):
        raise BenchmarkError(
            f"its {prefix}b* blocks are {found}, not 4, 8, ... up to a power of two; {EXPECTED_FORMAT}"
        )
    return found


def _need(state: dict, key: str, what: str) -> torch.Tensor:
    if key not in state:
        raise BenchmarkError(f"{what} lacks {key}; {EXPECTED_FORMAT}")
    return state[key]


def _refuse_stylegan3_keys(state: dict) -> None:
    if any(re.match(r"synthesis\.(input\.|L\d+_)", k) for k in state):
        raise BenchmarkError(_STYLEGAN3)


def generator_shape(state: dict[str, torch.Tensor], init_kwargs: dict | None = None) -> GeneratorShape:
    """Read a Generator's shape from its state dict (and ``lr_multiplier`` from its init kwargs).

    The init kwargs are not trusted for widths: the stylegan3 repository's StyleGAN2 networks
    take synthesis arguments flat rather than in ``synthesis_kwargs``, and the tensors decide anyway.
    """
    init_kwargs = init_kwargs or {}
    _refuse_stylegan3_keys(state)
    if "mapping.embed.weight" in state or init_kwargs.get("c_dim"):
        raise BenchmarkError("the generator is conditional (mapping.embed); only unconditional pickles are supported")
    resolutions = _block_resolutions(state, "synthesis.")
    widths = {r: _need(state, f"synthesis.b{r}.conv1.weight", "the generator").shape[0] for r in resolutions}
    n_mlp = 0
    while f"mapping.fc{n_mlp}.weight" in state:
        n_mlp += 1
    if n_mlp == 0:
        raise BenchmarkError(f"the generator has no mapping layers (mapping.fc0); {EXPECTED_FORMAT}")
    style_dim = state["mapping.fc0.weight"].shape[1]
    odd = [
        f"mapping.fc{i}.weight {tuple(state[f'mapping.fc{i}.weight'].shape)}"
        for i in range(n_mlp)
        if tuple(state[f"mapping.fc{i}.weight"].shape) != (style_dim, style_dim)
    ]
    if odd:
        raise BenchmarkError(
            f"the generator's mapping layers are not all {style_dim} x {style_dim} ({abbreviate(odd, 2)}): z_dim, "
            f"w_dim and the layer widths must be equal, as in rosinality's Generator(style_dim)"
        )
    mapping_kwargs = init_kwargs.get("mapping_kwargs") or {}
    if mapping_kwargs.get("num_layers", n_mlp) != n_mlp:
        raise BenchmarkError(
            f"the generator's init kwargs say {mapping_kwargs['num_layers']} mapping layers but it holds {n_mlp}"
        )
    torgb = _need(state, f"synthesis.b{resolutions[-1]}.torgb.weight", "the generator")
    return GeneratorShape(
        resolution=resolutions[-1],
        style_dim=style_dim,
        n_mlp=n_mlp,
        widths=widths,
        image_channels=torgb.shape[0],
        lr_mlp=float(mapping_kwargs.get("lr_multiplier", _DEFAULT_LR_MULTIPLIER)),
    )


def discriminator_shape(state: dict[str, torch.Tensor], init_kwargs: dict | None = None) -> DiscriminatorShape:
    """Read a Discriminator's shape from its state dict and its mbstd group size from its init kwargs."""
    init_kwargs = init_kwargs or {}
    if init_kwargs.get("c_dim") or any(k.startswith("mapping.") for k in state):
        raise BenchmarkError("the discriminator is conditional (it has a mapping network for the label)")
    resolutions = _block_resolutions(state, "")
    widths = {r: _need(state, f"b{r}.conv0.weight", "the discriminator").shape[0] for r in resolutions[1:]}
    widths[4] = _need(state, "b4.conv.weight", "the discriminator").shape[0]
    fromrgb = _need(state, f"b{resolutions[-1]}.fromrgb.weight", "the discriminator")
    group = (init_kwargs.get("epilogue_kwargs") or {}).get("mbstd_group_size", _DEFAULT_MBSTD_GROUP)
    if not isinstance(group, int) or group < 1:
        raise BenchmarkError(
            f"the discriminator's minibatch-stddev group size is {group!r}; rosinality's needs a whole number"
        )
    return DiscriminatorShape(resolutions[-1], dict(sorted(widths.items())), fromrgb.shape[1], group)


class _Renamer:
    """Moves tensors from an NVIDIA state dict into a rosinality one, each key used once.

    What is left at the end is a key the mapping does not know: another architecture
    (``synthesis.b8.skip.*`` for a ResNet G, ``b8.fromrgb.*`` for a 'skip' D), named in the error.
    """

    def __init__(self, state: dict[str, torch.Tensor], what: str):
        self.left = dict(state)
        self.out: dict[str, torch.Tensor] = {}
        self.what = what

    def take(self, key: str) -> torch.Tensor:
        if key not in self.left:
            raise BenchmarkError(f"the {self.what} lacks {key}; {EXPECTED_FORMAT}")
        return self.left.pop(key).float()

    def put(self, key: str, value: torch.Tensor) -> None:
        self.out[key] = value.clone()  # a copy: the pickle's storages are not kept alive, no two keys alias

    def filter(self, key: str, gain: float = 1.0) -> torch.Tensor:
        f = self.take(key)
        if tuple(f.shape) != _FILTER_SHAPE:
            raise BenchmarkError(
                f"the {self.what}'s {key} is {tuple(f.shape)}, not NVIDIA's default 4 x 4 filter ([1, 3, 3, 1]), "
                f"which rosinality's blur padding assumes"
            )
        return f * gain

    def drop(self, key: str) -> None:
        """A tensor rosinality has no place for and does not need (w_avg, a filter that never resamples)."""
        self.take(key)

    def finish(self, hint: str) -> dict[str, torch.Tensor]:
        if self.left:
            keys = sorted(self.left)
            raise BenchmarkError(
                f"the {self.what} has {len(keys)} keys outside the supported layout: {abbreviate(keys, 4)} ({hint})"
            )
        return self.out


def nvlabs_generator_to_rosinality(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An NVIDIA Generator's state dict under rosinality model.py ``Generator``'s keys.

    ``mapping.fc{i}`` -> ``style.{i+1}``; ``synthesis.b4.const`` [C, 4, 4] -> ``input.input``
    [1, C, 4, 4]; ``b4.conv1`` -> ``conv1``, ``b4.torgb`` -> ``to_rgb1``; block ``b{r}`` (r = 8, 16,
    ...; k = log2(r) - 3) -> ``convs.{2k}`` (conv0, up-sampling, with ``conv.blur.kernel``),
    ``convs.{2k+1}`` (conv1), ``to_rgbs.{k}`` (torgb, with the block's filter as ``upsample.kernel``);
    each layer's noise_const -> ``noises.noise_{n}`` in layer order. ``mapping.w_avg`` (rosinality's
    separate ``latent_avg``) and the filters that never resample are dropped. See the module
    docstring for why no value is rescaled or flipped.

    Raises a one-line error for keys outside that layout (a conditional or ResNet/'orig' generator).
    """
    shape = generator_shape(state)
    keys = _Renamer(state, "generator")
    for i in range(shape.n_mlp):  # EqualLinear(lr_mul) stores weight / lr_mul as FullyConnectedLayer does
        keys.put(f"style.{i + 1}.weight", keys.take(f"mapping.fc{i}.weight"))
        keys.put(f"style.{i + 1}.bias", keys.take(f"mapping.fc{i}.bias"))
    if "mapping.w_avg" in keys.left:  # absent when w_avg_beta is None; rosinality keeps it beside the state dict
        keys.drop("mapping.w_avg")
    keys.put("input.input", keys.take("synthesis.b4.const").unsqueeze(0))
    keys.drop("synthesis.b4.resample_filter")  # b4 has no image to up-sample
    noise = iter(range(2 * len(shape.widths) - 1))

    def layer(src: str, dst: str, up: bool) -> None:
        keys.put(f"{dst}.conv.weight", keys.take(f"{src}.weight").unsqueeze(0))
        keys.put(f"{dst}.conv.modulation.weight", keys.take(f"{src}.affine.weight"))
        keys.put(f"{dst}.conv.modulation.bias", keys.take(f"{src}.affine.bias"))  # bias_init 1 in both
        keys.put(f"{dst}.noise.weight", keys.take(f"{src}.noise_strength").reshape(1))
        keys.put(f"{dst}.activate.bias", keys.take(f"{src}.bias"))
        noise_const = keys.take(f"{src}.noise_const")
        keys.put(f"noises.noise_{next(noise)}", noise_const.view(1, 1, *noise_const.shape))
        if up:
            keys.put(f"{dst}.conv.blur.kernel", keys.filter(f"{src}.resample_filter", _UPSAMPLE_GAIN))
        else:
            keys.drop(f"{src}.resample_filter")

    def torgb(src: str, dst: str) -> None:
        keys.put(f"{dst}.conv.weight", keys.take(f"{src}.weight").unsqueeze(0))
        keys.put(f"{dst}.conv.modulation.weight", keys.take(f"{src}.affine.weight"))
        keys.put(f"{dst}.conv.modulation.bias", keys.take(f"{src}.affine.bias"))
        bias = keys.take(f"{src}.bias")
        keys.put(f"{dst}.bias", bias.view(1, -1, 1, 1))

    layer("synthesis.b4.conv1", "conv1", up=False)
    torgb("synthesis.b4.torgb", "to_rgb1")
    for k, r in enumerate(sorted(shape.widths)[1:]):
        layer(f"synthesis.b{r}.conv0", f"convs.{2 * k}", up=True)
        layer(f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}", up=False)
        torgb(f"synthesis.b{r}.torgb", f"to_rgbs.{k}")
        keys.put(f"to_rgbs.{k}.upsample.kernel", keys.filter(f"synthesis.b{r}.resample_filter", _UPSAMPLE_GAIN))
    return keys.finish("only the default architecture='skip', unconditional generator maps onto rosinality's")


def nvlabs_discriminator_to_rosinality(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An NVIDIA Discriminator's state dict under rosinality model.py ``Discriminator``'s keys.

    ``b{R}.fromrgb`` -> ``convs.0`` (``0.weight``, ``1.bias``); block ``b{r}`` (r = R, R/2, ..., 8;
    i = 1, 2, ...) -> ``convs.{i}``: conv0 -> ``conv1.{0.weight,1.bias}``, conv1 (down-sampling) ->
    ``conv2.{0.kernel,1.weight,2.bias}``, skip -> ``skip.{0.kernel,1.weight}``; ``b4.conv`` ->
    ``final_conv``, ``b4.fc`` / ``b4.out`` -> ``final_linear.0`` / ``.1``. NVIDIA's residual gain
    sqrt(0.5) on both branches is rosinality's ``(out + skip) / sqrt(2)``, so nothing is rescaled.

    Raises a one-line error for keys outside that layout (a conditional or 'skip'/'orig'
    discriminator) and for more than one minibatch-stddev channel (rosinality has one).
    """
    shape = discriminator_shape(state)
    keys = _Renamer(state, "discriminator")

    def conv(src: str, dst: str) -> None:
        keys.put(f"{dst}.0.weight", keys.take(f"{src}.weight"))
        keys.put(f"{dst}.1.bias", keys.take(f"{src}.bias"))
        keys.drop(f"{src}.resample_filter")  # a stride-1 layer: the filter is never used

    resolutions = sorted(shape.widths, reverse=True)[:-1]
    conv(f"b{shape.resolution}.fromrgb", "convs.0")
    for i, r in enumerate(resolutions, start=1):
        conv(f"b{r}.conv0", f"convs.{i}.conv1")
        keys.put(f"convs.{i}.conv2.0.kernel", keys.filter(f"b{r}.conv1.resample_filter"))
        keys.put(f"convs.{i}.conv2.1.weight", keys.take(f"b{r}.conv1.weight"))
        keys.put(f"convs.{i}.conv2.2.bias", keys.take(f"b{r}.conv1.bias"))
        keys.put(f"convs.{i}.skip.0.kernel", keys.filter(f"b{r}.skip.resample_filter"))
        keys.put(f"convs.{i}.skip.1.weight", keys.take(f"b{r}.skip.weight"))
        keys.drop(f"b{r}.resample_filter")  # the block's own filter down-samples the image of a 'skip' D only
    final = keys.take("b4.conv.weight")
    if final.shape[1] != shape.widths[4] + 1:
        raise BenchmarkError(
            f"the discriminator's b4.conv takes {final.shape[1]} channels, not {shape.widths[4]} + 1: "
            f"mbstd_num_channels is {final.shape[1] - shape.widths[4]}, and rosinality's has one stddev channel"
        )
    keys.put("final_conv.0.weight", final)
    keys.put("final_conv.1.bias", keys.take("b4.conv.bias"))
    keys.drop("b4.conv.resample_filter")
    for src, dst in (("b4.fc", "final_linear.0"), ("b4.out", "final_linear.1")):
        keys.put(f"{dst}.weight", keys.take(f"{src}.weight"))
        keys.put(f"{dst}.bias", keys.take(f"{src}.bias"))
    return keys.finish("only the default architecture='resnet', unconditional discriminator maps onto rosinality's")


# --------------------------------------------------------------------------------------------
# The source


def stylegan2_config(g: GeneratorShape, d: DiscriminatorShape | None = None) -> StyleGAN2Config:
    """The backbone shape of a pickle's networks: rosinality's widths for channel multiplier 2 or 1 where
    they fit (NVIDIA's stylegan2 and paper256 / auto configurations), per-resolution overrides otherwise."""
    if d is not None:
        if d.widths != g.widths or d.resolution != g.resolution:
            raise BenchmarkError(
                f"the discriminator's widths {d.widths} differ from the generator's {g.widths}; the backbone has "
                f"one channel table for both (NVIDIA's train.py gives G and D the same channel_base and channel_max)"
            )
        if d.image_channels != g.image_channels:
            raise BenchmarkError(
                f"the generator makes {g.image_channels}-channel images but the discriminator reads {d.image_channels}"
            )
    fits = [cm for cm in (2, 1, 4) if all(w == rosinality_width(r, cm) for r, w in g.widths.items())]
    cm = fits[0] if fits else 2
    try:
        return StyleGAN2Config(
            resolution=g.resolution,
            style_dim=g.style_dim,
            n_mlp=g.n_mlp,
            channel_multiplier=cm,
            channels={r: w for r, w in g.widths.items() if w != rosinality_width(r, cm)},
            image_channels=g.image_channels,
            mbstd_group=d.mbstd_group if d is not None else _DEFAULT_MBSTD_GROUP,
            lr_mlp=g.lr_mlp,
        )
    except ValueError as exc:
        raise BenchmarkError(f"the networks' shapes give no StyleGAN2 backbone ({exc})") from None


def _jsonable(value):
    """Init kwargs for provenance (written as JSON): placeholders of non-plain objects become their names."""
    if isinstance(value, dict) and not (isinstance(value, Stub) and not len(value)):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _in_file(path: Path, step):
    """Run one step of loading, with the file named at the front of its error."""
    try:
        return step()
    except BenchmarkError as exc:
        message = str(exc)
        raise BenchmarkError(message if message.startswith(str(path)) else f"{path}: {message}") from None


@SOURCES.register(KIND)
def load_nvlabs_stylegan2_ada(
    path, *, resolution: int = 256, name: str | None = None, cache_dir=None, device=None
) -> Source:
    """Load an NVIDIA stylegan2-ada-pytorch network pickle without running code from it.

    Args:
        path: ``network-snapshot-*.pkl`` from NVIDIA's training, or a released pickle (ffhq.pkl, ...).
        resolution: the suite's resolution; must be the pickle's ``img_resolution`` (a StyleGAN2
            runs at the one resolution it was trained at).
        name: the source's name (default: the file's stem).
        cache_dir, device: accepted for the source contract; unused (weights stay on the CPU
            until a method builds its networks).

    Returns:
        A Source whose trained G is ``G`` (where fine-tuning starts), whose EMA G is ``G_ema`` (where
        its moving average starts, and what NVIDIA samples from), and D from ``D``; a pickle without
        ``G`` serves ``G_ema`` as both, one without ``D`` has ``d_state`` None. ``latent_avg`` is
        ``G_ema``'s ``w_avg``.
    """
    if path is None:
        raise BenchmarkError(f"source kind {KIND!r} needs a network pickle path; {WHERE_TO_GET}")
    path = Path(path).expanduser()
    networks = read_network_pickle(path)
    g_ema = networks.G_ema
    g_shape = _in_file(path, lambda: generator_shape(g_ema.state, g_ema.init_kwargs))
    d_shape = None
    if networks.D is not None:
        d_shape = _in_file(path, lambda: discriminator_shape(networks.D.state, networks.D.init_kwargs))
    config = _in_file(path, lambda: stylegan2_config(g_shape, d_shape))
    if int(resolution) != config.resolution:
        raise BenchmarkError(
            f"{path}: the networks are {config.resolution} px, not the requested {resolution} px; a StyleGAN2 runs at "
            f"the one resolution it was trained at: set resolution {config.resolution}"
        )
    g_ema_state = _in_file(path, lambda: nvlabs_generator_to_rosinality(g_ema.state))
    g_state = None
    if networks.G is not None:
        if _in_file(path, lambda: generator_shape(networks.G.state, networks.G.init_kwargs)) != g_shape:
            raise BenchmarkError(f"{path}: G and G_ema have different shapes; {EXPECTED_FORMAT}")
        g_state = _in_file(path, lambda: nvlabs_generator_to_rosinality(networks.G.state))
    else:
        log.info("%s holds only G_ema: fine-tuning and its moving average both start from it", path)
    d_state = None
    if networks.D is not None:
        d_state = _in_file(path, lambda: nvlabs_discriminator_to_rosinality(networks.D.state))
    else:
        log.info("%s holds no discriminator: methods that need D cannot use this source", path)
    _check_against_backbone(config, g_ema_state, d_state, path)

    w_avg = g_ema.state.get("mapping.w_avg")
    provenance = {
        "kind": KIND,
        "path": str(path.resolve()),
        "sha256": file_sha256(path),
        "format": "stylegan2-ada-pytorch network pickle",
        "resolution": config.resolution,
        "channel_multiplier": config.channel_multiplier,
        "channels": {r: config.width(r) for r in config.resolutions},
        "n_mlp": config.n_mlp,
        "mbstd_group": config.mbstd_group,
        "lr_mlp": config.lr_mlp,
        "has_discriminator": d_state is not None,
        "generators": "G + G_ema" if g_state is not None else "G_ema only",
        "G_init_kwargs": _jsonable(g_ema.init_kwargs),
        "D_init_kwargs": _jsonable(networks.D.init_kwargs) if networks.D is not None else None,
        "training_set_kwargs": _jsonable(networks.training_set_kwargs),
        "networks_module_sha256": g_ema.module_sha256,
        "precision": "float32 without conv_clamp (NVIDIA trains the top 4 resolutions in float16, clamped at 256)",
    }
    if g_state is None:
        g_state, g_ema_state = g_ema_state, None
    return Source(
        name or path.stem,
        config,
        g_state,
        d_state,
        provenance,
        g_ema_state,
        without_d=f"{path} holds no discriminator (D), which this method needs; use a network-snapshot-*.pkl "
        f"from training, which holds G, D and G_ema",
        latent_avg=w_avg.float().clone() if w_avg is not None else None,
    )


def _check_against_backbone(config: StyleGAN2Config, g_state: dict, d_state: dict | None, path: Path) -> None:
    """The renamed tensors must be exactly the backbone's keys and shapes (a guard on the mapping itself)."""
    with torch.device("meta"):
        nets = [("generator", config.generator(), g_state), ("discriminator", config.discriminator(), d_state)]
    for what, net, state in nets:
        if state is None:
            continue
        layout = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        wrong = sorted(set(layout) ^ set(state)) + [
            f"{k} {tuple(state[k].shape)} != {layout[k]}"
            for k in layout
            if k in state and tuple(state[k].shape) != layout[k]
        ]
        if wrong:
            raise BenchmarkError(f"{path}: the {what} does not fit the StyleGAN2 backbone: {abbreviate(wrong, 3)}")


# What --dry-run calls (benchmark.runner.check_inputs): the file's kind, without loading weights.
load_nvlabs_stylegan2_ada.preflight = check_network_pickle
load_nvlabs_stylegan2_ada.backbone = "stylegan2"
