"""AFHQ v1 (Choi et al. 2020, StarGAN v2): 16,130 animal faces at 512 px in three classes.

The classes are fixed by the release (cat, dog, wild), so a missing class folder is reported as a
missing part of the layout rather than silently giving a two-class dataset.
"""

from __future__ import annotations

from datasets.annotations import require
from datasets.base import DATASETS, DatasetLoader, Record
from datasets.folders import image_files

CLASSES = ("cat", "dog", "wild")


@DATASETS.register()
class AFHQ(DatasetLoader):
    """The official train (14,630) and val (1,500) splits, or both ("all"); classes cat, dog, wild.

    Per-class counts (train): cat 5,153, dog 4,739, wild 4,738 (afhq.zip v1); val: 500 each.
    """

    name = "afhq"
    layout = "train/{cat,dog,wild}/*.jpg and val/{cat,dog,wild}/*.jpg (afhq.zip v1 extracted)"
    homepage = "https://github.com/clovaai/stargan-v2#animal-faces-hq-dataset-afhq"
    splits = ("train", "val", "all")
    smallest_class = {"train": 4738, "val": 500}
    marker = "train"
    subfolders = ("afhq",)

    def load_all(self) -> tuple[list[Record], list[str]]:
        records = []
        for split in ("train", "val") if self.split == "all" else (self.split,):
            for label, name in enumerate(CLASSES):
                folder = require(self, f"{split}/{name}")
                records += [Record(f"{split}/{name}/{file}", label) for file in image_files(folder)]
        return records, list(CLASSES)
