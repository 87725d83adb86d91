"""How fast a suite's data gets ready: decode, crop and resize a folder of JPEGs, then the same from the cache.

Generates (or reuses) a class-folder dataset in the Insect-30 layout -- by default 5,000 JPEGs whose
long side is 500 px, with smooth photo-like content so they compress and decode like photographs --
and runs ``prepare_images`` on it twice at 256 px with one cache folder. The first run decodes every
file and writes the cache; the second finds the cache. The cache file is memory-mapped, so the
second run's time is the time until the tensor is usable; the "every page read" figure adds the
cost of actually pulling all its pixels into memory, which a suite pays only for the images it
touches (a few-shot split touches few).

Usage:
    python benchmarks/preprocess_speed.py                      # 5,000 images, 500 px, 256 px output
    python benchmarks/preprocess_speed.py --count 500 --size 300 --resolution 64   # a quick run (~5 s)
    python benchmarks/preprocess_speed.py --data /tmp/jpegs    # keep (and reuse) the generated images

A quick run's ratio is smaller: the cached run's fixed costs (listing the folder, hashing the
records) weigh more against few, small images. The 20x requirement is for the default size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets import build_dataset  # noqa: E402
from datasets.folders import image_files  # noqa: E402
from datasets.preprocess import prepare_images  # noqa: E402

ASPECTS = (4 / 3, 3 / 4, 3 / 2, 1.0)  # width / height, as photo collections mix them


def photo_like(index: int, size: int) -> Image.Image:
    """A smooth random colour field with fine grain: compresses and decodes like a photograph."""
    rng = np.random.default_rng(index)
    aspect = ASPECTS[index % len(ASPECTS)]
    width, height = (size, round(size / aspect)) if aspect >= 1 else (round(size * aspect), size)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-6, 7, smooth.shape, dtype=np.int16)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


def make_images(folder: Path, count: int, size: int, classes: int) -> None:
    """Write ``count`` JPEGs into ``classes`` class folders (skipped when the folder already has them)."""
    existing = sum(len(image_files(d)) for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else 0
    if existing == count:
        print(f"reusing {count} images in {folder}")
        return
    if existing:
        sys.exit(f"{folder} holds {existing} images, not {count}; give an empty or new --data folder")

    def write(index: int) -> None:
        path = folder / f"class_{index % classes:02d}" / f"image_{index:05d}.jpg"
        photo_like(index, size).save(path, quality=90)

    for c in range(classes):
        (folder / f"class_{c:02d}").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with ThreadPoolExecutor() as pool:
        list(pool.map(write, range(count)))
    print(f"generated {count} JPEGs (long side {size} px) in {time.perf_counter() - start:.1f} s")


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="number of JPEGs (default 5000)")
    parser.add_argument("--size", type=int, default=500, help="long side of the JPEGs in px (default 500)")
    parser.add_argument("--resolution", type=int, default=256, help="output resolution in px (default 256)")
    parser.add_argument("--classes", type=int, default=30, help="class folders (default 30, as Insect-30)")
    parser.add_argument("--data", type=Path, help="folder for the JPEGs (default: a temporary folder)")
    parser.add_argument("--workers", type=int, help="decoding threads (default: all cores)")
    parser.add_argument("--min-ratio", type=float, default=20.0, help="fail below this speed-up (default 20)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="preprocess-speed-") as tmp:
        data = args.data or Path(tmp) / "images"
        make_images(data, args.count, args.size, args.classes)
        cache = Path(tmp) / "cache"

        def prepare():
            loader = build_dataset("insect30", data)  # a fresh loader each time, as a new process has
            return prepare_images(loader, args.resolution, cache_dir=cache, workers=args.workers, progress=False)

        first, uncached = timed(prepare)
        second, cached = timed(prepare)
        storage = torch.empty(0, dtype=torch.uint8).set_(second.images.untyped_storage())
        _, paging = timed(lambda: int(storage[::4096].sum()))  # one byte of every 4 KiB page
        if not torch.equal(first.images, second.images) or first.paths != second.paths:
            print("error: the cached images differ from the decoded ones")
            return 1

        n = len(first)
        cache_mb = sum(f.stat().st_size for f in cache.iterdir()) / 2**20
        ratio, ratio_read = uncached / cached, uncached / (cached + paging)
        print(
            f"{n} images, {args.size} px JPEGs -> {args.resolution} px, {args.workers or 'all'} threads "
            f"on {os.cpu_count()} cores, cache file {cache_mb:.0f} MB"
        )
        print(f"without cache : {uncached:7.2f} s  {n / uncached:9.0f} images/s  (decode, crop, resize, write cache)")
        print(f"with cache    : {cached:7.2f} s  {n / cached:9.0f} images/s  (cache found and memory-mapped)")
        print(f"  + every page read: {cached + paging:7.2f} s  {n / (cached + paging):9.0f} images/s")
        print(
            f"speed-up      : {ratio:.0f}x  ({ratio_read:.0f}x with every page read); required >= {args.min_ratio:g}x"
        )
        return 0 if ratio >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
