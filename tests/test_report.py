"""The report against numbers aggregated independently with numpy, and the files a reader opens.

The store is filled through run folders, as cells write them (tests/report_fixtures.py): 3 target x shots groups x 2
methods x 3 seeds, one failed seed, one stale config_hash and one method whose seeds all failed.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import BenchmarkError
from benchmark.report import standalone_latex, summary_frame, tex_escape, write_report
from benchmark.report.data import SuiteResults
from benchmark.report.latex import column_blocks
from benchmark.report.markdown import results_markdown
from benchmark.report.table import human_count, human_duration, results_table
from benchmark.store import CellKey, ResultsStore
from tests.latex_check import compile_tables
from tests.report_fixtures import (
    EXPECTED,
    EXTRACTOR,
    METHODS,
    METRICS,
    N_FAKE,
    PEAK,
    STALE,
    STALE_HASH,
    SUITE,
    fill_store,
    record_cell,
)

LOWER = {"fid", "kid"}
HEADER_METRICS = {"FID": "fid", "KID": "kid", "Precision": "precision", "Memorization": "memorization"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ResultsStore:
    store = ResultsStore(tmp_path_factory.mktemp("results"))
    fill_store(store)
    return store


@pytest.fixture(scope="module")
def written(store):
    return write_report(store)


@pytest.fixture(scope="module")
def tables(store, written):
    return store.tables_dir(SUITE)


def finished_values(key: tuple, metric: str) -> list[float]:
    return list(EXPECTED[key][metric].values())


def split_row(line: str) -> list[str]:
    """Cells of a pipe-table row; escaped pipes (\\|) stay inside their cell."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def markdown_tables(text: str) -> list[list[str]]:
    """The pipe tables of a Markdown file, each as its lines."""
    blocks, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks


def parse_results_markdown(text: str) -> tuple[list[tuple[str, int, str]], dict[str, list[str]]]:
    """(target, shots, metric) per column and each method's cells, from the results table."""
    lines = markdown_tables(text)[0]
    columns = []
    for header in split_row(lines[0])[1:]:
        group, metric = header.split(" · ")
        target, shots = group.split(" ")
        columns.append((target, int(shots.removesuffix("-shot")), HEADER_METRICS[metric.split(" ")[0]]))
    rows = {split_row(line)[0].replace("\\_", "_"): split_row(line)[1:] for line in lines[2:]}
    return columns, rows


# --------------------------------------------------------------------------------------------
# Numbers


def test_summary_mean_std_match_numpy(store):
    summary = summary_frame(store, SUITE).dropna(subset=["mean"])
    assert len(summary) == len(EXPECTED) * len(METRICS)
    for r in summary.itertuples():
        values = finished_values((r.target, r.shots, r.method), r.metric)
        assert r.mean == pytest.approx(np.mean(values), rel=1e-12)
        assert r.std == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        assert r.n == len(values)
        expected = None if r.metric == "memorization" else "lower" if r.metric in LOWER else "higher"
        assert r.direction == expected or (expected is None and pd.isna(r.direction))


def test_best_select_takes_each_metrics_best_step(store):
    best = summary_frame(store, SUITE, select="best").set_index(["target", "shots", "method", "metric"])
    for (target, shots, method), peaks in PEAK.items():
        assert best.loc[(target, shots, method, "precision"), "mean"] == pytest.approx(np.mean(list(peaks.values())))
        # FID falls over training in the fixture, so its best step is the last one.
        fid = finished_values((target, shots, method), "fid")
        assert best.loc[(target, shots, method, "fid"), "mean"] == pytest.approx(np.mean(fid))


def test_unknown_select_is_an_error(store):
    with pytest.raises(BenchmarkError, match="valid: final, best"):
        write_report(store, select="median")


def test_failed_cells_excluded_and_counted(store):
    summary = summary_frame(store, SUITE).set_index(["target", "shots", "method", "metric"])
    partial = summary.loc[("digit9", 10, METHODS["freezed"], "fid")]
    assert (partial["n"], partial["n_seeds"]) == (2, 3)
    # The failed seed logged fid=0.01 before failing; the mean is over the two finished seeds only.
    assert partial["mean"] == pytest.approx(np.mean(finished_values(("digit9", 10, METHODS["freezed"]), "fid")))
    all_failed = summary.loc[("digit9", 10, METHODS["minegan"], "fid")]
    assert (all_failed["n"], all_failed["n_seeds"]) == (0, 3)
    assert np.isnan(all_failed["mean"])


