"""A dataset's health check before a suite spends GPU hours on it (``run_benchmark.py inspect-data``).

It lists what the loader finds (images per class) and the first few problems: files the
annotations name but the disk lacks, files PIL cannot identify, images without the box a
``crop="bbox"`` suite needs. Files are checked by opening their header with PIL's ``verify``, which
is cheap; damage deeper in a file (a truncated JPEG) only shows when preprocessing decodes it,
and preprocessing skips and reports such images too.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmark.errors import abbreviate, describe
from datasets.base import DatasetLoader, Record, build_dataset

MAX_PROBLEMS = 20  # listed in the report; the count covers all of them


def _check_image(loader: DatasetLoader, record: Record) -> str | None:
    try:
        with loader.open_image(record) as image:
            image.verify()
    except FileNotFoundError:
        return "file missing"
    except Exception as err:  # PIL raises OSError, SyntaxError, struct.error, ... on a damaged header
        return f"unreadable ({describe(err)})"
    return None


def inspect_dataset(
    name: str,
    root: str | Path | None,
    split: str = "train",
    classes: Sequence[str | int] | None = None,
    check_images: bool = True,
    **options,
) -> dict:
    """Count a dataset split's images per class and look for problems.

    Args:
        name: a registered dataset name.
        root: the data root, as for the suite.
        split, classes, options: as for the loader (``build_dataset``).
        check_images: open every image's header; off, only the annotations are read.

    Returns:
        A JSON-ready dict: dataset, split, n_images (on disk: files the annotations name but the disk
        lacks are not counted), n_missing (those files), n_classes, classes, per_class ({class: images
        on disk}), n_with_bbox, empty_classes (classes without images), problems (the first few, as
        text), n_problems (all of them).
    """
    loader = build_dataset(name, root, split=split, classes=classes, **options)
    records, names = loader.survey()  # a partial copy is reported, not refused
    checked = {}
    if check_images:
        with ThreadPoolExecutor(max_workers=min(16, 4 * (os.cpu_count() or 1))) as pool:
            checked = dict(zip((r.path for r in records), pool.map(lambda r: _check_image(loader, r), records)))
    present = [r for r in records if checked.get(r.path) != "file missing"]
    counts = Counter(r.label for r in present)
    with_bbox = sum(r.bbox is not None for r in present)
    problems: list[str] = []
    n_problems = 0
    empty = loader.empty_classes()
    if empty:
        n_problems += 1
        problems.append(
            f"{len(empty)} of {len(names)} classes have no images (a partial copy, or the wrong split?): "
            f"{abbreviate(empty, 10)}; a suite that asks for one of them stops"
        )
    if loader.has_bboxes and with_bbox < len(present):
        n_problems += 1
        problems.append(f"{len(present) - with_bbox} image(s) have no bounding box (crop='bbox' centre-crops them)")
    for record in records:
        problem = checked.get(record.path)
        if problem is not None:
            n_problems += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"{record.path}: {problem}")
    return {
        "dataset": name,
        "split": split,
        "n_images": len(present),
        "n_missing": len(records) - len(present),
        "n_classes": len(names),
        "classes": names,
        "per_class": {n: counts[i] for i, n in enumerate(names)},
        "n_with_bbox": with_bbox,
        "empty_classes": empty,
        "problems": problems,
        "n_problems": n_problems,
        "notes": loader.listing_notes(),
    }


def format_inspection(report: dict) -> str:
    """The report as text for a terminal: a summary line, images per class, then the problems."""
    boxes = f", {report['n_with_bbox']} with boxes" if report.get("n_with_bbox") else ""
    missing = report.get("n_missing", 0)
    missing = f" ({missing} more named by the annotations are missing from the disk)" if missing else ""
    lines = [
        f"{report['dataset']} ({report['split']} split): {report['n_images']} images "
        f"in {report['n_classes']} classes{boxes}{missing}"
    ]
    width = min(40, max((len(c) for c in report["per_class"]), default=5))
    lines += [f"  {c:<{width}}  {n:>7}" for c, n in report["per_class"].items()]
    lines += [f"note: {note}" for note in report.get("notes", [])]
    shown, total = len(report["problems"]), report["n_problems"]
    if total:
        lines.append(f"problems ({total}, first {shown} shown):" if total > shown else f"problems ({total}):")
        lines += [f"  - {p}" for p in report["problems"]]
    else:
        lines.append("no problems found")
    return "\n".join(lines)
