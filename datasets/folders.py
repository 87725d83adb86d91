"""Listing the images of a class-folder layout (``<root>/<class>/<image>``), shared by the folder datasets.

Only files directly inside a class folder with an image extension count: official archives carry a
few stray entries (notes, nested copies, hidden files from macOS), and a listing that picked them
up would make the record list, and so every cache key, depend on them.
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def is_image_file(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``folder``."""
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def image_files(folder: Path) -> list[str]:
    """Sorted names of the image files directly inside ``folder``."""
    return sorted(e.name for e in os.scandir(folder) if is_image_file(e.name) and e.is_file())