def test_stale_config_hash_is_ignored(store, tables):
    tidy = pd.read_csv(tables / "results.csv")
    assert STALE_HASH not in set(tidy["config_hash"])
    method, target, shots, seed = STALE
    row = tidy[(tidy.method == METHODS[method]) & (tidy.target == target) & (tidy.shots == shots) & (tidy.seed == seed)]
    fid = row.loc[row.metric == "fid", "value"].item()
    assert fid == pytest.approx(EXPECTED[(target, shots, METHODS[method])]["fid"][seed])
    cost = pd.read_csv(tables / "results_cost.csv").set_index("method")
    assert cost.loc[METHODS[method], "trainable_params"] == 2_500_000  # the stale row recorded 1


def test_newest_attempt_decides_even_when_it_failed(tmp_path):
    """A cell re-run under a new recipe that failed must not fall back to the old recipe's numbers."""
    store = ResultsStore(tmp_path)
    fields = dict(target="t", shots=1, method="m", method_label="M", seed=0, extractor="x", n_fake=1, n_real=1)
    old, new = CellKey("s", "cell", "old"), CellKey("s", "cell", "new")
    record_cell(store, old, "finished", {10: {"fid": 5.0}}, **fields)
    record_cell(store, new, "failed", {}, error="boom", **fields)
    store.rebuild_index()
    row = summary_frame(store, "s").iloc[0]
    assert (row["n"], row["n_seeds"]) == (0, 1)


def test_what_a_method_reports_of_its_run_reaches_the_results_rows(tmp_path):
    """result.json's ``method_state`` (bsa/glo: which perceptual network the loss used) is a column of results.csv."""
    import json

    store = ResultsStore(tmp_path)
    fields = dict(target="t", shots=1, method="bsa", method_label="bsa", seed=0, extractor="x", n_fake=1, n_real=1)
    key = CellKey("s", "cell", "h")
    record_cell(store, key, "finished", {10: {"fid": 5.0}}, **fields)
    result = store.folder(key).path / "result.json"
    state = {"perceptual_network": "vgg16 (torchvision weights: an approximation of the official Caffe VGG16)"}
    result.write_text(json.dumps({**json.loads(result.read_text()), "method_state": state}))
    store.rebuild_index()
    (value,) = SuiteResults.load(store, "s").values()["method_state"]
    assert json.loads(value) == state


def test_unknown_metric_is_neither_ranked_nor_arrowed(tmp_path):
    store = ResultsStore(tmp_path)
    fields = dict(target="t", shots=None, method="m", extractor="x", n_fake=10, n_real=5)
    for i, label in enumerate(("A", "B")):
        cell = CellKey("s", f"cell{i}", "h")
        metrics = {10: {"fid": 10.0 + i, "lpips": 0.5 + i}}
        record_cell(store, cell, "finished", metrics, method_label=label, seed=0, **fields)
    store.rebuild_index()
    results = SuiteResults.load(store, "s")
    text = results_markdown(results_table(results, results.summary(), "final"))
    columns = split_row(markdown_tables(text)[0][0])
    assert columns[1:] == ["t all · FID ↓", "t all · lpips"]
    rows = [split_row(line) for line in markdown_tables(text)[0][2:]]
    assert [row[1].startswith("**") for row in rows] == [True, False]
    assert not any(row[2].startswith("**") for row in rows)
    assert "not ranked: lpips" in text


# --------------------------------------------------------------------------------------------
# Files


def test_write_report_lists_every_file_it_writes(store, written, tables):
    names = {p.relative_to(tables).as_posix() for p in written}
    assert {"results.csv", "results_summary.csv", "results_cost.csv", "results.tex", "results.md"} <= names
    on_disk = {p.relative_to(tables).as_posix() for p in tables.rglob("*") if p.is_file()}
    assert names == on_disk


