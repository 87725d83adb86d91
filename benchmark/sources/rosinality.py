"""rosinality/style-based-gan-pytorch checkpoints as sources (FreezeD's, MineGAN's and Hyper-Modulation's FFHQ-256).

rosinality's networks always hold all nine resolutions (4 .. 1024 px) and run a prefix of them
(``step``); a checkpoint therefore stores every block, and the 256 px model is ``step = 6`` of it.
Two file formats come out of its train.py:

- the training checkpoint (``stylegan-256px-new.model``): a dict with ``generator``,
  ``discriminator``, ``g_running`` (the EMA generator), ``g_optimizer`` and ``d_optimizer``;
- the periodic ``NNNNNN.model`` files: ``g_running``'s state dict alone (no discriminator).

The backbone (benchmark.nets) keeps rosinality's parameter names and indices, so loading is a
key *selection*: G takes ``style.*``, ``generator.progression.0..step`` and ``generator.to_rgb.step``
from ``generator`` (where fine-tuning starts) and from ``g_running`` (where its moving average
starts: FreezeD and MineGAN finetune.py); a file holding only ``g_running`` serves as both;
D takes ``from_rgb.(8 - step)``, ``progression.(8 - step)..8`` and ``linear`` from
``discriminator`` (which must be the ``from_rgb_activate=True`` variant that the new checkpoints
use). Weights are copied as stored: ``weight_orig`` stays unscaled and the backbone applies the
equalized-lr scale at forward time, as rosinality's hook does.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from benchmark.errors import BenchmarkError, abbreviate, describe
from benchmark.files import check_file, file_sha256
from benchmark.nets import BackboneConfig, Discriminator, StyledGenerator
from benchmark.nets.stylegan import N_ROSINALITY_BLOCKS, ROSINALITY_CHANNELS, resolution_index
from benchmark.sources.base import SOURCES, Source
from benchmark.sources.rosinality2 import KIND as STYLEGAN2_KIND
from benchmark.sources.rosinality2 import checkpoint_strings, stylegan_version

log = logging.getLogger(__name__)

KIND = "rosinality-stylegan1"
EXPECTED_FORMAT = (
    "expected a rosinality style-based-gan-pytorch checkpoint: a dict with generator/discriminator/g_running "
    "(train.py's checkpoint, e.g. stylegan-256px-new.model), or a g_running state dict (the NNNNNN.model files)"
)
WHERE_TO_GET = (
    "download the FFHQ 256 px 'Model & Optimizer' checkpoint stylegan-256px-new.model from the README of "
    "github.com/rosinality/style-based-gan-pytorch (see docs/pretrained_files.md)"
)
TRAINING_KEYS = ("generator", "discriminator", "g_running", "g_optimizer", "d_optimizer")
_IMAGE_CHANNELS = 3


# --------------------------------------------------------------------------------------------
# The original key layout


def _rosinality_config() -> BackboneConfig:
    return BackboneConfig(resolution=4 * 2 ** (N_ROSINALITY_BLOCKS - 1))  # 1024 px: every block


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def rosinality_generator_layout() -> dict[str, tuple[int, ...]]:
    """Every key and shape of rosinality's ``StyledGenerator(512, n_mlp=8).state_dict()``.

    Our 1024 px generator holds all nine progression blocks but only the last to_rgb; the
    original keeps a to_rgb per resolution, added here.
    """
    with torch.device("meta"):
        layout = _shapes(StyledGenerator(_rosinality_config()))
    layout = {k: v for k, v in layout.items() if not k.startswith("generator.to_rgb.")}
    for i in range(N_ROSINALITY_BLOCKS):
        width = ROSINALITY_CHANNELS[4 * 2**i]
        layout[f"generator.to_rgb.{i}.conv.weight_orig"] = (_IMAGE_CHANNELS, width, 1, 1)
        layout[f"generator.to_rgb.{i}.conv.bias"] = (_IMAGE_CHANNELS,)
    return layout


def rosinality_discriminator_layout() -> dict[str, tuple[int, ...]]:
    """Every key and shape of rosinality's ``Discriminator(from_rgb_activate=True).state_dict()``."""
    with torch.device("meta"):
        layout = _shapes(Discriminator(_rosinality_config()))
    layout = {k: v for k, v in layout.items() if not k.startswith("from_rgb.")}
    for index in range(N_ROSINALITY_BLOCKS):
        width = ROSINALITY_CHANNELS[4 * 2 ** (N_ROSINALITY_BLOCKS - 1 - index)]  # D index 0 reads 1024 px
        layout[f"from_rgb.{index}.0.conv.weight_orig"] = (width, _IMAGE_CHANNELS, 1, 1)
        layout[f"from_rgb.{index}.0.conv.bias"] = (width,)
    return layout


# --------------------------------------------------------------------------------------------
# Reading and checking


def _read(path: Path):
    check_checkpoint_file(path)  # an HTML page or a pickled model is named as such, not as an unpickling error
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds for a file that is not a checkpoint
        raise BenchmarkError(
            f"{path}: cannot be read as a torch checkpoint ({describe(exc)}); {EXPECTED_FORMAT}"
        ) from None


