"""PRDC values that rest on k-NN radii of 0 are explained in the table's footnote, never shown as a column."""

from __future__ import annotations

import pandas as pd

from benchmark.report import write_report
from benchmark.store import CellKey, ResultsStore
from tests.report_fixtures import record_cell

SUITE = "dup"


def _cell(store: ResultsStore, method: str, seed: int, zero_radii_at: dict[int, int]) -> None:
    """A finished cell's run folder, with ``prdc_zero_radii`` recorded at the given steps."""
    key = CellKey(SUITE, f"digit7-5shot-{method}-s{seed}", "c0ffee00")
    metrics = {}
    for step in (0, 10):
        metrics[step] = {"fid": 10.0 - step / 10 + seed, "precision": 0.5, "recall": 0.25, "density": 0.5,
                         "coverage": 0.5}  # fmt: skip
        if step in zero_radii_at:
            metrics[step]["prdc_zero_radii"] = zero_radii_at[step]
    record_cell(
        store, key, "finished", metrics, target="digit7", dataset="mnist5k", shots=5, method=method,
        method_label=method, seed=seed, extractor="digits-classifier", n_fake=64, n_real=100, steps=10,
        trainable_params=10, images_per_second=1.0, wall_seconds=1.0,
    )  # fmt: skip


def test_zero_radii_make_a_footnote_not_a_column(tmp_path):
    store = ResultsStore(tmp_path)
    _cell(store, "glo", 0, {0: 64, 10: 128})
    _cell(store, "glo", 1, {})
    _cell(store, "freezed", 0, {})
    store.rebuild_index()
    write_report(store, SUITE)
    tables = store.tables_dir(SUITE)
    markdown = (tables / "results.md").read_text()
    latex = (tables / "results.tex").read_text()
    note = "PRDC: k-NN radii of 0 (duplicated features) in 1 cell(s), with the most at one evaluation: "
    assert f"{note}digit7-5shot-glo-s0 (128); a ball of radius 0 holds nothing" in markdown
    assert note in latex and r"digit7-5shot-glo-s0 (128)" in latex
    assert "prdc_zero_radii" not in markdown and "zero" not in latex.lower().replace("radii of 0", "")
    tidy = pd.read_csv(tables / "results.csv")
    assert "prdc_zero_radii" not in set(tidy["metric"]) and {"fid", "precision"} <= set(tidy["metric"])
    assert not any("zero" in c for c in pd.read_csv(tables / "results_summary.csv").columns)


def test_no_footnote_without_zero_radii(tmp_path):
    store = ResultsStore(tmp_path)
    _cell(store, "glo", 0, {})
    store.rebuild_index()
    write_report(store, SUITE)
    assert "k-NN radii of 0" not in (store.tables_dir(SUITE) / "results.md").read_text()
