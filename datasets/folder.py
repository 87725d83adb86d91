"""Your own images as a target: the ``folder`` data set.

A folder of images is one class (named after the folder); a folder of folders is one class per
sub-folder. Images are found at any depth, so an archive that extracts to ``name/images/*.png``
reads as it is. An image is any file whose extension PIL can open (``.png``, ``.jpg``, ``.webp``,
``.tif``, ...); hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``) and macOS's
``__MACOSX`` are skipped, as are other files (notes, ``.txt``), and both are counted for
``inspect-data``. A file that has an image extension but does not decode is kept in the listing and
reported like any other loader's damaged file: ``inspect-data`` names it and preprocessing skips it.

An LMDB written by rosinality's ``prepare_data.py`` (a folder holding ``data.mdb``) reads too: as
the root, it is one class; as a sub-folder, it is that class.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from PIL import Image

from benchmark.errors import BenchmarkError, abbreviate
from datasets.base import DATASETS, DatasetLoader, Record
from datasets.lmdb_images import LmdbImages, LmdbStores, is_lmdb

SKIPPED_FOLDERS = ("__MACOSX",)  # resource forks macOS adds to zip archives


@cache
def image_extensions() -> frozenset[str]:
    """Lower-case extensions of every format PIL can open (not those it can only write, like .pdf)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


@dataclass
class Listing:
    """The image files found under a folder, and what was left out.

    Attributes:
        files: image paths relative to the folder listed (POSIX separators), sorted.
        hidden: hidden files and folders skipped (a hidden folder counts once).
        other: non-image files skipped, with up to three examples in ``examples``.
    """

    files: list[str] = field(default_factory=list)
    hidden: int = 0
    other: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, other: Listing, prefix: str) -> None:
        self.files += [prefix + f for f in other.files]
        self.hidden += other.hidden
        self.other += other.other
        self.examples = (self.examples + [prefix + e for e in other.examples])[:3]


def list_images(folder: Path, recursive: bool = True) -> Listing:
    """Every image file under ``folder`` (its sub-folders too, when ``recursive``), following links once."""
    listing = Listing()
    extensions = image_extensions()
    seen: set[str] = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        relative = Path(top).relative_to(folder).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        hidden = [d for d in dirs if d.startswith(".")]
        listing.hidden += len(hidden)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS) if recursive else []
        for name in files:
            if name.startswith("."):
                listing.hidden += 1
            elif os.path.splitext(name)[1].lower() in extensions:
                listing.files.append(prefix + name)
            else:
                listing.other += 1
                if len(listing.examples) < 3:
                    listing.examples.append(prefix + name)
    listing.files.sort()
    return listing


class ImageFolderLoader(DatasetLoader):
    """Base of loaders whose classes are folders of image files or LMDBs (``folder``, the named few-shot sets).

    ``_read_class(path, prefix)`` lists one class and returns its record paths (relative to the
    root); images in an LMDB are opened from it, files from the disk.
    """

    size: int | None = None  # the stored size read from rosinality LMDBs (default: the largest)

    def _reset_listing(self) -> None:
        self._lmdbs = LmdbStores()
        self._listing = Listing()
        self._notes: list[str] = []

    def _read_class(self, path: Path, prefix: str) -> list[str]:
        if is_lmdb(path):
            return self._lmdbs.add(prefix, LmdbImages(path, self.name, self.size))
        listing = list_images(path)
        self._listing.add(listing, prefix)
        return [prefix + f for f in listing.files]

    def listing_notes(self) -> list[str]:
        self.survey()
        notes = list(self._notes)
        skipped = self._listing
        if skipped.hidden:
            notes.append(f"skipped {skipped.hidden} hidden file(s) or folder(s)")
        if skipped.other:
            notes.append(f"skipped {skipped.other} file(s) that are not images, e.g. {', '.join(skipped.examples)}")
        stores = self._lmdbs.by_prefix
        for prefix, store in stores.items():
            size = f" at {store.size} px" if store.size else ""
            notes.append(f"read {prefix or './'} from an LMDB{size} ({store.length} images)")
        return notes

    def open_image(self, record: Record) -> Image.Image:
        self.survey()
        found = self._lmdbs.find(record.path)
        if found is not None:
            store, key = found
            return store.open(key)
        return super().open_image(record)

    def fingerprint(self) -> str:
        self.survey()
        if not self._lmdbs.by_prefix:
            return super().fingerprint()
        return f"{super().fingerprint()[:20]}{self._lmdbs.fingerprint()[:20]}"

    def _no_images(self, where: Path) -> BenchmarkError:
        skipped = self._listing
        left_out = ""
        if skipped.hidden or skipped.other:
            examples = f", e.g. {', '.join(skipped.examples)}" if skipped.examples else ""
            left_out = f" (skipped {skipped.hidden} hidden and {skipped.other} non-image files{examples})"
        return BenchmarkError(
            f"{self.name}: no images under {where}{left_out}; put image files (.png, .jpg, .webp, .tif or any "
            f"of the {len(image_extensions())} extensions PIL opens) in it, or in one "
            "sub-folder per class, or pass an LMDB folder written by prepare_data.py"
        )


@DATASETS.register()
class FolderDataset(ImageFolderLoader):
    """Any folder of images: one class, or one class per sub-folder.

    Args:
        root: the folder.
        size: for an LMDB, the stored size to read (default: the largest).
    """

    name = "folder"
    layout = (
        "DIR/*.png (one class, images at any depth) or DIR/<class>/*.png (one class per sub-folder); "
        "any format PIL opens; an LMDB folder from prepare_data.py (data.mdb) is one class"
    )

    def __init__(self, root, split: str = "train", classes=None, size: int | None = None):
        super().__init__(root, split, classes)
        self.size = size

    def where_to_get(self) -> str:
        return f"Expected: {self.layout}."

    def load_all(self) -> tuple[list[Record], list[str]]:
        self._reset_listing()
        root = self.root
        if is_lmdb(root):
            return [Record(p, 0) for p in self._read_class(root, "")], [root.name]
        top = list_images(root, recursive=False)
        sub = sorted(
            e.name
            for e in os.scandir(root)
            if e.is_dir() and not e.name.startswith(".") and e.name not in SKIPPED_FOLDERS
        )
        nested = {name: list_images(root / name) for name in sub if not is_lmdb(root / name)}
        if top.files or not sub:
            # A folder of images: one class, nested images included.
            records = [Record(p, 0) for p in self._read_class(root, "")]
            in_subfolders = [n for n in sub if nested.get(n, Listing()).files or is_lmdb(root / n)]
            if top.files and in_subfolders:
                self._notes.append(
                    f"read as one class: {len(top.files)} image(s) lie beside sub-folders with images "
                    f"({abbreviate(in_subfolders, 3)}); for one class per sub-folder, move those images into one"
                )
            if not records:
                raise self._no_images(root)
            return records, [root.name]
        # A folder of folders: one class per sub-folder (an empty one is an empty class, which
        # inspect-data reports and a suite refuses by name).
        records = []
        self.class_dirs = {name: root / name for name in sub}
        for label, name in enumerate(sub):
            records += [Record(p, label) for p in self._read_class(root / name, f"{name}/")]
        if not records:
            raise self._no_images(root)
        return records, sub
