"""Places365 (Zhou et al. 2017): scene photographs of 365 categories, read for a chosen few categories.

torchvision's ``Places365`` checks MD5 sums of the list files and expects the image folders
renamed (``data_256_standard``), so the official files are read here directly: the category list
``categories_places365.txt`` (``/a/airfield 0``), the train list of the standard (1.8 M images) or
challenge (8 M images) release (``/a/airfield/00000001.jpg 0``), the val list
(``Places365_val_00000001.jpg 165``), and the images under ``data_256/`` or ``data_large/`` (train)
and ``val_256/`` or ``val_large/`` (val).

A target uses a handful of categories, so the lists are parsed with pandas' C reader and filtered
to the chosen ones before any record is built; with no ``classes`` every category is read.

Default categories: Hyper-Modulation (Laria et al., CVPR-W 2022) transfers to a Places365 subset,
but its repository (hecoding/Hyper-Modulation: README, prepare_data.py, dataset.py) names no
categories: it selects classes by ImageFolder index of a folder the user prepares. The subset
shipped here, ``HYPERMOD_CATEGORIES``, is the ten LSUN scene categories read from Places365 (with
LSUN's "church" as Places' church/outdoor), the subset that public Places365 readers from the
same line of work select. It could not be checked against the paper's text here; the places
suites (places-fewshot, hypermod2022) use it and say so. With no ``classes`` the loader reads every category.
"""

from __future__ import annotations

import numpy as np

from benchmark.errors import BenchmarkError
from datasets.annotations import malformed, read_rows, require
from datasets.base import DATASETS, DatasetLoader, Record

VARIANTS = ("standard", "challenge")
HYPERMOD_CATEGORIES = (
    "bedroom",
    "bridge",
    "church/outdoor",
    "classroom",
    "conference_room",
    "dining_room",
    "kitchen",
    "living_room",
    "restaurant",
    "tower",
)
IMAGE_SIZES = ("auto", "256", "large")


@DATASETS.register()
class Places365(DatasetLoader):
    """The official train list of either release, or the val list (100 images per category), or both.

    Per-class counts: Places365-Standard's train list holds 3,068 to 5,000 images per category
    (Zhou et al. 2017, Places: A 10 million image database for scene recognition, TPAMI); val 100.

    Class names are the category paths without their letter folder ("/a/alley" -> "alley",
    "/a/apartment_building/outdoor" -> "apartment_building/outdoor").

    Args:
        variant: "standard" (places365_train_standard.txt) or "challenge" (places365_train_challenge.txt).
        images: "256" (data_256/, val_256/), "large" (data_large/, val_large/), or "auto": 256 if present.
    """

    name = "places365"
    layout = (
        "categories_places365.txt, places365_train_standard.txt or places365_train_challenge.txt, places365_val.txt "
        "(the filelist archive), data_256/ or data_large/ (train images), val_256/ or val_large/ (val images)"
    )
    homepage = "http://places2.csail.mit.edu/download.html"
    splits = ("train", "val", "all")
    smallest_class = {"train": 3068, "val": 100}  # the standard release's train list
    marker = "categories_places365.txt"
    subfolders = ("places365",)
    look_alikes = tuple(
        (path, "Places365's easy-format archive (places365standard_easyformat.tar: train/<category>/ folders and "
         "train.txt, without the official file lists)")
        for path in ("places365_standard", "train.txt", "val.txt")
    )  # fmt: skip

    def __init__(self, root, split: str = "train", classes=None, variant: str = "standard", images: str = "auto"):
        super().__init__(root, split=split, classes=classes)
        for value, allowed, what in ((variant, VARIANTS, "variant"), (images, IMAGE_SIZES, "images")):
            if value not in allowed:
                raise BenchmarkError(f"{self.name}: unknown {what} {value!r}; choose one of {', '.join(allowed)}")
        self.variant = variant
        self.images = images

    def load_all(self) -> tuple[list[Record], list[str]]:
        categories = read_rows(self, "categories_places365.txt", (str, int), "<category> <index>")
        if [i for _, i in categories] != list(range(len(categories))):
            raise malformed(self, self.root / "categories_places365.txt", "indices are not 0, 1, 2, ... in order")
        names = [c.split("/", 2)[-1] for c, _ in categories]
        wanted = None
        if self.requested_classes is not None:
            wanted = sorted({self._class_index(c, names) for c in self.requested_classes})
        records = []
        if self.split in ("train", "all"):
            self._check_variant()
            folder = self._image_folder("data")
            records += self._list_records(f"places365_train_{self.variant}.txt", folder, wanted, len(names))
        if self.split in ("val", "all"):
            folder = self._image_folder("val")
            records += self._list_records("places365_val.txt", folder, wanted, len(names))
        return records, names

    def _check_variant(self) -> None:
        """The other release's train list where this one's is absent is a version mismatch, not a missing file."""
        wanted = f"places365_train_{self.variant}.txt"
        other = next(v for v in VARIANTS if v != self.variant)
        if not (self.root / wanted).exists() and (self.root / f"places365_train_{other}.txt").exists():
            raise BenchmarkError(
                f"{self.name}: {wanted} not found under {self.root}, which holds the {other} release's train list "
                f"(places365_train_{other}.txt) instead; the suite asks for the {self.variant} release: get "
                f"filelist_places365-{self.variant}.tar from {self.homepage}, or set the target's option "
                f"variant: {other}"
            )

    def _image_folder(self, prefix: str) -> str:
        sizes = ("256", "large") if self.images == "auto" else (self.images,)
        candidates = [f"{prefix}_{size}" for size in sizes]
        if prefix == "data":  # torchvision's own download renames data_256 to data_256_<variant>
            candidates += [f"{c}_{self.variant}" for c in candidates]
        for candidate in candidates:
            if (self.root / candidate).is_dir():
                return candidate
        raise self.missing(" or ".join(f"{c}/" for c in candidates))

    def _list_records(self, list_name: str, folder: str, wanted, n_classes: int) -> list[Record]:
        import pandas as pd

        path = require(self, list_name)
        try:
            table = pd.read_csv(
                path, sep=" ", header=None, names=["file", "label"], dtype={"file": str, "label": np.int64}
            )
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            problem = str(err).strip().splitlines()[-1]
            raise malformed(self, path, f"expected '<image> <category index>' lines ({problem})") from None
        if len(table) and not (table["label"].between(0, n_classes - 1)).all():
            raise malformed(self, path, f"a category index is outside 0..{n_classes - 1}")
        if wanted is not None:
            table = table[table["label"].isin(wanted)]
        return [
            Record(f"{folder}/{file.lstrip('/')}", int(label))
            for file, label in zip(table["file"].tolist(), table["label"].tolist())
        ]