def test_csv_round_trips(store, tables):
    tidy = pd.read_csv(tables / "results.csv")
    assert list(tidy.columns[:7]) == ["suite", "target", "shots", "method", "seed", "metric", "value"]
    assert len(tidy) == sum(len(seeds) for metrics in EXPECTED.values() for seeds in metrics.values())
    for r in tidy.itertuples():
        assert r.value == pytest.approx(EXPECTED[(r.target, r.shots, r.method)][r.metric][r.seed], rel=1e-12)
        assert r.metric_id == f"{r.metric}{N_FAKE}_{EXTRACTOR}"  # e.g. fid480_digits-lenet: count and features
    wide = pd.read_csv(tables / "results_summary.csv").set_index(["target", "shots", "method"])
    summary = summary_frame(store, SUITE).dropna(subset=["mean"])
    for r in summary.itertuples():
        assert wide.loc[(r.target, r.shots, r.method), f"{r.metric}_mean"] == pytest.approx(r.mean, rel=1e-12)
        assert wide.loc[(r.target, r.shots, r.method), f"{r.metric}_std"] == pytest.approx(r.std, rel=1e-12)
    failed = wide.loc[("digit9", 10, METHODS["minegan"])]
    assert failed["n_seeds"] == 3 and failed["fid_n"] == 0 and np.isnan(failed["fid_mean"])


def test_bold_is_the_best_mean_in_the_metrics_direction(tables):
    columns, rows = parse_results_markdown((tables / "results.md").read_text())
    assert len(columns) == len({k[:2] for k in EXPECTED}) * len(METRICS)
    for j, (target, shots, metric) in enumerate(columns):
        bold = {method for method, cells in rows.items() if cells[j].startswith("**")}
        if metric == "memorization":  # a diagnostic, never ranked
            assert not bold
            continue
        means = {m: np.mean(finished_values((target, shots, m), metric)) for m in ("FreezeD_4", "Scratch")}
        pick = min if metric in LOWER else max
        best = pick(means, key=means.get)
        assert bold == {best}, (target, shots, metric)


def test_markdown_marks_partial_failed_and_missing_entries(tables):
    text = (tables / "results.md").read_text()
    columns, rows = parse_results_markdown(text)
    for j, (target, _, _) in enumerate(columns):
        assert rows["FreezeD_4"][j].endswith("†") == (target == "digit9")
        assert rows["MineGAN"][j] == ("failed" if target == "digit9" else "–")
    assert "FreezeD\\_4, digit9 10-shot: 2 of 3 seeds" in text


def test_markdown_rows_have_the_header_column_count(tables):
    text = (tables / "results.md").read_text()
    blocks = markdown_tables(text)
    assert len(blocks) == 2  # results and cost
    for lines in blocks:
        widths = {len(split_row(line)) for line in lines}
        assert len(widths) == 1 and widths.pop() > 1
        assert set(split_row(lines[1])) <= {":---", "---:"}
    before = text.split(blocks[0][0])[0].strip().splitlines()
    assert before and before[-1].startswith("**Results.**")  # the caption is the paragraph above


def test_caption_names_extractor_counts_and_directions(tables):
    caption = (tables / "results.md").read_text().splitlines()[0]
    for needle in (EXTRACTOR, f"{N_FAKE} generated", "digit7 178", "digit9 180", "3 seeds (0, 1, 2)"):
        assert needle in caption
    assert "↓ lower is better (FID, KID)" in caption
    assert "↑ higher is better (Precision)" in caption
    assert "Memorization (not ranked)" in caption
    tex_caption = re.search(r"\\caption\{(.*)\}", (tables / "results.tex").read_text()).group(1)
    assert EXTRACTOR in tex_caption and r"$\downarrow$ lower is better" in tex_caption


def test_cost_table_in_human_units(tables):
    _, rows = markdown_tables((tables / "results.md").read_text())
    cells = {split_row(line)[0]: split_row(line)[1:] for line in rows[2:]}
    assert cells["FreezeD\\_4"][0] == "1.2M" and cells["Scratch"][0] == "2.5M"
    assert cells["Scratch"][2] == "2m 00s"  # seeds ran 60, 120 and 180 s


