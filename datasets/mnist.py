"""MNIST (LeCun et al. 1998) from its raw IDX files: the toy suite's digits at full size, grayscale.

torchvision's ``MNIST`` only reads the uncompressed files and otherwise tries to download them,
so the IDX format (a big-endian header, then uint8 pixels) is read here directly, gzipped or not.
Images live in memory (60,000 x 28 x 28 bytes is 47 MB); a record's path ``train/00042`` names
the image by split and index.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.annotations import malformed
from datasets.base import DATASETS, DatasetLoader, Record

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UINT8 = 0x08


def read_idx(loader: DatasetLoader, path: Path, ndim: int) -> np.ndarray:
    """An IDX array of unsigned bytes with ``ndim`` dimensions; anything else is a malformed-file error."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; a cut-off .gz raises EOFError
        raise malformed(loader, path, f"cannot be read ({type(err).__name__}: {err})") from None
    header = 4 + 4 * ndim
    if len(data) < header or data[:2] != b"\0\0" or data[2] != _IDX_UINT8 or data[3] != ndim:
        raise malformed(loader, path, f"not an IDX file of {ndim}-D unsigned bytes")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != int(np.prod(shape)):
        raise malformed(loader, path, f"header says {shape} but {len(data) - header} bytes follow")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


@DATASETS.register()
class MNIST(DatasetLoader):
    """The official train (60,000) and test (10,000) sets, or both ("all"); classes "0".."9" as in ``digits``.

    The root may be the folder holding ``MNIST/`` (torchvision's root), ``MNIST/`` itself, or its
    ``raw/`` folder. Per-class counts (counted from the IDX label files): the smallest class is the
    digit 5, with 5,421 train and 892 test images.

    Padded 28 -> 32 px (``canvas = 32``), as the toy's ``mnist5k``: each digit is centred on a black
    32-px square, the way the digits classifier that scores MNIST suites saw its training digits
    (benchmark/features/digits.py). Resizing 28 -> 32 would enlarge the strokes by 8/7 and blur them,
    features that classifier never saw.
    """

    name = "mnist"
    layout = (
        "MNIST/raw/train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"
    )
    homepage = "https://yann.lecun.com/exdb/mnist/ (or any torchvision MNIST download)"
    splits = ("train", "test", "all")
    canvas = 32
    smallest_class = {"train": 5421, "test": 892, "all": 6313}
    marker = "raw"
    subfolders = ("MNIST",)

    def __init__(self, root, split: str = "train", classes=None):
        super().__init__(root, split=split, classes=classes)
        self._images: dict[str, np.ndarray] = {}

    def _find(self, name: str) -> Path:
        for folder in (self.root / "raw", self.root):
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        raise self.missing(f"raw/{name}[.gz]")

    def load_all(self) -> tuple[list[Record], list[str]]:
        records = []
        for split in ("train", "test") if self.split == "all" else (self.split,):
            image_file, label_file = (self._find(name) for name in _FILES[split])
            images, labels = read_idx(self, image_file, 3), read_idx(self, label_file, 1)
            if len(images) != len(labels):
                raise malformed(self, label_file, f"{len(labels)} labels for {len(images)} images in {image_file.name}")
            if labels.size and labels.max() > 9:
                raise malformed(self, label_file, f"label {labels.max()} is not a digit")
            self._images[split] = images
            records += [Record(f"{split}/{i:05d}", int(label)) for i, label in enumerate(labels)]
        return records, [str(d) for d in range(10)]

    def open_image(self, record: Record) -> Image.Image:
        self.records()  # loads the arrays
        split, index = record.path.split("/")
        return Image.fromarray(self._images[split][int(index)])  # 2-D uint8 -> mode "L"

    def fingerprint(self) -> str:
        """The base fingerprint plus the IDX files' sizes and times, since no record path is a file."""
        stamps = []
        for split in ("train", "test") if self.split == "all" else (self.split,):
            for name in _FILES[split]:
                stat = self._find(name).stat()
                stamps.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
        return hashlib.sha1((super().fingerprint() + "|".join(stamps)).encode()).hexdigest()
