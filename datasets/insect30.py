"""Insect-30: insect photographs in one folder per class, the plainest layout a target set can have.

The same loader reads any class-folder set (``<root>/<class>/<image>``), which is what the
preprocessing benchmark generates.
"""

from __future__ import annotations

from benchmark.errors import BenchmarkError
from datasets.base import DATASETS, DatasetLoader, Record
from datasets.folders import class_folders, image_files


@DATASETS.register()
class Insect30(DatasetLoader):
    """Every image under ``<root>/<class>/`` (no official split: "train" and "all" both mean all of them).

    Class names are the folder names, in sorted order. Per-class counts: none published (Park et al.
    2023 give 28,896 images over 30 classes, 963 on average); the dry run counts the user's files.
    """

    name = "insect30"
    layout = "<class>/<image>.jpg, one folder per class (30 classes)"
    homepage = ""  # no official download address is recorded for Insect-30; errors show the layout only
    splits = ("train", "all")

    def load_all(self) -> tuple[list[Record], list[str]]:
        folders = class_folders(self.root)
        if not folders:
            raise BenchmarkError(f"{self.name}: no class folders under {self.root}. {self.where_to_get()}")
        self.class_dirs = {f: self.root / f for f in folders}
        records = [
            Record(f"{folder}/{file}", label)
            for label, folder in enumerate(folders)
            for file in image_files(self.root / folder)
        ]
        return records, folders