def test_plots_are_non_empty_pngs(written, tables):
    plots = {p.name: p for p in written if p.parent == tables / "plots"}
    expected = {"curves_digit7_5shot.png", "curves_digit7_10shot.png", "curves_digit9_10shot.png", "shots_digit7.png"}
    assert set(plots) == expected  # digit9 has one shot count: no shots plot
    for path in plots.values():
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000


# --------------------------------------------------------------------------------------------
# LaTeX


def test_latex_structure(tables):
    tex = (tables / "results.tex").read_text()
    # The main table (the card's metrics present here: FID), a table of the other metrics, the cost table.
    assert tex.count(r"\begin{table}") == tex.count(r"\caption{") == 3
    for rule in (r"\begin{tabular}", r"\toprule", r"\bottomrule"):
        assert tex.count(rule) == 3, rule
    assert_balanced(tex)
    for spec, body in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", tex, flags=re.S):
        for line in body.splitlines():
            if line.endswith(r"\\"):
                assert row_width(line) == len(spec), line
    main, further, _ = re.findall(r"\\begin\{table\}.*?\\end\{table\}", tex, flags=re.S)
    assert "\nMethod & FID $\\downarrow$ \\\\" in main
    assert "\nMethod & KID $\\downarrow$ & Precision $\\uparrow$ & Memorization \\\\" in further
    assert further.count(r"\multicolumn{4}{l}{\textit{digit7 10-shot}}") == 1  # a heading row per group
    assert r"FreezeD\_4" in tex and "FreezeD_4" not in tex


def test_latex_compiles_within_the_page(tables, tmp_path):
    document = standalone_latex((tables / "results.tex").read_text())
    assert document.startswith(r"\documentclass{article}") and r"\usepackage{booktabs}" in document
    assert_balanced(document)
    compile_tables((tables / "results.tex").read_text(), tmp_path)


def assert_balanced(tex: str) -> None:
    """Unescaped braces never close more than they opened, and environments nest."""
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", tex):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack.pop() == env
    assert not stack


def row_width(line: str) -> int:
    """Columns a tabular row fills: cells between unescaped &, with multicolumn spans counted."""
    cells = re.split(r"(?<!\\)&", line)
    spans = [int(m.group(1)) if (m := re.search(r"\\multicolumn\{(\d+)\}", c)) else 1 for c in cells]
    return sum(spans)


@pytest.mark.parametrize(
    ("sizes", "blocks"),
    [([4, 4, 4], [4, 4, 4]), ([2, 2, 4], [4, 4]), ([9], [3, 3, 3]), ([1, 9, 2], [4, 3, 3, 2]), ([3, 2], [3, 2])],
)
def test_latex_column_blocks_stay_narrow(sizes, blocks):
    groups = [[f"g{i}m{j}" for j in range(n)] for i, n in enumerate(sizes)]
    assert [len(block) for block in column_blocks(groups, limit=4)] == blocks


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("50% & #1", r"50\% \& \#1"),
        ("a_b {c} $d", r"a\_b \{c\} \$d"),
        ("~^\\", r"\textasciitilde{}\textasciicircum{}\textbackslash{}"),
    ],
)
def test_tex_escape(text, escaped):
    assert tex_escape(text) == escaped


# --------------------------------------------------------------------------------------------
# Units and errors


@pytest.mark.parametrize(("n", "text"), [(999, "999"), (12_345, "12.3K"), (1_234_567, "1.2M"), (3.4e9, "3.4B")])
def test_human_count(n, text):
    assert human_count(n) == text


@pytest.mark.parametrize(("seconds", "text"), [(45, "45s"), (750, "12m 30s"), (3725, "1h 02m")])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_unknown_suite_and_empty_store_are_errors(store, tmp_path):
    with pytest.raises(BenchmarkError, match="no cells of suite 'nope'"):
        write_report(store, suite="nope")
    with pytest.raises(BenchmarkError, match="run a suite first"):
        write_report(ResultsStore(tmp_path / "empty"))


def test_rows_and_column_groups_follow_the_suite_order(store):
    summary = summary_frame(store, SUITE)
    assert list(dict.fromkeys(summary["target"])) == ["digit9", "digit7"]
    table = results_table(SuiteResults.load(store, SUITE), summary, "final")
    assert table.methods == ["Scratch", "MineGAN", "FreezeD_4"]
