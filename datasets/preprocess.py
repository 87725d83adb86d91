"""Shared preprocessing: pad, crop and resize to the suite's resolution, cache as one uint8 tensor file.

Every loader's images go through the same code, so two datasets at the same resolution are
prepared identically. Decoding thousands of JPEGs is the slow part of a suite's start, so the
result is cached under a hash of everything it depends on (the loader's records, each file's
size and mtime, the resolution, channels, crop and the loader's canvas) and written atomically;
a second run maps that one file into memory, so its pages are read only when used (a few-shot
split touches few) and processes running cells side by side share them through the OS page
cache. Corrupt or unreadable images are skipped, counted and reported, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmark.errors import BenchmarkError
from benchmark.io import atomic_torch_save
from datasets.base import DATASETS, DatasetLoader, Record

log = logging.getLogger(__name__)

CROPS = ("center", "bbox", "none")
# bump when the pixels this module produces change (2: torch's resize, not PIL's; 3: images deeper than
# 8 bits scaled, not clipped, to 8 bits)
_FORMAT_VERSION = 3
# Pillow's modes with more than 8 bits per sample that its convert() to L or RGB clips instead of
# scaling (16-bit PNG and TIFF grey, 32-bit integer and float grey). 16-bit RGB(A) PNGs Pillow
# itself opens as 8-bit RGB(A), scaled correctly; alpha is dropped by convert() as for 8-bit images.
_DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_INTEGER_RANGES = (255, 65535, 2**31 - 1)  # 8, 16 and 32 bits (Pillow's "I" is signed)


def to_8bit(image: Image.Image) -> Image.Image:
    """An image deeper than 8 bits as 8-bit grey ("L"), scaled by the range of its type; others unchanged.

    16-bit modes are scaled from 0..65535. Pillow opens 32-bit and some 16-bit files as "I", so its
    range is the smallest of 8, 16 or 32 bits that holds the image's largest value. Float ("F")
    images are read as 0..1 or, when a value exceeds 1, 0..255. Anything else (negative values, a
    float beyond 255) has no known scale: ValueError, and preprocessing skips the image with that reason.
    """
    if image.mode not in _DEEP_MODES:
        return image
    values = np.asarray(image, dtype=np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or not np.isfinite(values).all():
        raise ValueError(f"mode {image.mode} image with values {low:g}..{high:g}: no known scale to 8 bits")
    if image.mode.startswith("I;16"):
        top = 65535
    elif image.mode == "I":
        top = next(r for r in _INTEGER_RANGES if high <= r)
    elif high <= 1:
        top = 1
    elif high <= 255:
        top = 255
    else:
        raise ValueError(f"mode F image with values {low:g}..{high:g}: neither 0..1 nor 0..255, no known scale")
    return Image.fromarray(np.round(values * (255 / top)).astype(np.uint8), "L")


@dataclass
class PreparedImages:
    """A dataset split at one resolution, in memory.

    Attributes:
        images: uint8 tensor (N, C, H, W); when read from the cache, a copy-on-write memory map of it.
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
    side = max(round(side), 1)  # rounded once, so the crop is exactly square
    left = round(min(max(cx - side / 2, 0), width - side))
    top = round(min(max(cy - side / 2, 0), height - side))
    return left, top, left + side, top + side


def box_problem(bbox, width: int, height: int, declared: tuple[int, int] | None = None) -> str | None:
    """What is wrong with an object box for an image of ``width`` x ``height`` pixels, or None.

    The rule (README, "Object boxes"): a box that reaches past the image is clipped to it; one that is
    empty, inverted, wholly outside the image, or annotated for an image of another size (the VOC
    file's declared ``<size>``) is not used, and the image is centre-cropped like one without a box.
    """
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    if declared is not None and tuple(declared) != (width, height):
        return "declared for another image size"
    if not (x1 > x0 and y1 > y0):
        return "empty or inverted"
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        return "wholly outside the image"
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        return "reaches past the image (clipped)"
    return None


