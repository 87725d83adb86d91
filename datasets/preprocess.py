"""Shared preprocessing: crop, resize to the suite's resolution, cache as one uint8 tensor file.

Every loader's images go through the same code, so two datasets at the same resolution are
prepared identically. Decoding thousands of JPEGs is the slow part of a suite's start, so the
result is cached under a hash of everything it depends on (the loader's records, each file's
size and mtime, the resolution, channels and crop) and written atomically; a second run reads
one file. Corrupt or unreadable images are skipped, counted and reported, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmark.errors import BenchmarkError
from benchmark.io import atomic_torch_save
from datasets.base import DatasetLoader, Record

log = logging.getLogger(__name__)

CROPS = ("center", "bbox", "none")
_FORMAT_VERSION = 1  # bump when the pixels this module produces change


@dataclass
class PreparedImages:
    """A dataset split at one resolution, in memory.

    Attributes:
        images: uint8 tensor (N, C, H, W).
        labels: int64 tensor (N,), indices into ``class_names``.
        paths: each image's record path, the identity used by few-shot manifests.
        skipped: (path, reason) for every image that could not be read.
    """

    images: torch.Tensor
    labels: torch.Tensor
    paths: list[str]
    class_names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices) -> PreparedImages:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return PreparedImages(
            self.images[idx], self.labels[idx], [self.paths[i] for i in idx.tolist()], self.class_names
        )


def square_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """Grow a box to a square around its centre, shifted (and if need be shrunk) to fit the image."""
    x0, y0, x1, y1 = box
    side = min(max(x1 - x0, y1 - y0), width, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(cx - side / 2, 0), width - side)
    top = min(max(cy - side / 2, 0), height - side)
    return round(left), round(top), round(left + side), round(top + side)


def crop_box(width: int, height: int, crop: str, bbox=None) -> tuple[int, int, int, int]:
    """The region to keep: the object's square (``bbox``), the centred square, or everything (``none``)."""
    if crop == "none":
        return 0, 0, width, height
    if crop == "bbox" and bbox is not None:
        return square_box(bbox, width, height)
    side = min(width, height)
    return square_box(((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2), width, height)


def crop_and_resize(image: Image.Image, resolution: int, channels: int, crop: str, bbox=None) -> np.ndarray:
    """One image -> uint8 array (C, resolution, resolution).

    ``center`` takes the largest centred square; ``bbox`` the square around the object box
    (falling back to ``center`` without a box); ``none`` resizes the whole image. A JPEG much
    larger than needed is decoded at 1/2, 1/4 or 1/8 scale in the DCT domain (PIL's draft mode)
    while the crop stays at least ``resolution`` px, then resized with PIL's antialiased bicubic.
    """
    width, height = image.size
    box = crop_box(width, height, crop, bbox)
    if image.format == "JPEG":
        need_w = math.ceil(resolution * width / max(box[2] - box[0], 1))
        need_h = math.ceil(resolution * height / max(box[3] - box[1], 1))
        image.draft(image.mode, (need_w, need_h))
        if image.size != (width, height):
            sx, sy = image.size[0] / width, image.size[1] / height
            box = (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))
    image = image.convert("L" if channels == 1 else "RGB")
    if box != (0, 0, *image.size):
        image = image.crop(box)
    image = image.resize((resolution, resolution), Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _file_stamp(loader: DatasetLoader, record: Record):
    if loader.root is None:
        return None
    try:
        st = os.stat(loader.root / record.path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def cache_key(loader: DatasetLoader, resolution: int, channels: int, crop: str) -> str:
    stamps = [_file_stamp(loader, r) for r in loader.records()]
    payload = [loader.fingerprint(), stamps, resolution, channels, crop, _FORMAT_VERSION]
    return hashlib.sha1(json.dumps(payload).encode()).hexdigest()[:16]


def _load_one(loader: DatasetLoader, record: Record, resolution: int, channels: int, crop: str):
    try:
        image = loader.open_image(record)
        return crop_and_resize(image, resolution, channels, crop, record.bbox), None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return None, f"{type(err).__name__}: {err}"


def prepare_images(
    loader: DatasetLoader,
    resolution: int,
    channels: int = 3,
    crop: str = "center",
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> PreparedImages:
    """Decode, crop and resize every record of ``loader``; reuse the cache when its inputs match.

    Args:
        loader: any registered dataset loader.
        resolution: output size in pixels.
        channels: 1 (grayscale) or 3 (RGB).
        crop: one of ``center``, ``bbox`` (object crop where the dataset has boxes), ``none``.
        cache_dir: folder for ``images-<hash>.pt`` files; no caching when None.
        workers: decoding threads (PIL releases the GIL while decoding); default: all cores.
    """
    if crop not in CROPS:
        raise BenchmarkError(f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
    if channels not in (1, 3):
        raise BenchmarkError(f"channels must be 1 or 3, got {channels}")
    path = None
    if cache_dir is not None:
        key = cache_key(loader, resolution, channels, crop)
        path = Path(cache_dir) / f"images-{loader.name}-{resolution}px-{key}.pt"
        if path.exists():
            data = torch.load(path, weights_only=True)
            return PreparedImages(
                data["images"], data["labels"], data["paths"], data["class_names"], [tuple(s) for s in data["skipped"]]
            )

    records = loader.records()
    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results = list(
            tqdm(
                pool.map(lambda r: _load_one(loader, r, resolution, channels, crop), records),
                total=len(records),
                desc=f"preparing {loader.name} at {resolution} px",
                disable=not progress or len(records) < 200,
                leave=False,
            )
        )
    arrays, labels, paths, skipped = [], [], [], []
    for record, (array, problem) in zip(records, results):
        if problem is not None:
            skipped.append((record.path, problem))
            continue
        arrays.append(array)
        labels.append(record.label)
        paths.append(record.path)
    if skipped:
        log.warning(
            "%s: skipped %d unreadable image(s) of %d, e.g. %s (%s)",
            loader.name,
            len(skipped),
            len(records),
            skipped[0][0],
            skipped[0][1],
        )
    if not arrays:
        raise BenchmarkError(f"{loader.name}: none of the {len(records)} images could be read under {loader.root}")
    prepared = PreparedImages(
        torch.from_numpy(np.stack(arrays)),
        torch.tensor(labels, dtype=torch.long),
        paths,
        loader.class_names(),
        skipped,
    )
    if path is not None:
        atomic_torch_save(
            {
                "images": prepared.images,
                "labels": prepared.labels,
                "paths": prepared.paths,
                "class_names": prepared.class_names,
                "skipped": [list(s) for s in skipped],
            },
            path,
        )
        log.info("cached %d images at %s", len(prepared), path)
    return prepared
