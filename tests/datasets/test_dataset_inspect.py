"""inspect_dataset / format_inspection: counts per class and the first problems, for the CLI's inspect-data."""

from __future__ import annotations

import json

import pytest

import datasets  # noqa: F401  (registers every loader)
from benchmark.errors import BenchmarkError
from datasets.inspect import format_inspection, inspect_dataset
from tests.datasets.layouts import build_layout

CLI_KEYS = {"dataset", "n_images", "n_classes", "classes", "per_class"}


def test_inspection_counts_classes_and_lists_missing_and_unreadable_files(tmp_path):
    layout = build_layout("cub200", tmp_path / "cub")
    first, second = (p for p, _, _ in layout.records["train"][:2])
    (layout.root / first).unlink()
    (layout.root / second).write_bytes(b"<html>404 not found</html>")
    report = inspect_dataset("cub200", layout.root)
    assert CLI_KEYS | {"split", "problems"} <= set(report)
    assert json.loads(json.dumps(report)) == report
    # the headline counts images on disk: the file the annotations name but the disk lacks is not one
    assert report["n_images"] == len(layout.records["train"]) - 1 == sum(report["per_class"].values())
    assert report["n_missing"] == 1
    assert report["classes"] == layout.classes and report["n_classes"] == 3
    assert report["per_class"] == {"Black_footed_Albatross": 1, "Laysan_Albatross": 2, "Sooty_Albatross": 2}
    assert f"{first}: file missing" in report["problems"]
    assert any(p.startswith(f"{second}: unreadable (UnidentifiedImageError") for p in report["problems"])
    assert report["n_problems"] == 2  # the image without a box is in the test split

    text = format_inspection(report)
    assert text.splitlines()[0] == (
        "cub200 (train split): 5 images in 3 classes, 5 with boxes (1 more named by the annotations are missing "
        "from the disk)"
    )
    assert "  Laysan_Albatross" in text and "problems (2):" in text and f"- {first}: file missing" in text


def test_images_without_boxes_are_a_problem_and_checks_can_be_skipped(tmp_path):
    layout = build_layout("cub200", tmp_path / "cub")
    (layout.root / layout.records["test"][0][0]).unlink()
    report = inspect_dataset("cub200", layout.root, split="test", check_images=False)
    assert report["problems"] == ["1 image(s) have no bounding box (crop='bbox' centre-crops them)"]
    assert report["n_with_bbox"] == 2


def test_options_and_class_subsets_reach_the_loader(tmp_path):
    layout = build_layout("caltech256", tmp_path / "caltech")
    report = inspect_dataset("caltech256", layout.root, classes=["clutter", "ak47"], include_clutter=True)
    assert report["per_class"] == {"clutter": 2, "ak47": 2} and report["problems"] == []
    assert format_inspection(report).endswith("no problems found")


def test_in_memory_datasets_are_inspected_too(tmp_path):
    layout = build_layout("mnist", tmp_path / "mnist")
    report = inspect_dataset("mnist", layout.root, split="test")
    assert report["n_images"] == 10 and report["per_class"]["7"] == 1 and report["problems"] == []


def test_a_missing_root_is_the_loaders_one_line_error(tmp_path):
    with pytest.raises(BenchmarkError, match="afhq: data root .* does not exist"):
        inspect_dataset("afhq", tmp_path / "nowhere")
