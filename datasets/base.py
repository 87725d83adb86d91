"""The dataset-loader contract and its registry.

A loader knows exactly one on-disk format: the official layout of one dataset as its authors
distribute it. It lists ``Record``s (image path relative to the root, class index, optional
bounding box) and class names, and fails with a :class:`BenchmarkError` naming the expected
layout and where to get the data when files are missing or malformed. It does no resizing:
cropping and resizing to the suite's resolution are shared (``datasets.preprocess``), as are
few-shot subsets (``datasets.splits``).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from PIL import Image

from benchmark.errors import BenchmarkError, abbreviate
from benchmark.registry import Registry

DATASETS: Registry[type[DatasetLoader]] = Registry(
    "dataset",
    contract="a DatasetLoader subclass: Loader(root, split=..., classes=..., **options); "
    ".records() -> [Record(path, label, bbox)], .class_names() -> [str], .open_image(record) -> PIL image",
)


@dataclass(frozen=True)
class Record:
    """One image of a dataset.

    Args:
        path: file path relative to the dataset root (a stable identifier for in-memory data).
        label: class index into the loader's ``class_names()`` (after any class subset).
        bbox: object box (x0, y0, x1, y1) in pixels of the original image, where the dataset has one.
        size: the image's (width, height) as its annotation declares it, where it does (VOC XML): a box
            declared for another size than the file's is not used (``datasets.preprocess.box_problem``).
    """

    path: str
    label: int
    bbox: tuple[float, float, float, float] | None = None
    size: tuple[int, int] | None = None


class DatasetLoader:
    """Base class of every loader.

    Subclasses set ``name``, ``layout`` (the expected files, shown in errors), ``homepage``
    (where to download) and implement :meth:`load_all`, returning every record of the chosen
    split with labels indexing the full class list. The base class applies the class subset,
    relabels to 0..n-1 in the subset's order, and checks that no chosen class is empty.

    Args:
        root: the folder the dataset was extracted to (as distributed).
        split: which official split to read ("train", "test", ...); loaders name their choices.
        classes: optional subset, as class names or indices into the full class list.
    """

    name: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    homepage: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train",)
    needs_root: ClassVar[bool] = True
    has_bboxes: ClassVar[bool] = False  # records carry object boxes, so crop="bbox" means something
    # The side of a black square the images are centred on before cropping and resizing, where a
    # data set is conventionally padded (MNIST's 28-px digits on LeNet-5's 32-px field); None: as stored.
    canvas: ClassVar[int | None] = None
    # Images in the smallest class of each split, where the data set's authors give the count (the
    # loader's docstring names the source); suites choose their shots from it (tests/test_config.py).
    smallest_class: ClassVar[dict[str, int]] = {}
    # A file or folder at the top of the extracted dataset, and the folder names its archive (or
    # torchvision) puts it in: a root that lacks ``marker`` but has ``<subfolder>/marker`` is
    # descended into, so users may pass either the extraction folder or the dataset's own folder.
    marker: ClassVar[str] = ""
    subfolders: ClassVar[tuple[str, ...]] = ()
    # Other releases of the same data that a root may hold instead of the one read here: (a file or
    # folder only that release has, what it is). Checked when ``marker`` is absent, so a look-alike
    # copy is named for what it is, not reported as a file missing from the official layout.
    look_alikes: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, root: str | Path | None, split: str = "train", classes: Sequence[str | int] | None = None):
        if split not in self.splits:
            raise BenchmarkError(f"{self.name}: unknown split {split!r}; choose one of {', '.join(self.splits)}")
        self.root = Path(root).expanduser() if root is not None else None
        if self.needs_root:
            if self.root is None:
                raise BenchmarkError(f"{self.name}: no data root given; pass --data-root DIR. {self.where_to_get()}")
            if self.root.exists() and not self.root.is_dir():
                problem = not_a_folder(self.root)
                raise BenchmarkError(f"{self.name}: data root {self.root} {problem}. {self.where_to_get()}")
            if not self.root.is_dir():
                raise BenchmarkError(f"{self.name}: data root {self.root} does not exist. {self.where_to_get()}")
            self.root = self._locate(self.root)
        self.split = split
        self.requested_classes = list(classes) if classes is not None else None
        # Where each class's images are, for loaders whose classes are folders (filled by load_all):
        # an empty class is reported by its folder.
        self.class_dirs: dict[str, Path] = {}
        self._cache: tuple[list[Record], list[str]] | None = None
        self._survey: tuple[list[Record], list[str]] | None = None

    # -- to implement --------------------------------------------------------------------------
    def load_all(self) -> tuple[list[Record], list[str]]:
        """All records of ``self.split`` (labels index the full class list) and all class names."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------
    def where_to_get(self) -> str:
        parts = []
        if self.layout:
            inside = "".join(f" or in its {sub}/" for sub in self.subfolders)
            parts.append(f"Expected layout (in the data root{inside}): {self.layout}.")
        if self.homepage:
            parts.append(f"Get it from {self.homepage}.")
        return " ".join(parts)

    def _locate(self, root: Path) -> Path:
        if not self.marker or (root / self.marker).exists():
            return root
        for sub in self.subfolders:
            if (root / sub / self.marker).exists():
                return root / sub
        return root

    def check_release(self) -> None:
        """Raise a one-line error when the root holds another release or version of the data set
        (``look_alikes``) than the one this loader reads; loaders whose versions share a marker override it."""
        if self.root is None or not self.marker or (self.root / self.marker).exists():
            return
        for relpath, what in self.look_alikes:
            if (self.root / relpath).exists():
                raise self.wrong_release(what, f"{relpath} is there, {self.marker} is not")

    def wrong_release(self, found: str, evidence: str) -> BenchmarkError:
        return BenchmarkError(
            f"{self.name}: {self.root} holds {found} ({evidence}), not the release this loader reads. "
            f"{self.where_to_get()}"
        )

    def missing(self, what: str) -> BenchmarkError:
        """The error for a file or folder the official layout should have (and any archive that may hold it)."""
        archives = archives_in(self.root)
        unpacked = f" The root holds {abbreviate(archives, 3)}: extract it there." if archives else ""
        return BenchmarkError(f"{self.name}: {what} not found under {self.root}.{unpacked} {self.where_to_get()}")

    def survey(self) -> tuple[list[Record], list[str]]:
        """Records and class names of the split and class subset, even if some class has no images.

        For ``inspect-data``, which reports a partial copy of a dataset (counts, the empty classes)
        instead of refusing it as a suite must.
        """
        if self._survey is None:
            self.check_release()
            records, names = self.load_all()
            if self.requested_classes is not None:
                chosen = [self._class_index(c, names) for c in self.requested_classes]
                remap = {old: new for new, old in enumerate(chosen)}
                records = [dataclasses.replace(r, label=remap[r.label]) for r in records if r.label in remap]
                names = [names[i] for i in chosen]
            self._survey = (records, names)
        return self._survey

    def empty_classes(self) -> list[str]:
        """The classes of the split and subset that have no images."""
        records, names = self.survey()
        counts = [0] * len(names)
        for r in records:
            counts[r.label] += 1
        return [str(n) for n, c in zip(names, counts) if c == 0]

    def empty_problem(self) -> str | None:
        """What is empty, naming the folder: no classes, no images at all, or classes without images; or None."""
        records, names = self.survey()
        where = self.root if self.root is not None else "memory"
        if not names:
            return f"no classes found under {where} (an empty or wrong folder?)"
        if not records:
            return f"no images found under {where} in any of its {len(names)} classes (an empty or wrong folder?)"
        empty = self.empty_classes()
        if not empty:
            return None
        shown = [f"{n} ({self.class_dirs[n]})" if n in self.class_dirs else n for n in empty]
        return (
            f"{len(empty)} of {len(names)} classes have no images under {where} (a partial copy, or the wrong "
            f"split?): {abbreviate(shown, 5)}"
        )

    def _resolve(self) -> tuple[list[Record], list[str]]:
        if self._cache is None:
            records, names = self.survey()
            if not records:
                raise BenchmarkError(
                    f"{self.name} ({self.split} split): {self.empty_problem()}; pass the folder the dataset was "
                    f"extracted to. {self.where_to_get()}"
                )
            empty = self.empty_classes()
            if empty:
                where = "".join(f" in {self.class_dirs[n]}" for n in empty[:1] if n in self.class_dirs)
                raise BenchmarkError(
                    f"{self.name} ({self.split} split): no images left for class(es) {abbreviate(empty, 5)} "
                    f"({len(empty)} of {len(self.survey()[1])} classes){where}; check the class names and the data "
                    f"root {self.root} (inspect-data {self.name} lists the images per class)"
                )
            self._cache = self.survey()
        return self._cache

    def _class_index(self, cls: str | int, names: list[str]) -> int:
        if isinstance(cls, int) and not isinstance(cls, bool):
            if 0 <= cls < len(names):
                return cls
            if not names:  # an empty copy: say so, not that index 0 is out of a range 0..-1
                raise BenchmarkError(
                    f"{self.name}: no classes found under {self.root} (an empty or wrong folder?); a suite picks "
                    f"class {cls} by number; pass the folder that holds the data set ({self.where_to_get()})"
                )
            raise BenchmarkError(
                f"{self.name}: class index {cls} out of range 0..{len(names) - 1}: {self.root} holds "
                f"{len(names)} class(es) ({abbreviate([str(n) for n in names], 5)}); a partial copy, or lower the index"
            )
        if cls in names:
            return names.index(cls)
        # As typed: a folder written on macOS spells "é" decomposed (NFD), a YAML or shell name may carry spaces.
        typed = typed_name(cls)
        matches = [i for i, n in enumerate(names) if typed_name(n) == typed]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            alike = ", ".join(repr(names[i]) for i in matches)
            raise BenchmarkError(f"{self.name}: class {cls!r} matches several classes ({alike}); give the exact name")
        shown = abbreviate([str(n) for n in names], 10)
        nearest = difflib.get_close_matches(typed, [typed_name(n) for n in names], n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(repr(n) for n in nearest)}? " if nearest else ""
        raise BenchmarkError(f"{self.name}: unknown class {cls!r}; {hint}classes are: {shown}")

    def listing_notes(self) -> list[str]:
        """What the listing left out or read specially (hidden files, non-images), for ``inspect-data``."""
        return []

    def holds_split(self, split: str) -> bool:
        """Whether this split holds a copy of every image of ``split`` under other paths (a published
        10-shot set's full FID set holds its 10 training images), for the dry run's training share."""
        return False

    def records(self) -> list[Record]:
        return self._resolve()[0]

    def class_names(self) -> list[str]:
        return self._resolve()[1]

    def open_image(self, record: Record) -> Image.Image:
        """The image, opened lazily (PIL decodes on first use and then closes the file).

        Corrupt files raise OSError (or another PIL error) when decoded; preprocessing catches,
        counts and reports them.
        """
        return Image.open(self.root / record.path)

    def absent_files(self) -> list[str]:
        """The record paths of the split and subset that are not on disk (a stat each, no image read).

        Only for loaders whose records are files (those that keep the base ``open_image``); MNIST's
        records, say, are rows of one IDX file.
        """
        if self.root is None or type(self).open_image is not DatasetLoader.open_image:
            return []
        from concurrent.futures import ThreadPoolExecutor

        records = self.records()
        with ThreadPoolExecutor(max_workers=16) as pool:  # stats on a network file system wait, not compute
            present = list(pool.map(lambda r: os.path.exists(self.root / r.path), records))
        return [r.path for r, ok in zip(records, present) if not ok]

    def fingerprint(self) -> str:
        """A hash of what this loader returns (name, root, split, records), for cache keys."""
        payload = {
            "dataset": self.name,
            "root": str(self.root.resolve()) if self.root else None,
            "split": self.split,
            "classes": self.class_names(),
            "records": [(r.path, r.label, r.bbox) for r in self.records()],
        }
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def typed_name(name) -> str:
    """A class name compared as a person types it: Unicode NFC form, surrounding whitespace dropped."""
    return unicodedata.normalize("NFC", str(name)).strip()


ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".7z", ".rar", ".gz")


def not_a_folder(path: Path) -> str:
    """Why a file cannot be a data root, and what to pass instead."""
    if path.name.lower().endswith(ARCHIVE_SUFFIXES):
        return "is a file, not a folder: extract the archive and pass the folder it extracts to"
    return "is a file, not a folder: pass the folder the dataset was extracted to"


def archives_in(folder: Path | None) -> list[str]:
    """Names of the archives lying directly in ``folder`` (a dataset downloaded but not extracted)."""
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(ARCHIVE_SUFFIXES))
    except (OSError, TypeError):
        return []


def build_dataset(name: str, root: str | Path | None, **options) -> DatasetLoader:
    """Instantiate a registered loader, turning bad options into a one-line error."""
    cls = DATASETS.get(name)
    try:
        return cls(root, **options)
    except TypeError as err:
        raise BenchmarkError(f"dataset {name!r}: bad options {sorted(options)}: {err}") from None
