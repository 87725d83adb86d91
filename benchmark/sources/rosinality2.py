"""rosinality/stylegan2-pytorch checkpoints as sources (the FFHQ source of CDC, RSSA, AdAM and RICK).

Two file formats come out of that repository:

- ``train.py``'s checkpoint (``checkpoint/NNNNNN.pt``): ``{g, d, g_ema, g_optim, d_optim, args,
  ada_aug_p}``, where ``args`` is the run's ``argparse.Namespace``;
- ``convert_weight.py``'s file (``stylegan2-ffhq-config-f.pt``): ``{g_ema, latent_avg}``, plus ``g``
  and ``d`` when converted with ``--gen`` / ``--disc``. The few-shot methods' released target
  models hold ``g_ema`` only.

The backbone (``benchmark.nets.stylegan2``) keeps rosinality's keys, so loading copies the state
dicts as they are: G from ``g`` (where fine-tuning starts), its moving average from ``g_ema``, D
from ``d``, as CDC's, AdAM's and RICK's train.py do. The network shape is read from the tensors
(style_dim and n_mlp from ``style.N.weight``, the resolution from the number of ``to_rgbs``, the
widths and so channel_multiplier from the conv weights), never from ``args``, which
convert_weight.py files lack. A StyleGAN2 is trained at one resolution only (no progressive
growing), so the requested resolution must be the checkpoint's.

Files are read with ``torch.load(weights_only=True)``; ``argparse.Namespace`` is the one class
allow-listed (through ``torch.serialization.safe_globals``), so a file that pickles anything else
is refused with a line that names it, never loaded unsafely.
"""

from __future__ import annotations

import argparse
import io
import logging
import pickletools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.errors import BenchmarkError, abbreviate, describe
from benchmark.files import check_file, file_sha256
from benchmark.nets.stylegan2 import StyleGAN2Config, rosinality_width
from benchmark.sources.base import SOURCES, Source

log = logging.getLogger(__name__)

KIND = "rosinality-stylegan2"
V1_KIND = "rosinality-stylegan1"
EXPECTED_FORMAT = (
    "expected a rosinality stylegan2-pytorch file: train.py's checkpoint (g, d, g_ema, g_optim, d_optim, args, "
    "ada_aug_p) or convert_weight.py's (g_ema, latent_avg, optionally g and d)"
)
WHERE_TO_GET = (
    "download e.g. stylegan2-ffhq-config-f.pt from the README of github.com/rosinality/stylegan2-pytorch, or pass a "
    "checkpoint/NNNNNN.pt written by its train.py"
)
CHECKPOINT_KEYS = ("g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p", "latent_avg")
V1_KEYS = ("generator", "discriminator", "g_running", "g_optimizer", "d_optimizer")
SAFE_GLOBALS = [argparse.Namespace]  # train.py pickles its parsed arguments
NOISE_SEED = 0  # stored noise maps that older files lack are drawn from this seed, the same on every load


# --------------------------------------------------------------------------------------------
# Telling files apart without loading them


def _pickle_strings(stream) -> set[str]:
    """Every string one pickle holds (dict keys among them), read from its opcodes: nothing is executed."""
    return {
        arg
        for opcode, arg, _ in pickletools.genops(stream)
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8") and isinstance(arg, str)
    }


def checkpoint_strings(path) -> set[str]:
    """The strings in a torch checkpoint's pickle (its keys, state-dict keys included), without reading
    tensor data; empty for a file that is not a torch checkpoint or cannot be parsed."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if head.startswith(b"PK\x03\x04"):
                with zipfile.ZipFile(path) as archive:
                    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
                    return _pickle_strings(io.BytesIO(archive.read(pickles[0]))) if pickles else set()
            f.seek(0)
            strings: set[str] = set()
            for _ in range(4):  # torch's legacy format: magic, protocol, system info, then the object's pickle
                strings |= _pickle_strings(f)
            return strings
    except Exception:  # a damaged or foreign file: check_file names what it is
        return set()


def stylegan_version(strings: set[str]) -> str | None:
    """ "stylegan2" for rosinality stylegan2-pytorch keys, "stylegan1" for style-based-gan-pytorch keys, else None."""
    if "conv1.conv.modulation.weight" in strings or ("g_ema" in strings and "to_rgb1.bias" in strings):
        return "stylegan2"
    if "g_running" in strings or any(s.startswith("generator.progression.") for s in strings):
        return "stylegan1"
    return None


def refuse_foreign_pickle(path: Path) -> None:
    """An NVIDIA network pickle (stylegan2 TF or stylegan2-ada-pytorch) is a plain pickle of classes
    from ``dnnlib`` / ``torch_utils``; unpickling it runs their code, so it is refused before any load."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head.startswith(b"\x80") and (b"torch_utils" in head or b"dnnlib" in head):
        raise BenchmarkError(
            f"{path}: it is an NVIDIA StyleGAN network pickle (dnnlib / torch_utils classes), which source "
            f"{KIND!r} does not read; give it to source kind 'nvlabs-stylegan2-ada', which reads it without running "
            f"the code inside"
        )


