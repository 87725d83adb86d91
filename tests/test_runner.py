"""The runner's own plumbing (cells end to end are tested through the CLI in test_cli.py)."""

import io
import logging

from benchmark.runner import _RunLog


def test_a_cells_log_gets_info_records_and_the_console_keeps_its_level(tmp_path):
    """A cell's INFO lines go to its log.txt; the console (basicConfig at WARNING, no -v) still shows none."""
    root = logging.getLogger()
    console = logging.StreamHandler(io.StringIO())  # as logging.basicConfig adds it: no level of its own
    old_level = root.level
    root.setLevel(logging.WARNING)
    root.addHandler(console)
    try:
        with _RunLog(tmp_path / "log.txt"):
            logging.getLogger("benchmark.trainer").info("step 1")
            logging.getLogger("benchmark.trainer").warning("careful")
        assert root.level == logging.WARNING and console.level == logging.NOTSET
    finally:
        root.removeHandler(console)
        root.setLevel(old_level)
    written = (tmp_path / "log.txt").read_text()
    assert "step 1" in written and "careful" in written
    assert console.stream.getvalue() == "careful\n"


def test_the_dry_run_reports_the_training_share_of_the_reference_and_warns_above_half():
    """Per target and shot count, the share of the reference images that are training images (overall and in
    the worst class); above half of a class, a warning: FID and intra-FID would reward copying the shots."""
    from benchmark.config import load_suite, parse_suite, read_suite
    from benchmark.runner import check_inputs

    lines = check_inputs(load_suite("toy"))  # scored against the held-out test digits: no overlap
    assert (
        "target digit7: training images among the reference images: 0% at 10 shots (at most 0% of a class), "
        "0% at 100 shots (at most 0% of a class)" in lines
    )
    assert not [line for line in lines if line.startswith("warning")]

    raw = read_suite("toy")
    raw["targets"] = [{**raw["targets"][1], "eval_split": None, "shots": [100, 250]}]  # scored against its 400 a class
    lines = check_inputs(parse_suite(raw))
    assert (
        "target digits789: training images among the reference images: 25% at 100 shots (at most 25% of a "
        "class), 62% at 250 shots (at most 62% of a class)" in lines
    )
    (warning,) = [line for line in lines if line.startswith("warning")]
    assert warning.startswith("warning: target digits789 at 250 shots: up to 62% of a class's reference images")


def test_the_dry_run_reports_image_files_missing_under_an_intact_label_file(tmp_path):
    """The annotations name every image, the disk lacks two: the dry run says so, with where and what to do."""
    from benchmark.config import parse_suite, read_suite
    from benchmark.runner import check_inputs
    from tests.datasets.layouts import build_layout

    layout = build_layout("cub200", tmp_path / "cub")
    for path, _, _ in layout.records["train"][:2]:
        (layout.root / path).unlink()
    raw = read_suite("toy")
    raw["targets"] = [{"name": "birds", "dataset": "cub200", "data_root": str(layout.root), "shots": [1]}]
    raw["eval"] = {"metrics": ["fid"]}
    lines = check_inputs(parse_suite(raw))
    (warning,) = [line for line in lines if "missing" in line]
    assert warning.startswith(
        f"warning: target birds: 2 of the 6 images the annotations name (train split) are missing from {layout.root}: "
    )
    assert warning.endswith("preprocessing skips them: extract the archive again (inspect-data cub200 lists them)")
