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
