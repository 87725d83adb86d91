"""Your own images as a target, through the real command line: the README's command on a folder of
10 images, ``inspect-data folder``, a suite naming a target by path, and the named 10-shot sets."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

from tests.conftest import tiny_suite, write_suite
from tests.datasets.image_folder_layouts import write_lmdb
from tests.datasets.layouts import write_jpeg
from tests.test_cli import run_cli

README = Path(__file__).resolve().parent.parent / "README.md"


def ten_images(folder: Path) -> Path:
    """A user's folder: 10 photos (one in a sub-folder), a note and a macOS file beside them."""
    for i in range(9):
        write_jpeg(folder / f"IMG_{i:04d}.jpg", i)
    write_jpeg(folder / "more" / "IMG_0009.jpg", 9)
    (folder / "notes.txt").write_text("taken in May")
    (folder / ".DS_Store").write_bytes(b"\0")
    return folder


def readme_command() -> list[str]:
    """The README's one command for your own folder, as written there."""
    line = next(line for line in README.read_text().splitlines() if "--target-folder" in line and "python" in line)
    return shlex.split(line.split("python run_benchmark.py", 1)[1])


def test_the_readme_command_runs_a_folder_of_10_images_end_to_end(tmp_path, cache_dir):
    folder = ten_images(tmp_path / "my-images")
    args = [str(folder) if a == "~/my-images" else a for a in readme_command()]
    assert "--budget" in args and "smoke" in args and str(folder) in args
    out = tmp_path / "out"
    result = run_cli(*args, "--device", "cpu", "--out", out, "--no-progress", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    runs = sorted(r for r in (out / "runs" / "toy").iterdir() if r.is_dir())
    assert [r.name.rsplit("-", 1)[0] for r in runs] == ["my-images-all-freezed-s0", "my-images-all-transfergan-s0"]
    for run in runs:
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["dataset"] == "folder" and manifest["classes"] == ["my-images"]
        assert manifest["files"]["my-images"] == [f"IMG_{i:04d}.jpg" for i in range(9)] + ["more/IMG_0009.jpg"]
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert rows[-1]["n_real"] == 10 and "fid" in rows[-1]["metrics"]
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["target"]["dataset"] == "folder" and config["target"]["shots"] == [None]
    table = (out / "tables" / "toy" / "results.md").read_text()
    assert "my-images all · FID" in table


def test_inspect_data_folder_reports_classes_problems_and_what_it_skipped(tmp_path, cache_dir):
    folder = ten_images(tmp_path / "mine")
    (folder / "broken.png").write_bytes(b"<html>")
    result = run_cli("inspect-data", "folder", "--data-root", folder, cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "folder (train split): 11 images in 1 classes"
    assert "note: skipped 1 hidden file(s) or folder(s)" in lines
    assert "note: skipped 1 file(s) that are not images, e.g. notes.txt" in lines
    assert any(line.startswith("  - broken.png: unreadable") for line in lines)
    report = json.loads(run_cli("inspect-data", "folder", "--data-root", folder, "--json", cache_dir=cache_dir).stdout)
    assert report["per_class"] == {"mine": 11} and len(report["notes"]) == 3
    assert report["notes"][0].startswith("read as one class: 10 image(s) lie beside sub-folders with images (more)")


def test_a_target_folder_that_is_missing_or_holds_no_images_is_one_line_exit_2(tmp_path, cache_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    for folder, message in (
        (tmp_path / "nowhere", "--target-folder {} does not exist: pass a folder of images"),
        (tmp_path / "empty", "folder: no images under {} (skipped 0 hidden and 1 non-image files, e.g. notes.txt)"),
    ):
        result = run_cli("--suite", "toy", "--target-folder", folder, "--dry-run", cache_dir=cache_dir)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert message.format(folder) in lines[0]


def test_a_suite_names_a_target_by_path_and_a_cdc_target_scores_against_its_full_set(tmp_path, cache_dir):
    ten_images(tmp_path / "mine")
    write_lmdb(tmp_path / "sets" / "babies" / "train", 10, sizes=(32,))  # CDC's "processed" download
    for i in range(12):
        write_jpeg(tmp_path / "sets" / "babies" / "full" / f"{i:04d}.png", i)
    suite = tiny_suite(
        targets=[
            {"name": "mine", "dataset": "folder", "data_root": str(tmp_path / "mine"), "shots": [10]},
            {
                "name": "babies",
                "dataset": "babies",
                "data_root": str(tmp_path / "sets"),
                "split": "train",
                "eval_split": "full",
                "shots": [10],
            },
        ]
    )
    result = run_cli("--suite", write_suite(tmp_path / "s.yaml", suite), "--dry-run", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    for line in (
        "# target mine: 10 folder images (train split), 1 classes",
        "# target babies: 10 babies images (train split), 1 classes",
        "# target babies: 12 babies images (full split), 1 classes",
        "# target mine: skipped 1 file(s) that are not images, e.g. notes.txt",  # the dry run shows what was left out
    ):
        assert line in result.stdout, line
    assert re.search(r"babies-10shot-freezed-s0", result.stdout)


def test_list_says_where_each_named_set_comes_from_and_its_layout(cache_dir):
    result = run_cli("list", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    babies = next(i for i, line in enumerate(lines) if line.startswith("  babies "))
    assert "train/ = the 10 images, full/ = the FID set" in lines[babies]
    assert lines[babies + 1].strip().startswith("from 10 images: CDC's README")
    assert "https://drive.google.com/file/d/1JmjKBq_wylJmpCQ2OWNMy211NFJhHHID/view" in lines[babies + 1]  # test set
    for name in ("folder", "lmdb", "sunglasses", "van_gogh", "metfaces", "afhq_wild"):
        assert any(line.startswith(f"  {name} ") for line in lines), name