def _check_path(path) -> Path:
    if path is None:
        raise BenchmarkError(f"source kind {KIND!r} needs a checkpoint path; {WHERE_TO_GET}")
    path = Path(path).expanduser()
    if path.is_dir():
        raise BenchmarkError(f"{path} is a folder, not a checkpoint file: pass the file inside it; {WHERE_TO_GET}")
    if not path.exists():
        raise BenchmarkError(f"{path}: no such checkpoint file; {WHERE_TO_GET}")
    return path


def _check_file(path: Path) -> tuple[str, set[str]]:
    """The file's kind in words and its pickle's strings; a one-line error for a foreign or unsafe file."""
    refuse_foreign_pickle(path)
    strings = checkpoint_strings(path)
    if stylegan_version(strings) == "stylegan1":
        raise BenchmarkError(
            f"{path}: it is a rosinality StyleGAN v1 (style-based-gan-pytorch) checkpoint; use source kind "
            f"{V1_KIND!r} for it"
        )
    with torch.serialization.safe_globals(SAFE_GLOBALS):  # check_file's list of allowed globals includes these
        found = check_file(path, "checkpoint", f"{path}: cannot be read as a torch checkpoint", WHERE_TO_GET)
    return found.what, strings


def preflight(path) -> str:
    """What ``--dry-run`` checks: the file is a rosinality StyleGAN2 checkpoint (no tensor data is read).

    Returns the file's kind, format and resolution in words; raises a one-line error for a v1
    checkpoint, an NVIDIA pickle, an HTML page, a pickled model, or a torch file without StyleGAN2 keys.
    """
    path = _check_path(path)
    what, strings = _check_file(path)
    if stylegan_version(strings) != "stylegan2":
        raise BenchmarkError(
            f"{path}: {what} without StyleGAN2 generator keys (conv1.conv.modulation.weight, to_rgb1.bias); "
            f"{EXPECTED_FORMAT}"
        )
    held = [k for k in ("g", "d", "g_ema") if k in strings]
    file_format = "train.py checkpoint" if "g_optim" in strings else "convert_weight.py file" if held else "state dict"
    n_rgbs = len({m.group(1) for s in strings if (m := re.fullmatch(r"to_rgbs\.(\d+)\.bias", s))})
    holding = f" holding {', '.join(held)}" if held else ""
    return f"{what}: a rosinality StyleGAN2 {file_format}{holding}, {4 * 2**n_rgbs} px"


# --------------------------------------------------------------------------------------------
# Reading


