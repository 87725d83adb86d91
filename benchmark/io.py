"""Small file helpers: every write that another process (or a resumed run) may read is atomic."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmark.errors import describe

log = logging.getLogger(__name__)


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``."""
    return _atomic(Path(path), lambda f: torch.save(obj, f))


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
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    """The rows of a JSONL file; a torn last line (a process killed mid-append) is left out."""
    path = Path(path)
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = [json.loads(line) for line in lines[:-1]]
    if lines:
        with contextlib.suppress(ValueError):
            rows.append(json.loads(lines[-1]))
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
