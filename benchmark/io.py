"""Small file helpers: every write that another process (or a resumed run) may read is atomic."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml


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
