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
    # Scored only by metrics that never compare with the reference images (intra-LPIPS, CDC's painting
    # targets): the share is still shown, and there is nothing to warn about.
    from benchmark.runner import target_loader, training_share_lines

    (target,) = parse_suite(raw).targets
    loader = target_loader(target, target.split)
    (line,) = training_share_lines(target, loader, loader, compared=False)
    assert line.startswith("target digits789: training images among the reference images: 25% at 100 shots")


def test_every_shipped_suite_reports_a_training_share_per_target_on_the_miniature_layouts(tmp_path):
    """What the dry run prints per target, for every shipped suite, on the tests' miniature official layouts
    (1 shot: the most their classes hold): a share line per target, and no warning; whole data sets at 100%
    by design, the toy at 0% (scored against its held-out split)."""
    import dataclasses

    from benchmark.config import load_suite, shipped_suites
    from benchmark.runner import target_loader, training_share_lines
    from tests.datasets.layouts import build_layout

    roots = {}
    for name in shipped_suites():
        for target in load_suite(name).targets:
            if target.dataset != "mnist5k":  # the bundled data needs no layout
                if target.dataset not in roots:
                    roots[target.dataset] = build_layout(target.dataset, tmp_path / target.dataset).root
                shots = tuple(None if s is None else 1 for s in target.shots)
                target = dataclasses.replace(target, data_root=roots[target.dataset], classes=None, shots=shots)
            train, reference = (target_loader(target, s) for s in (target.split, target.eval_split or target.split))
            (line,) = training_share_lines(target, train, reference)
            assert line.startswith(f"target {target.name}: training images among the reference images: "), name
            if all(s is None for s in target.shots):  # all of a whole data set, or a published set's 10 in its full set
                holds = reference.holds_split(target.split)
                share = len(train.records()) / len(reference.records()) if holds else 1.0
                assert line.endswith(f": {share:.0%} at all images (at most {share:.0%} of a class)"), (name, line)