def check_checkpoint_file(path) -> str:
    """What ``--dry-run`` checks: the file is a torch checkpoint of tensors (no weights are read).

    Returns the file's kind in words; raises a one-line error naming what the file is otherwise
    (an HTML page from a failed Google Drive download, a TorchScript archive, a pickled model, ...).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise BenchmarkError(f"{path} is a folder, not a checkpoint file: pass the file inside it; {WHERE_TO_GET}")
    if stylegan_version(checkpoint_strings(path)) == "stylegan2":  # read from the pickle's keys, before check_file
        raise BenchmarkError(
            f"{path}: it is a rosinality StyleGAN2 (stylegan2-pytorch) checkpoint; use source kind "
            f"{STYLEGAN2_KIND!r} for it"
        )
    return check_file(path, "checkpoint", f"{path}: cannot be read as a torch checkpoint", WHERE_TO_GET).what


def _strip_module_prefix(state: dict) -> dict:
    """Keys saved from an ``nn.DataParallel`` wrapper start with ``module.``; drop it."""
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _split(raw, path: Path) -> tuple[dict, dict | None, dict | None, str]:
    """(g_running state, generator state or None, discriminator state or None, format name) from a loaded file."""
    if not isinstance(raw, dict):
        raise BenchmarkError(f"{path}: holds a {type(raw).__name__}; {EXPECTED_FORMAT}")
    if any(k in raw for k in TRAINING_KEYS):
        if "g_running" not in raw:
            present = [k for k in TRAINING_KEYS if k in raw]
            raise BenchmarkError(
                f"{path}: training checkpoint without 'g_running' (the EMA generator); it has {', '.join(present)}; "
                f"{EXPECTED_FORMAT}"
            )
        for key in ("g_running", "generator", "discriminator"):
            if key in raw and not _is_state_dict(raw[key]):
                raise BenchmarkError(
                    f"{path}: '{key}' is a {type(raw[key]).__name__}, not a state dict; {EXPECTED_FORMAT}"
                )
        trained = _strip_module_prefix(raw["generator"]) if "generator" in raw else None
        d_state = _strip_module_prefix(raw["discriminator"]) if "discriminator" in raw else None
        return _strip_module_prefix(raw["g_running"]), trained, d_state, "training checkpoint"
    if not _is_state_dict(raw):
        keys = [str(k) for k in raw]
        raise BenchmarkError(
            f"{path}: a dict with {len(keys)} keys ({abbreviate(keys, 4) or 'empty'}) that is neither a training "
            f"checkpoint nor a state dict; {EXPECTED_FORMAT}"
        )
    state = _strip_module_prefix(raw)
    if not any(k.startswith(("generator.", "style.")) for k in state) and set(state) <= set(
        rosinality_discriminator_layout()
    ):
        raise BenchmarkError(
            f"{path}: holds a discriminator state dict only; the source needs the generator (g_running); "
            f"{EXPECTED_FORMAT}"
        )
    return state, None, None, "g_running state dict"


def _check_layout(state: dict, layout: dict[str, tuple[int, ...]], what: str, path: Path) -> None:
    """Refuse keys outside rosinality's layout and tensors whose shape differs from it."""
    unexpected = [k for k in state if k not in layout]
    if unexpected:
        hint = ""
        if what == "discriminator" and any(re.fullmatch(r"from_rgb\.\d+\.conv\..*", k) for k in unexpected):
            hint = " (from_rgb.N.conv.* is the old from_rgb_activate=False discriminator, which is not supported)"
        raise BenchmarkError(
            f"{path}: {what} has {len(unexpected)} unexpected keys: {abbreviate(unexpected, 4)}{hint}; "
            f"{EXPECTED_FORMAT}"
        )
    wrong = [f"{k} {tuple(state[k].shape)} != {layout[k]}" for k in state if tuple(state[k].shape) != layout[k]]
    if wrong:
        raise BenchmarkError(
            f"{path}: {what} has {len(wrong)} tensors of the wrong shape: {abbreviate(wrong, 3)} "
            f"(the original widths are style_dim 512, 8 mapping layers, 512..16 channels); {EXPECTED_FORMAT}"
        )


def _top_block(state: dict) -> int:
    """Highest rosinality G index with any progression key in ``state`` (-1: none)."""
    indices = [int(m.group(1)) for k in state if (m := re.match(r"generator\.progression\.(\d+)\.", k))]
    return max(indices, default=-1)


def _trained_top_block(g_state: dict) -> int:
    """Highest G block that training touched.

    rosinality's optimizer never updates blocks above the current step (they get no gradient),
    so they keep their initial values: noise strengths and to_rgb bias exactly zero. A trained
    block has non-zero noise strengths.
    """
    top = -1
    for i in range(N_ROSINALITY_BLOCKS):
        keys = [f"generator.progression.{i}.noise1.weight_orig", f"generator.progression.{i}.noise2.weight_orig"]
        keys.append(f"generator.to_rgb.{i}.conv.bias")
        if all(k in g_state for k in keys) and any(bool(g_state[k].count_nonzero()) for k in keys):
            top = i
    return top


