"""rosinality's LMDB image format (stylegan2-pytorch ``prepare_data.py``), read-only; the ``lmdb`` data set.

``prepare_data.py`` centre-crops and resizes every image (LANCZOS) to each size asked and stores
its encoded bytes under the key ``f"{size}-{str(index).zfill(5)}"`` (JPEG, quality 100, in
rosinality's and CDC's copies), with the image count under ``length``; its ``MultiResolutionDataset``
reads index ``i`` at one size. AdAM's and RICK's copy of the script stores PNGs under
``f"{str(index).zfill(6)}"`` without a size. The CDC and AdAM 10-shot sets ship in these formats.

The database is opened read-only without a lock file (as ``MultiResolutionDataset`` does), so a
copy on a read-only file system reads. An index below ``length`` whose key is absent reads as a
missing file: ``inspect-data`` lists it and preprocessing skips it, as it skips a damaged image.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from benchmark.errors import BenchmarkError, abbreviate
from datasets.base import DATASETS, DatasetLoader, Record

SIZED_KEY = re.compile(rb"^(\d+)-(\d{5,})$")  # rosinality / CDC: 256-00003
UNSIZED_KEY = re.compile(rb"^\d{6,}$")  # AdAM / RICK: 000003
PREPARE_DATA = "https://github.com/rosinality/stylegan2-pytorch/blob/master/prepare_data.py"


def is_lmdb(folder: Path) -> bool:
    """Whether ``folder`` is an LMDB environment (the folder ``prepare_data.py --out`` names)."""
    return (folder / "data.mdb").is_file()


class LmdbImages:
    """The images of one LMDB written by ``prepare_data.py``.

    Args:
        path: the LMDB folder (holding ``data.mdb``).
        who: the data set reading it, for messages.
        size: which stored size to read (rosinality's keys); default the largest stored.
    """

    def __init__(self, path: Path, who: str, size: int | None = None):
        self.path, self.who = Path(path), who
        self._env = None
        self._opening = threading.Lock()  # one environment per process: LMDB forbids opening a database twice
        with self._open().begin() as txn:
            length = txn.get(b"length")
            sizes, unsized = set(), 0
            for key in txn.cursor().iternext(keys=True, values=False):
                match = SIZED_KEY.match(key)
                if match:
                    sizes.add(int(match.group(1)))
                elif UNSIZED_KEY.match(key):
                    unsized += 1
        if length is None:
            raise self._error("has no 'length' key, so it was not written by prepare_data.py")
        try:
            self.length = int(length.decode())
        except (UnicodeDecodeError, ValueError):
            raise self._error(f"has a 'length' of {length[:20]!r}, not a count of images") from None
        self.sizes = sorted(sizes)
        if not sizes and not unsized and self.length:
            raise self._error(
                f"says it holds {self.length} images but has no key like '256-00000' (rosinality, CDC) "
                "or '000000' (AdAM)"
            )
        if size is not None and size not in sizes:
            stored = ", ".join(map(str, self.sizes)) or "none (its keys have no size)"
            raise BenchmarkError(
                f"{who}: {self.path} stores no images of size {size}; sizes stored: {stored}. "
                "Choose one of them (the 'size' option) or re-run prepare_data.py with --size"
            )
        self.size = size if size is not None else (max(sizes) if sizes else None)

    def _error(self, problem: str) -> BenchmarkError:
        return BenchmarkError(
            f"{self.who}: the LMDB {self.path} {problem}; write it with prepare_data.py ({PREPARE_DATA}) "
            "or download it again"
        )

    def _open(self):
        with self._opening:
            if self._env is None:
                self._env = self._open_environment()
        return self._env

    def _open_environment(self):
        try:
            import lmdb
        except ImportError:
            raise BenchmarkError(
                f"{self.who}: reading {self.path} needs the lmdb package: pip install 'lmdb>=1.4,<2'"
            ) from None
        try:
            return lmdb.open(str(self.path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=256)
        except lmdb.Error as err:
            raise self._error(f"cannot be opened ({type(err).__name__}: {err})") from None

    def __getstate__(self):  # an open environment does not pickle; a copy reopens on first use
        return {k: v for k, v in self.__dict__.items() if k not in ("_env", "_opening")}

    def __setstate__(self, state):
        self.__dict__.update(state, _env=None, _opening=threading.Lock())

    def image_keys(self) -> list[str]:
        """The key of every index below ``length``, at the chosen size (as ``MultiResolutionDataset`` reads them)."""
        if self.size is not None:
            return [f"{self.size}-{str(i).zfill(5)}" for i in range(self.length)]
        return [str(i).zfill(6) for i in range(self.length)]

    def read(self, key: str) -> bytes:
        with self._open().begin() as txn:
            value = txn.get(key.encode())
        if value is None:
            raise FileNotFoundError(f"no key {key!r} in {self.path} (its 'length' is {self.length})")
        return value

    def open(self, key: str) -> Image.Image:
        return Image.open(io.BytesIO(self.read(key)))

    def stamp(self) -> tuple[int, int]:
        """Size and modification time of ``data.mdb``, so caches notice a rewritten database."""
        st = os.stat(self.path / "data.mdb")
        return st.st_size, st.st_mtime_ns


class LmdbStores:
    """Record paths that live in LMDBs (``<prefix><key>``) and the LMDB each reads from."""

    def __init__(self):
        self.by_prefix: dict[str, LmdbImages] = {}

    def add(self, prefix: str, store: LmdbImages) -> list[str]:
        self.by_prefix[prefix] = store
        return [prefix + key for key in store.image_keys()]

    def find(self, path: str) -> tuple[LmdbImages, str] | None:
        for prefix, store in self.by_prefix.items():
            if path.startswith(prefix):
                return store, path[len(prefix) :]
        return None

    def fingerprint(self) -> str:
        stamps = {prefix: [str(s.path.resolve()), s.size, *s.stamp()] for prefix, s in sorted(self.by_prefix.items())}
        return hashlib.sha1(repr(stamps).encode()).hexdigest()


@DATASETS.register()
class LmdbDataset(DatasetLoader):
    """One LMDB written by rosinality's ``prepare_data.py`` (or CDC's or AdAM's copy): one class.

    Args:
        root: the LMDB folder (``prepare_data.py --out``); its ``data.mdb`` is accepted too.
        size: the stored size to read (rosinality's LMDBs hold several); default the largest.
    """

    name = "lmdb"
    layout = (
        "an LMDB folder (data.mdb) written by rosinality's prepare_data.py: keys '<size>-<index:05d>' "
        "(CDC's LMDBs) or '<index:06d>' (AdAM's) -> image bytes, and 'length'; one class"
    )
    homepage = PREPARE_DATA

    def __init__(self, root, split: str = "train", classes: Sequence[str | int] | None = None, size: int | None = None):
        if root is not None and Path(root).expanduser().name == "data.mdb" and Path(root).expanduser().is_file():
            root = Path(root).expanduser().parent  # the file itself: its folder is the environment
        super().__init__(root, split, classes)
        self.size = size
        self._lmdb: LmdbImages | None = None

    def load_all(self) -> tuple[list[Record], list[str]]:
        if not is_lmdb(self.root):
            found = abbreviate(sorted(e.name for e in os.scandir(self.root) if not e.name.startswith(".")), 5)
            raise BenchmarkError(
                f"lmdb: data.mdb not found in {self.root}, so it is not an LMDB folder "
                f"(it holds {found or 'nothing'}). "
                f"{self.where_to_get()} For a folder of image files use the 'folder' data set."
            )
        self._lmdb = LmdbImages(self.root, self.name, self.size)
        return [Record(key, 0) for key in self._lmdb.image_keys()], [self.root.name]

    def open_image(self, record: Record) -> Image.Image:
        if self._lmdb is None:
            self.survey()
        return self._lmdb.open(record.path)

    def fingerprint(self) -> str:
        self.survey()
        return hashlib.sha1(f"{super().fingerprint()}|{self._lmdb.size}|{self._lmdb.stamp()}".encode()).hexdigest()
