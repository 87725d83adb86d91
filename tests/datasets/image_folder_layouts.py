"""Miniature layouts of the image-folder data sets: ``folder``, ``lmdb`` and the named 10-shot sets.

The LMDBs are written here in rosinality's format (``prepare_data.py``: ``f"{size}-{str(i).zfill(5)}"``
-> encoded image, ``length`` -> the count) or AdAM's (``f"{str(i).zfill(6)}"``, no size), with the
``lmdb`` package, as the released CDC and AdAM sets are.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.fewshot_sets import SETS
from tests.datasets.layouts import BUILDERS as ALL_BUILDERS
from tests.datasets.layouts import Layout, write_jpeg


def image_array(seed: int, size: int) -> np.ndarray:
    """An RGB image of smooth colour, different per seed (exact through PNG)."""
    y, x = np.mgrid[0:size, 0:size]
    base = np.random.default_rng(seed).integers(0, 200, 3)
    return np.stack([(base[c] + x * (c + 1) + y) % 256 for c in range(3)], -1).astype(np.uint8)


def encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def write_lmdb(
    path: Path,
    n: int,
    sizes: tuple[int, ...] = (16, 32),
    scheme: str = "rosinality",
    length: int | None = None,
    skip: tuple[int, ...] = (),
    garbage: tuple[int, ...] = (),
) -> Path:
    """An LMDB as prepare_data.py writes it: image ``i`` at every size (rosinality) or once (AdAM).

    Args:
        skip: indices whose key is left out (a damaged database); ``length`` still counts them.
        garbage: indices stored as bytes that are no image.
    """
    import lmdb

    path.mkdir(parents=True, exist_ok=True)
    with lmdb.open(str(path), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for i in range(n):
            if i in skip:
                continue
            for size in sizes if scheme == "rosinality" else (sizes[-1],):
                value = b"not an image at all" if i in garbage else encoded(image_array(i, size))
                key = f"{size}-{str(i).zfill(5)}" if scheme == "rosinality" else str(i).zfill(6)
                txn.put(key.encode(), value)
        txn.put(b"length", str(n if length is None else length).encode())
    (path / "lock.mdb").unlink(missing_ok=True)  # as shipped: the reader must not need (or write) one
    return path


def make_folder(root: Path) -> Layout:
    """A folder of class folders, one with nested images, plus files a listing must skip."""
    files = ["cats/a.jpg", "cats/more/b.jpg", "cats/more/deeper/c.jpg", "dogs/d.jpg", "dogs/e.jpg", "dogs/f.jpg"]
    for i, relpath in enumerate(files):
        write_jpeg(root / relpath, i)
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / "dogs" / ".DS_Store").write_bytes(b"\0")
    (root / ".hidden").mkdir()
    write_jpeg(root / ".hidden" / "x.jpg")
    records = [(p, 0 if p.startswith("cats") else 1, None) for p in files]
    return Layout("folder", root, ["cats", "dogs"], {"train": records}, [])


def make_lmdb(root: Path) -> Layout:
    write_lmdb(root, 6)
    records = [(f"32-{i:05d}", 0, None) for i in range(6)]
    return Layout("lmdb", root, [root.name], {"train": records}, ["data.mdb"])


def fewshot_builder(name: str, has_full: bool) -> Callable[[Path], Layout]:
    """A named set as its archives extract: ``train/images/*.jpg`` (AdAM's layout), ``full/*.jpg`` holding the 10."""

    def make(root: Path) -> Layout:
        train = [f"train/images/image-{i}.jpg" for i in range(1, 11)]
        for i, relpath in enumerate(train):
            write_jpeg(root / relpath, i)
        records = {"train": [(p, 0, None) for p in train]}
        if has_full:
            full = [f"full/image-{i:02d}.jpg" for i in range(1, 13)]
            for i, relpath in enumerate(full):
                write_jpeg(root / relpath, i)
            records["full"] = [(p, 0, None) for p in full]
        return Layout(name, root, [name], records, ["full" if has_full else "train"])

    return make


BUILDERS: dict[str, Callable[[Path], Layout]] = {
    "folder": make_folder,
    "lmdb": make_lmdb,
    **{spec.name: fewshot_builder(spec.name, spec.full is not None) for spec in SETS},
}
ALL_BUILDERS.update(BUILDERS)  # tests.datasets.layouts imports this module, so build_layout knows them
