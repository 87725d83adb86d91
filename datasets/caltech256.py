"""Caltech-256 (Griffin et al. 2007): 30,607 images of 256 object categories plus a clutter category.

torchvision's ``Caltech256`` wants the folder under ``caltech256/``, creates that folder if it is
absent and assumes every category's files are numbered without gaps, so the category folders are
listed here directly. The 257th category, ``257.clutter``, is background images rather than an
object class, and is left out unless asked for.
"""

from __future__ import annotations

from datasets.annotations import require
from datasets.base import DATASETS, DatasetLoader, Record
from datasets.folders import class_folders, image_files

CLUTTER = "257.clutter"


@DATASETS.register()
class Caltech256(DatasetLoader):
    """Every image (there is no official split: "train" and "all" both mean the whole set).

    Per-class counts: every category holds at least 80 images (Griffin et al. 2007, Caltech-256
    Object Category Dataset, CNS-TR-2007-001), at most 827.

    Class names drop the number prefix of the folders ("001.ak47" -> "ak47"). Only image files
    directly inside a category folder count; nested folders and stray files in the archive do not.

    Args:
        include_clutter: also read ``257.clutter`` as a class named "clutter".
    """

    name = "caltech256"
    layout = "256_ObjectCategories/<NNN.name>/*.jpg (256_ObjectCategories.tar extracted)"
    homepage = "https://data.caltech.edu/records/20087"
    splits = ("train", "all")
    smallest_class = {"train": 80, "all": 80}
    marker = "256_ObjectCategories"
    subfolders = ("caltech256",)
    look_alikes = (("101_ObjectCategories", "Caltech-101 (101_ObjectCategories/), not Caltech-256"),)

    def __init__(self, root, split: str = "train", classes=None, include_clutter: bool = False):
        super().__init__(root, split=split, classes=classes)
        self.include_clutter = include_clutter

    def load_all(self) -> tuple[list[Record], list[str]]:
        top = require(self, "256_ObjectCategories")
        folders = [f for f in class_folders(top) if self.include_clutter or f != CLUTTER]
        self.class_dirs = {f.split(".", 1)[-1]: top / f for f in folders}
        records = [
            Record(f"256_ObjectCategories/{folder}/{file}", label)
            for label, folder in enumerate(folders)
            for file in image_files(top / folder)
        ]
        return records, [f.split(".", 1)[-1] for f in folders]