def clip_box(bbox, width: int, height: int):
    """The part of a box inside the image, or None when none is (or the box is empty or inverted)."""
    x0, y0, x1, y1 = max(bbox[0], 0), max(bbox[1], 0), min(bbox[2], width), min(bbox[3], height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def crop_box(width: int, height: int, crop: str, bbox=None) -> tuple[int, int, int, int]:
    """The region to keep: the object's square (``bbox``), the centred square, or everything (``none``).

    A box is clipped to the image first; an empty or inverted box, or one wholly outside the image (a
    damaged annotation), counts as no box.
    """
    if crop == "none":
        return 0, 0, width, height
    if crop == "bbox" and bbox is not None and bbox[2] > bbox[0] and bbox[3] > bbox[1]:
        inside = clip_box(bbox, width, height)
        if inside is not None:
            return square_box(inside, width, height)
    side = min(width, height)
    return square_box(((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2), width, height)


def pad_to_canvas(image: Image.Image, canvas: int, bbox=None) -> tuple[Image.Image, tuple | None]:
    """The image centred on a ``canvas`` x ``canvas`` square of zeros (black in L and RGB; a side
    already as long is kept), and its object box moved with it."""
    width, height = image.size
    if width >= canvas and height >= canvas:
        return image, bbox
    left, top = (max(canvas, width) - width) // 2, (max(canvas, height) - height) // 2
    padded = Image.new(image.mode, (max(canvas, width), max(canvas, height)))  # zeros
    padded.paste(image, (left, top))
    if bbox is not None:
        bbox = (bbox[0] + left, bbox[1] + top, bbox[2] + left, bbox[3] + top)
    return padded, bbox


def crop_and_resize(
    image: Image.Image, resolution: int, channels: int, crop: str, bbox=None, canvas: int | None = None
) -> np.ndarray:
    """One image -> uint8 array (C, resolution, resolution).

    With ``canvas`` (the loader's), an image smaller than it is first centred on a black square of
    that side: MNIST's 28 px padded to 32, whose pixels then stay exact at 32 px, since a resize to
    the same size is the identity. ``center`` takes the largest centred square; ``bbox`` the
    square around the object box (falling back to ``center`` without a box); ``none`` resizes
    the whole image. A JPEG much
    larger than needed is decoded at 1/2, 1/4 or 1/8 scale in the DCT domain (PIL's draft mode)
    while the crop stays at least ``resolution`` px. The crop is then resized with antialiased
    bicubic interpolation by torch's uint8 kernel, which agrees with PIL's ``resize(BICUBIC)``
    to within one grey level and takes a third of its time; resizing was most of the cost of a
    cold start.
    """
    mode = "L" if channels == 1 else "RGB"
    image = to_8bit(image)
    if canvas is not None and min(image.size) < canvas:
        image, bbox = pad_to_canvas(image.convert(mode), canvas, bbox)  # converted first: black is 0 in L and RGB
    width, height = image.size
    box = crop_box(width, height, crop, bbox)
    if image.format == "JPEG":
        need_w = math.ceil(resolution * width / max(box[2] - box[0], 1))
        need_h = math.ceil(resolution * height / max(box[3] - box[1], 1))
        image.draft(image.mode, (need_w, need_h))
        if image.size != (width, height):
            sx, sy = image.size[0] / width, image.size[1] / height
            left, top = round(box[0] * sx), round(box[1] * sy)  # sizes scaled, not corners, so a square stays one
            box = (left, top, left + round((box[2] - box[0]) * sx), top + round((box[3] - box[1]) * sy))
    if image.mode != mode:
        image = image.convert(mode)
    left, top, right, bottom = box
    region = torch.from_numpy(np.array(np.asarray(image)[top:bottom, left:right]))  # a writable copy of the crop
    region = region[None, None] if region.ndim == 2 else region.permute(2, 0, 1)[None]
    resized = F.interpolate(region, size=(resolution, resolution), mode="bicubic", antialias=True)
    return resized[0].numpy()


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
    if loader.canvas is not None:  # only then, so the keys of loaders without a canvas stay as they were
        payload.append({"canvas": loader.canvas})
    return hashlib.sha1(json.dumps(payload).encode()).hexdigest()[:16]


def _read_cache(path: Path) -> PreparedImages | None:
    """The cached split, memory-mapped; None (and a warning) when the file cannot be read, so it is rebuilt."""
    try:
        data = torch.load(path, weights_only=True, mmap=True)
        return PreparedImages(
            data["images"], data["labels"], data["paths"], data["class_names"], [tuple(s) for s in data["skipped"]]
        )
    except Exception as err:  # a damaged or foreign file: torch raises RuntimeError, EOFError, pickle errors, ...
        log.warning("ignoring unreadable image cache %s (%s: %s); rebuilding it", path, type(err).__name__, err)
        return None


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
    if crop == "bbox" and not loader.has_bboxes:
        with_boxes = ", ".join(n for n in DATASETS.names() if DATASETS.get(n).has_bboxes)
        raise BenchmarkError(
            f"{loader.name} has no bounding boxes, so crop='bbox' cannot apply (datasets with boxes: "
            f"{with_boxes}); use crop='center'"
        )
    if channels not in (1, 3):
        raise BenchmarkError(f"channels must be 1 or 3, got {channels}")
    path = None
    if cache_dir is not None:
        key = cache_key(loader, resolution, channels, crop)
        path = Path(cache_dir) / f"images-{loader.name}-{resolution}px-{key}.pt"
        if path.exists():
            cached = _read_cache(path)
            if cached is not None:
                return cached

    records = loader.records()
    images = torch.empty((len(records), channels, resolution, resolution), dtype=torch.uint8)

    box_problems: list[str] = []  # list.append is atomic: the decoding threads share it

    def decode(index: int) -> str | None:
        record = records[index]
        try:
            image, bbox = loader.open_image(record), record.bbox
            if crop == "bbox" and bbox is not None:
                problem = box_problem(bbox, *image.size, record.size)
                if problem is not None:
                    box_problems.append(problem)
                    if problem == "declared for another image size":
                        bbox = None
            images[index] = torch.from_numpy(crop_and_resize(image, resolution, channels, crop, bbox, loader.canvas))
        except Exception as err:  # PIL raises OSError, SyntaxError, EOFError, struct.error, ... on damaged files
            return f"{type(err).__name__}: {err}"
        return None

    from tqdm.auto import tqdm

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the pool already keeps every core busy; torch's own threads would only compete
    try:
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            problems = list(
                tqdm(
                    pool.map(decode, range(len(records))),
                    total=len(records),
                    desc=f"preparing {loader.name} at {resolution} px",
                    disable=not progress or len(records) < 200,
                    leave=False,
                )
            )
    finally:
        torch.set_num_threads(torch_threads)
    if box_problems:
        counts = ", ".join(f"{n} {what}" for what, n in Counter(box_problems).most_common())
        log.warning(
            "%s: %d of %d object boxes disagree with their image (%s); clipped where they reach past it, "
            "else the image is centre-cropped (inspect-data %s lists them)",
            loader.name,
            len(box_problems),
            len(records),
            counts,
            loader.name,
        )
    keep = [i for i, problem in enumerate(problems) if problem is None]
    skipped = [(records[i].path, problem) for i, problem in enumerate(problems) if problem is not None]
    if skipped:
        log.warning(
            "%s: skipped %d unreadable image(s) of %d, e.g. %s (%s)",
            loader.name,
            len(skipped),
            len(records),
            skipped[0][0],
            skipped[0][1],
        )
    if not keep:
        example = f"; e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise BenchmarkError(
            f"{loader.name}: none of the {len(records)} images could be read under {loader.root}{example}"
        )
    prepared = PreparedImages(
        images if len(keep) == len(records) else images[keep],
        torch.tensor([records[i].label for i in keep], dtype=torch.long),
        [records[i].path for i in keep],
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
