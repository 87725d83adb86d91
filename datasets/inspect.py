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
from datasets.preprocess import box_problem

MAX_PROBLEMS = 20  # listed in the report; the count covers all of them


def _check_image(loader: DatasetLoader, record: Record) -> tuple[str | None, str | None, str | None]:
    """(the problem, or None; the image's Pillow mode, or None when it cannot be opened; what is wrong
    with its object box for the image's size, or None)."""
    try:
        with loader.open_image(record) as image:
            mode, size = image.mode, image.size
            image.verify()
    except FileNotFoundError:
        return "file missing", None, None
    except Exception as err:  # PIL raises OSError, SyntaxError, struct.error, ... on a damaged header
        return f"unreadable ({describe(err)})", None, None
    return None, mode, box_problem(record.bbox, *size, record.size)


# Pillow modes in words, for the report (modes deeper than 8 bits are scaled by ``preprocess.to_8bit``).
MODE_NAMES = {
    "1": "1-bit",
    "L": "8-bit grey",
    "LA": "8-bit grey + alpha",
    "P": "palette",
    "PA": "palette + alpha",
    "RGB": "8-bit RGB (16-bit RGB PNGs too)",
    "RGBA": "8-bit RGBA (16-bit RGBA PNGs too)",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "I;16": "16-bit grey, scaled to 8 bits",
    "I;16B": "16-bit grey, scaled to 8 bits",
    "I;16L": "16-bit grey, scaled to 8 bits",
    "I": "32-bit integer grey, scaled to 8 bits",
    "F": "32-bit float grey, scaled from 0..1 or 0..255 (else skipped)",
}


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
        lacks are n_missing, not images), n_missing, n_classes, classes, per_class ({class: images}),
        n_with_bbox, empty_classes (classes without images), problems (the first few, as text),
        n_problems (all of them).
    """
    loader = build_dataset(name, root, split=split, classes=classes, **options)
    records, names = loader.survey()  # a partial copy is reported, not refused
    counts = Counter(r.label for r in records)
    with_bbox = sum(r.bbox is not None for r in records)
    problems: list[str] = []
    n_problems = 0
    empty = loader.empty_classes()
    if not records:
        n_problems += 1
        problems.append(f"{loader.empty_problem()}; a suite on it stops")
    elif empty:
        n_problems += 1
        shown = [f"{n} ({loader.class_dirs[n]})" if n in loader.class_dirs else n for n in empty]
        problems.append(
            f"{len(empty)} of {len(names)} classes have no images (a partial copy, or the wrong split?): "
            f"{abbreviate(shown, 10)}; a suite that asks for one of them stops"
        )
    if loader.has_bboxes and with_bbox < len(records):
        n_problems += 1
        problems.append(f"{len(records) - with_bbox} image(s) have no bounding box (crop='bbox' centre-crops them)")
    modes: Counter = Counter()
    boxes: dict[str, list[str]] = {}
    missing = 0  # files the annotations name but the disk lacks: reported, not counted as images
    if check_images:
        with ThreadPoolExecutor(max_workers=min(16, 4 * (os.cpu_count() or 1))) as pool:
            checked = pool.map(lambda r: _check_image(loader, r), records)
            for record, (problem, mode, box) in zip(records, checked):
                modes[mode] += mode is not None
                if box is not None:
                    boxes.setdefault(box, []).append(record.path)
                if problem is not None:
                    n_problems += 1
                    missing += problem == "file missing"
                    if len(problems) < MAX_PROBLEMS:
                        problems.append(f"{record.path}: {problem}")
                    if problem == "file missing":  # the headline counts images on disk
                        counts[record.label] -= 1
                        with_bbox -= record.bbox is not None
    for what, paths in sorted(boxes.items()):
        n_problems += 1
        clipped = what.endswith("(clipped)")
        rule = "crop='bbox' clips them to it" if clipped else "crop='bbox' centre-crops those images"
        what = what.removesuffix(" (clipped)")
        problems.append(f"{len(paths)} object box(es) {what}: {abbreviate(paths, 3)}; {rule}")
    return {
        "dataset": name,
        "split": split,
        "n_images": len(records) - missing,
        "n_missing": missing,
        "n_classes": len(names),
        "classes": names,
        "per_class": {n: counts[i] for i, n in enumerate(names)},
        "n_with_bbox": with_bbox,
        "empty_classes": empty,
        "modes": {m: n for m, n in modes.most_common() if n},
        "box_problems": {what: len(paths) for what, paths in sorted(boxes.items())},
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
    if report.get("modes"):
        shown = ", ".join(f"{n} {m} ({MODE_NAMES.get(m, 'converted by Pillow')})" for m, n in report["modes"].items())
        lines.append(f"image modes: {shown}")
    lines += [f"note: {note}" for note in report.get("notes", [])]
    shown, total = len(report["problems"]), report["n_problems"]
    if total:
        lines.append(f"problems ({total}, first {shown} shown):" if total > shown else f"problems ({total}):")
        lines += [f"  - {p}" for p in report["problems"]]
    else:
        lines.append("no problems found")
    return "\n".join(lines)
