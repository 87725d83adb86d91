"""Small file helpers: every write that another process (or a resumed run) may read is atomic."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmark.errors import BenchmarkError, describe

log = logging.getLogger(__name__)

_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left on the device; disk quota exceeded
# torch's zip writer reports a failed write of a Python file object as its own RuntimeError (the
# OSError is only its __context__), and of a path with no Python error at all.
_TORCH_WRITE_FAILED = ("file write failed", "unexpected pos", "PytorchStreamWriter failed")
_NEARLY_FULL = 64 * 2**20  # free bytes below which torch's bare "write failed" counts as a full disk


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _free_bytes(folder: Path) -> int | None:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full_error(err: BaseException, path: str | Path, needed: int | None = None) -> BenchmarkError | None:
    """The one-line error for a write of ``path`` that failed for want of space or quota, or None.

    The OSError (ENOSPC, EDQUOT) is looked for along the exception's chain, where torch's writer
    leaves it; torch's bare "file write failed" counts when the folder is (nearly) full.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    full, seen = False, set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen and not full:
        seen.add(id(cause))
        full = isinstance(cause, OSError) and cause.errno in _FULL
        cause = cause.__cause__ or cause.__context__
    free = _free_bytes(folder)
    if not full and isinstance(err, RuntimeError) and any(m in str(err) for m in _TORCH_WRITE_FAILED):
        full = free is not None and free < max(_NEARLY_FULL, needed or 0)
    if not full:
        return None
    what = "in " if folder == path else f"{path.name} in "
    room = f"{_size(free)} free" if free is not None else "free space unknown"
    need = f", about {_size(needed)} needed" if needed else ""
    return BenchmarkError(
        f"no space left on the device (or the disk quota is reached) writing {what}{folder} ({room}{need}): "
        f"free space there, or point --out or GTB_CACHE_DIR elsewhere, then run the same command again: "
        f"what was written before is kept and interrupted cells resume from their last checkpoint"
    )


def _atomic(path: Path, write, needed: int | None = None, previous: Path | None = None) -> Path:
    """Write ``path`` through a temporary file in its folder and ``os.replace``; with ``previous``, the
    file it replaces is kept under that name. A write that fails for want of space is a one-line error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        full = disk_full_error(err, path, needed) if isinstance(err, (OSError, RuntimeError)) else None
        if full is not None:
            raise full from None
        raise
    return path


def _tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in nested dicts, lists and tuples (what ``torch.save`` mostly writes)."""
    if isinstance(obj, torch.Tensor):
        return obj.untyped_storage().nbytes() if obj.device.type != "meta" else 0
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def atomic_torch_save(obj: Any, path: str | Path, previous: str | Path | None = None) -> Path:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``.

    Args:
        obj: what to save.
        path: the file.
        previous: keep the file ``path`` held before under this name (a checkpoint's fallback).
    """
    return _atomic(
        Path(path),
        lambda f: torch.save(obj, f),
        needed=_tensor_bytes(obj),
        previous=Path(previous) if previous is not None else None,
    )


def folder_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be a folder to write in (it is a file, or it or the folder it would go in is
    read-only), or None. Nothing is left behind: the probe is a temporary folder in the nearest
    existing ancestor, removed at once, so ``--dry-run`` can check without creating the folder."""
    path = Path(path).expanduser()
    try:
        if path.exists() and not path.is_dir():
            return "it is a file, not a folder"
        ancestor = path
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            return f"{ancestor} is a file, not a folder"
        os.rmdir(tempfile.mkdtemp(dir=ancestor, prefix=".write-test-"))
    except OSError as err:
        return f"it is not writable ({err.strerror or err})"
    return None


def read_cached(path: str | Path, **load_options) -> Any | None:
    """A cache file's contents, or None (and a warning) when it cannot be read, so the caller rebuilds it.

    Caches are written atomically, but a copied, synced or half-restored cache folder can still hold
    a truncated or foreign file; rebuilding costs time, failing every cell over it costs the suite.
    """
    try:
        return torch.load(path, weights_only=True, **load_options)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... on a damaged file
        log.warning("ignoring unreadable cache file %s (%s); rebuilding it", path, describe(err))
        return None


def atomic_write_text(text: str, path: str | Path) -> Path:
    return _atomic(Path(path), lambda f: f.write(text.encode()))


def write_json(obj: Any, path: str | Path) -> Path:
    return atomic_write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", path)


def write_yaml(obj: Any, path: str | Path) -> Path:
    return atomic_write_text(yaml.safe_dump(obj, sort_keys=False), path)


def append_jsonl(obj: Any, path: str | Path) -> None:
    """One JSON object per line; appends are small enough to be written in one call."""
    try:
        with open(path, "a") as f:
            f.write(json.dumps(obj) + "\n")
    except OSError as err:
        full = disk_full_error(err, path)
        if full is not None:
            raise full from None
        raise


def read_jsonl(path: str | Path) -> list[dict]:
    """The rows of a JSONL file; a torn last line (a process killed mid-append) is left out.

    A damaged line elsewhere (a crash can leave zeros where a block was not flushed) is left out
    too, with a warning naming the file: the rows around it are still results.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip("\x00 \t")]
    rows, damaged = [], 0
    for number, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except ValueError:
            damaged += number < len(lines) - 1  # a torn last line is the ordinary end of a killed append
    if damaged:
        log.warning("%s: left out %d damaged line(s) of %d", path, damaged, len(lines))
    return rows


def to_plain(obj: Any) -> Any:
    """Dataclasses, tuples and dicts -> JSON/YAML-safe plain data (a dataclass with ``to_dict`` gives its own)."""
    if dataclasses.is_dataclass(obj):
        if hasattr(obj, "to_dict"):
            return obj.to_dict()
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def config_hash(obj: Any, n: int = 8) -> str:
    """A short hash of ``obj`` as plain data: names run folders and caches after what shaped them."""
    return hashlib.sha1(json.dumps(to_plain(obj), sort_keys=True).encode()).hexdigest()[:n]