def _select(state: dict, needed: dict[str, tuple[int, ...]], what: str, path: Path, resolution: int) -> dict:
    missing = [k for k in needed if k not in state]
    if missing:
        raise BenchmarkError(
            f"{path}: {what} lacks {len(missing)} keys needed at {resolution} px: {abbreviate(missing, 4)}; "
            f"{EXPECTED_FORMAT}"
        )
    # A copy, so the Source does not keep the rest of the checkpoint (optimizer states, 1024 px blocks) alive.
    return {k: (state[k].float() if state[k].is_floating_point() else state[k]).clone() for k in needed}


# --------------------------------------------------------------------------------------------
# The loader


@SOURCES.register(KIND)
def load_rosinality_stylegan1(
    path,
    *,
    resolution: int = 256,
    check_trained: bool = True,
    name: str | None = None,
    cache_dir=None,
    device=None,
) -> Source:
    """Load a rosinality StyleGAN v1 checkpoint at ``resolution`` (256 px = step 6).

    Args:
        path: the checkpoint (training checkpoint or g_running state dict).
        resolution: the output size to run the networks at; the checkpoint must have been trained
            at least that far.
        check_trained: refuse a resolution whose generator blocks are still at their initial
            values (the checkpoint was trained only to a lower resolution).
        name: the source's name (default: the file's stem).
        cache_dir, device: accepted for the source contract; unused (weights stay on the CPU
            until a method builds its networks).

    Returns:
        A Source whose trained G is ``generator`` and whose EMA G is ``g_running`` (for a file with
        only ``g_running``, both are it, with a logged note), and D from ``discriminator``;
        ``d_state`` is None for a g_running-only file.
    """
    if path is None:
        raise BenchmarkError(f"source kind {KIND!r} needs a checkpoint path; {WHERE_TO_GET}")
    path = Path(path).expanduser()
    if not path.exists():
        raise BenchmarkError(f"{path}: no such checkpoint file; {WHERE_TO_GET}")
    try:
        step = resolution_index(int(resolution))
    except (TypeError, ValueError) as exc:
        raise BenchmarkError(f"source {path.name}: {exc}") from None

    g_raw, trained_raw, d_raw, file_format = _split(_read(path), path)
    g_layout = rosinality_generator_layout()
    _check_layout(g_raw, g_layout, "generator (g_running)", path)
    if trained_raw is not None:
        _check_layout(trained_raw, g_layout, "generator", path)
    top = _top_block(g_raw)
    if top < step:
        have = f"stops at {4 * 2**top} px (step {top})" if top >= 0 else "has no synthesis block"
        raise BenchmarkError(
            f"{path}: the generator {have}, lower than the requested {resolution} px (step {step}); "
            f"choose resolution <= {4 * 2 ** max(top, 0)} or a checkpoint trained further"
        )
    if check_trained:
        trained = _trained_top_block(g_raw)
        if trained < step:
            have = f"{4 * 2**trained} px (step {trained})" if trained >= 0 else "no resolution"
            raise BenchmarkError(
                f"{path}: the generator was trained only up to {have}: its blocks above are at their initial "
                f"values (zero noise strengths and to_rgb bias); choose resolution <= {4 * 2 ** max(trained, 0)}, "
                f"or pass check_trained: false for a deliberately untrained checkpoint"
            )

    config = BackboneConfig(resolution=int(resolution))
    with torch.device("meta"):
        g_needed, d_needed = _shapes(StyledGenerator(config)), _shapes(Discriminator(config))
    g_ema_state = _select(g_raw, g_needed, "generator (g_running)", path, resolution)
    if trained_raw is not None:
        g_state = _select(trained_raw, g_needed, "generator", path, resolution)
    else:
        g_state, g_ema_state = g_ema_state, None
        log.info("%s holds only g_running: fine-tuning and its moving average both start from it", path)
    d_state = None
    if d_raw is not None:
        _check_layout(d_raw, rosinality_discriminator_layout(), "discriminator", path)
        d_state = _select(d_raw, d_needed, "discriminator", path, resolution)
    else:
        log.info("%s holds no discriminator: methods that need D cannot use this source", path)

    provenance = {
        "kind": KIND,
        "path": str(path.resolve()),
        "sha256": file_sha256(path),
        "format": file_format,
        "resolution": int(resolution),
        "step": step,
        "has_discriminator": d_state is not None,
        "generators": "generator + g_running" if g_ema_state is not None else "g_running only",
    }
    without_d = (
        f"{path} is a g_running state dict with no discriminator, which this method needs; "
        f"use the training checkpoint (with 'discriminator')"
    )
    return Source(name or path.stem, config, g_state, d_state, provenance, g_ema_state, without_d)


# What --dry-run calls (benchmark.runner.check_inputs): the file's kind, without loading weights.
load_rosinality_stylegan1.preflight = check_checkpoint_file
load_rosinality_stylegan1.backbone = "stylegan1"
