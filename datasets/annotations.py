"""Readers for the annotation formats the official layouts use: MATLAB .mat, whitespace text, VOC XML.

Each reader turns a missing file into the loader's "not found, get it from ..." error and a
malformed one into a one-line :class:`BenchmarkError` naming the file and what is wrong with it
(the variable or field that is absent, the line that does not parse), so a user with a damaged
download sees which file to fetch again instead of a scipy or XML traceback.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from benchmark.errors import BenchmarkError
from datasets.base import DatasetLoader


def require(loader: DatasetLoader, relpath: str | Path) -> Path:
    """The absolute path of a file or folder the layout needs, or the loader's "not found" error."""
    path = loader.root / relpath
    if not path.exists():
        raise loader.missing(str(relpath))
    return path


def first_existing(loader: DatasetLoader, candidates: Sequence[str]) -> Path:
    """The first of several places a file may be in (archives differ), or a "not found" error naming them all."""
    for relpath in candidates:
        if (loader.root / relpath).exists():
            return loader.root / relpath
    raise loader.missing(" or ".join(candidates))


def malformed(loader: DatasetLoader, path: Path, problem: str) -> BenchmarkError:
    return BenchmarkError(f"{loader.name}: {path} is malformed: {problem}. Re-extract it from the official archive.")


def read_mat(loader: DatasetLoader, relpath: str | Path, variables: Sequence[str]) -> dict[str, np.ndarray]:
    """The named variables of a MATLAB file, squeezed (a 1xN cell becomes a 1-D array of str).

    Args:
        loader: the loader asking (for its name, root and download hint in errors).
        relpath: the file, relative to the loader's root.
        variables: the variables the official file has; any that is absent is an error.
    """
    from scipy.io import loadmat

    path = require(loader, relpath)
    try:
        data = loadmat(path, squeeze_me=True)
    except Exception as err:  # scipy raises ValueError, TypeError, MatReadError, ... on a damaged file
        raise malformed(loader, path, f"not a readable MATLAB file ({type(err).__name__}: {err})") from None
    absent = [v for v in variables if v not in data]
    if absent:
        found = ", ".join(k for k in data if not k.startswith("__")) or "none"
        raise malformed(loader, path, f"no variable {', '.join(map(repr, absent))} (variables found: {found})")
    return {v: data[v] for v in variables}


def vector(loader: DatasetLoader, path: Path, name: str, value) -> np.ndarray:
    """A squeezed .mat variable as a 1-D array (a single element squeezes to a scalar)."""
    array = np.atleast_1d(np.asarray(value))
    if array.ndim != 1:
        raise malformed(loader, path, f"variable {name!r} has shape {array.shape}, expected a vector")
    return array


def integers(loader: DatasetLoader, path: Path, name: str, value) -> list[int]:
    """A numeric .mat vector (labels, image ids) as Python ints."""
    array = vector(loader, path, name, value)
    if not np.issubdtype(array.dtype, np.number):
        raise malformed(loader, path, f"variable {name!r} holds {array.dtype} values, expected numbers")
    return array.astype(np.int64).tolist()


def struct_fields(loader: DatasetLoader, path: Path, name: str, value, fields: Sequence[str]) -> dict[str, np.ndarray]:
    """The given fields of a 1xN MATLAB struct array, each as a 1-D array of length N."""
    array = vector(loader, path, name, value)
    present = array.dtype.names or ()
    absent = [f for f in fields if f not in present]
    if absent:
        shown = ", ".join(present) if present else "it is not a struct array"
        raise malformed(loader, path, f"{name!r} lacks field(s) {', '.join(absent)} ({shown})")
    return {f: array[f] for f in fields}


def iter_rows(
    loader: DatasetLoader, relpath: str | Path, columns: Sequence[Callable[[str], object]], expected: str
) -> Iterator[tuple]:
    """Rows of a whitespace-separated text file, each field converted; blank lines are skipped.

    The last column takes the rest of the line, so file names with spaces survive.

    Args:
        columns: one converter per column (``int``, ``float``, ``str``).
        expected: the line format for error messages, e.g. ``"<image_id> <class_id>"``.
    """
    path = require(loader, relpath)
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                fields = line.strip().split(maxsplit=len(columns) - 1)
                try:
                    if len(fields) != len(columns):
                        raise ValueError
                    yield tuple(convert(field) for convert, field in zip(columns, fields))
                except ValueError:
                    raise malformed(loader, path, f"line {number} is {line.strip()!r}, expected {expected}") from None
    except UnicodeDecodeError:
        raise malformed(loader, path, "not a text file") from None


def read_rows(loader: DatasetLoader, relpath: str | Path, columns, expected: str) -> list[tuple]:
    return list(iter_rows(loader, relpath, columns, expected))


def voc_boxes(loader: DatasetLoader, path: Path) -> list[tuple[float, float, float, float]]:
    """Every object box of a PASCAL VOC XML file, as (xmin, ymin, xmax, ymax) as written (1-based)."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as err:
        raise malformed(loader, path, f"not valid XML ({err})") from None
    boxes = []
    for box in tree.getroot().iter("bndbox"):
        try:
            boxes.append(tuple(float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")))
        except (TypeError, ValueError):
            raise malformed(loader, path, "a <bndbox> lacks a numeric xmin, ymin, xmax or ymax") from None
    return boxes


def voc_size(path: Path) -> tuple[int, int] | None:
    """The image size (width, height) a VOC XML file declares in ``<size>``, or None when it declares none."""
    try:
        size = ET.parse(path).getroot().find("size")
        width, height = int(float(size.findtext("width"))), int(float(size.findtext("height")))
    except (ET.ParseError, AttributeError, TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None