def _read(path: Path):
    _check_file(path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds for a file that is not a checkpoint
        raise BenchmarkError(
            f"{path}: cannot be read as a torch checkpoint ({describe(exc)}); {EXPECTED_FORMAT}"
        ) from None


def _strip_module_prefix(state: dict) -> dict:
    """Keys saved from an ``nn.DataParallel`` wrapper start with ``module.``; drop it."""
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


@dataclass
class _Contents:
    g_ema: dict
    g: dict | None
    d: dict | None
    latent_avg: torch.Tensor | None
    args: dict
    ada_aug_p: float | None
    file_format: str


def _split(raw, path: Path) -> _Contents:
    if not isinstance(raw, dict):
        raise BenchmarkError(f"{path}: holds a {type(raw).__name__}; {EXPECTED_FORMAT}")
    if any(k in raw for k in V1_KEYS) or any(str(k).startswith("generator.progression.") for k in raw):
        raise BenchmarkError(
            f"{path}: it is a rosinality StyleGAN v1 (style-based-gan-pytorch) checkpoint; use source kind "
            f"{V1_KIND!r} for it"
        )
    if _is_state_dict(raw):  # a bare generator state dict (g_ema.state_dict() saved on its own)
        return _Contents(_strip_module_prefix(raw), None, None, None, {}, None, "generator state dict")
    if not any(k in raw for k in CHECKPOINT_KEYS):
        keys = [str(k) for k in raw]
        raise BenchmarkError(
            f"{path}: a dict with {len(keys)} keys ({abbreviate(keys, 4) or 'empty'}) that is neither a "
            f"checkpoint nor a state dict; {EXPECTED_FORMAT}"
        )
    if "g_ema" not in raw:
        present = [k for k in CHECKPOINT_KEYS if k in raw]
        raise BenchmarkError(
            f"{path}: checkpoint without 'g_ema' (the EMA generator); it has {', '.join(present)}; {EXPECTED_FORMAT}"
        )
    for key in ("g_ema", "g", "d"):
        if key in raw and not _is_state_dict(raw[key]):
            raise BenchmarkError(f"{path}: '{key}' is a {type(raw[key]).__name__}, not a state dict; {EXPECTED_FORMAT}")
    args = raw.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else {}
    if args.get("arch", "stylegan2") != "stylegan2":
        raise BenchmarkError(
            f"{path}: a train.py checkpoint of arch {args['arch']!r}; this source reads StyleGAN2 (arch 'stylegan2')"
        )
    latent_avg = raw.get("latent_avg")
    return _Contents(
        g_ema=_strip_module_prefix(raw["g_ema"]),
        g=_strip_module_prefix(raw["g"]) if "g" in raw else None,
        d=_strip_module_prefix(raw["d"]) if "d" in raw else None,
        latent_avg=latent_avg.float().reshape(-1).clone() if isinstance(latent_avg, torch.Tensor) else None,
        args={k: v for k, v in args.items() if isinstance(v, str | int | float | bool | type(None))},
        ada_aug_p=float(raw["ada_aug_p"]) if isinstance(raw.get("ada_aug_p"), int | float) else None,
        file_format="train.py checkpoint" if "g_optim" in raw or "args" in raw else "convert_weight.py file",
    )


# --------------------------------------------------------------------------------------------
# The network shape, from the tensors


def infer_config(state: dict[str, torch.Tensor], path: Path) -> StyleGAN2Config:
    """The StyleGAN2Config whose generator has ``state``'s shapes (rosinality's widths where they fit)."""
    try:
        n_mlp = len([k for k in state if re.fullmatch(r"style\.\d+\.weight", k)])
        style_dim = state["style.1.weight"].shape[1]
        n_rgbs = len([k for k in state if re.fullmatch(r"to_rgbs\.\d+\.bias", k)])
        resolution = 4 * 2**n_rgbs
        widths = {4: state["input.input"].shape[1]}
        for k in range(n_rgbs):
            widths[8 * 2**k] = state[f"convs.{2 * k}.conv.weight"].shape[1]  # (1, out, in, 3, 3)
        image_channels = state["to_rgb1.conv.weight"].shape[1]
    except (KeyError, IndexError) as exc:
        raise BenchmarkError(
            f"{path}: the generator is not a rosinality StyleGAN2 (no {exc} of the right shape); {EXPECTED_FORMAT}"
        ) from None
    # Real files fit rosinality's widths for their channel multiplier (1, 2 or 4); tiny test nets keep overrides.
    cm = widths[64] // 256 if resolution >= 64 and widths[64] % 256 == 0 and widths[64] >= 256 else 2
    overrides = {r: w for r, w in widths.items() if w != rosinality_width(r, cm)}
    try:
        return StyleGAN2Config(
            resolution=resolution,
            style_dim=style_dim,
            n_mlp=n_mlp,
            channel_multiplier=cm,
            channels=overrides,
            image_channels=image_channels,
        )
    except ValueError as exc:
        raise BenchmarkError(f"{path}: the generator's shapes give no StyleGAN2 ({exc}); {EXPECTED_FORMAT}") from None


def _layout(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _check_layout(state: dict, layout: dict[str, tuple[int, ...]], what: str, path: Path) -> list[str]:
    """Refuse unexpected keys, missing keys (but stored noise) and wrong shapes; return the missing noise keys."""
    unexpected = [k for k in state if k not in layout]
    if unexpected:
        raise BenchmarkError(
            f"{path}: {what} has {len(unexpected)} unexpected keys: {abbreviate(unexpected, 4)}; {EXPECTED_FORMAT}"
        )
    missing = [k for k in layout if k not in state]
    noise = [k for k in missing if k.startswith("noises.")]
    missing = [k for k in missing if k not in noise]
    if missing:
        raise BenchmarkError(f"{path}: {what} lacks {len(missing)} keys: {abbreviate(missing, 4)}; {EXPECTED_FORMAT}")
    wrong = [f"{k} {tuple(state[k].shape)} != {layout[k]}" for k in state if tuple(state[k].shape) != layout[k]]
    if wrong:
        raise BenchmarkError(
            f"{path}: {what} has {len(wrong)} tensors of the wrong shape: {abbreviate(wrong, 3)}; {EXPECTED_FORMAT}"
        )
    return noise


def _copy(state: dict, layout: dict[str, tuple[int, ...]], missing_noise: dict[str, torch.Tensor]) -> dict:
    # A copy, so the Source does not keep the rest of the checkpoint (optimizer states) alive.
    copied = {k: (v.float() if v.is_floating_point() else v).clone() for k, v in state.items()}
    copied.update({k: v.clone() for k, v in missing_noise.items() if k not in copied})
    return {k: copied[k] for k in layout}


def _drawn_noise(layout: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Stored noise maps for files without them: random as rosinality's, but the same on every load."""
    generator = torch.Generator().manual_seed(NOISE_SEED)
    return {k: torch.randn(shape, generator=generator) for k, shape in layout.items() if k.startswith("noises.")}


# --------------------------------------------------------------------------------------------
# The loader


@SOURCES.register(KIND)
def load_rosinality_stylegan2(
    path, *, resolution: int = 256, name: str | None = None, cache_dir=None, device=None
) -> Source:
    """Load a rosinality stylegan2-pytorch checkpoint.

    Args:
        path: train.py's checkpoint, convert_weight.py's file, or a generator state dict.
        resolution: the suite's resolution; must be the checkpoint's (read from its keys).
        name: the source's name (default: the file's stem).
        cache_dir, device: accepted for the source contract; unused (weights stay on the CPU
            until a method builds its networks).

    Returns:
        A Source whose trained G is ``g`` and whose EMA G is ``g_ema`` (for a file without ``g``,
        both are ``g_ema``, with a logged note), and D from ``d`` (``d_state`` None without it).
        Stored noise maps (``noises.*``) that older files lack are drawn from a fixed seed.
    """
    path = _check_path(path)
    contents = _split(_read(path), path)
    config = infer_config(contents.g_ema, path)
    if int(resolution) != config.resolution:
        above = int(resolution) > config.resolution
        raise BenchmarkError(
            f"{path}: the generator is {config.resolution} px, "
            + (f"lower than the requested {resolution} px" if above else f"not the requested {resolution} px")
            + f"; a StyleGAN2 runs at the one resolution it was trained at: set resolution {config.resolution}"
        )
    with torch.device("meta"):
        g_layout, d_layout = _layout(config.generator()), _layout(config.discriminator())
    missing_noise = _check_layout(contents.g_ema, g_layout, "generator (g_ema)", path)
    if contents.g is not None:
        missing_noise += _check_layout(contents.g, g_layout, "generator (g)", path)
    noise = _drawn_noise(g_layout) if missing_noise else {}
    if missing_noise:
        log.info("%s has no stored noise maps (an older file): drawn from seed %d", path, NOISE_SEED)
    g_ema_state = _copy(contents.g_ema, g_layout, noise)
    if contents.g is not None:
        g_state = _copy(contents.g, g_layout, noise)
    else:
        g_state, g_ema_state = g_ema_state, None
        log.info("%s holds only g_ema: fine-tuning and its moving average both start from it", path)
    d_state = None
    if contents.d is not None:
        _check_layout(contents.d, d_layout, "discriminator (d)", path)
        d_state = _copy(contents.d, d_layout, {})
    else:
        log.info("%s holds no discriminator: methods that need D cannot use this source", path)

    provenance = {
        "kind": KIND,
        "path": str(path.resolve()),
        "sha256": file_sha256(path),
        "format": contents.file_format,
        "resolution": config.resolution,
        "channel_multiplier": config.channel_multiplier,
        "n_mlp": config.n_mlp,
        "has_discriminator": d_state is not None,
        "generators": "g + g_ema" if g_ema_state is not None else "g_ema only",
        "stored_noise": f"drawn from seed {NOISE_SEED} (absent from the file)" if missing_noise else "from the file",
        "ada_aug_p": contents.ada_aug_p,
        "train_args": contents.args,
    }
    without_d = (
        f"{path} holds no discriminator ('d'), which this method needs; use a train.py checkpoint or a "
        f"convert_weight.py file converted with --disc"
    )
    return Source(name or path.stem, config, g_state, d_state, provenance, g_ema_state, without_d, contents.latent_avg)


# What --dry-run calls (benchmark.runner.check_inputs): the file's kind, without loading weights.
load_rosinality_stylegan2.preflight = preflight
load_rosinality_stylegan2.backbone = "stylegan2"
