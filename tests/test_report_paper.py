"""Tables and plots that fit a paper: page-sized LaTeX floats, one style per method, published values.

Stores are filled through the store's API with every cell of a shipped suite
(tests/report_fixtures.py ``fill_suite_store``), so the tables have the size a real run gives.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from benchmark.config import load_suite
from benchmark.method import METHODS
from benchmark.protocol import load_protocol, save_protocol
from benchmark.report import write_report
from benchmark.report.data import SuiteResults
from benchmark.report.markdown import MARKDOWN
from benchmark.report.plots import method_styles, registered_style
from benchmark.report.table import CARD_METRICS, results_table
from benchmark.store import ResultsStore
from tests.latex_check import compile_tables
from tests.report_fixtures import fill_suite_store


@pytest.fixture(scope="module")
def toy_tables(tmp_path_factory):
    store = ResultsStore(tmp_path_factory.mktemp("toy-sized"))
    fill_suite_store(store, load_suite("toy"))
    write_report(store)
    return store.tables_dir("toy")


@pytest.fixture(scope="module")
def park_store(tmp_path_factory):
    """Every cell of park2023 (6 targets x 14 methods, one seed), its protocol recorded as a run does."""
    suite = load_suite("park2023", seeds=[0])
    store = ResultsStore(tmp_path_factory.mktemp("park-sized"))
    fill_suite_store(store, suite)
    save_protocol(store, suite.name, suite.protocol)
    write_report(store)
    return store


def floats(tex: str) -> list[str]:
    return re.findall(r"\\begin\{table\}.*?\\end\{table\}", tex, flags=re.S)


def header_metrics(table_tex: str) -> list[str]:
    header = next(line for line in table_tex.splitlines() if line.startswith("Method &"))
    return [cell.split("$")[0].strip() for cell in header.removesuffix(r"\\").split("&")[1:]]


def test_toy_sized_latex_compiles_within_the_page(toy_tables, tmp_path):
    tex = (toy_tables / "results.tex").read_text()
    log = compile_tables(tex, tmp_path)
    assert "Output written on tables.pdf" in log
    tables = floats(tex)
    # The main table carries the card's four metrics (continued over a second float: 15 methods x 3
    # groups are taller than a page), the other metrics go to further tables, then the cost table.
    card = ["FID", "KMMD (squared)", "Coverage", "Density"]
    assert header_metrics(tables[0]) == card
    rest = [m for t in tables[1:-1] if header_metrics(t) != card for m in header_metrics(t)]
    assert set(rest) == {"KID", "Precision", "Recall", "Intra-FID", "Memorization"}
    # Every one of the 15 toy methods has a row in every target x shots group of the main table.
    main = "".join(t for t in tables if "Coverage" in t)
    for label in ("minegan-multi", "hypermod", "scratch"):
        assert main.count(f"\n{label} &") == 3, label


def test_a_park_sized_table_continues_over_floats_that_each_fit(park_store, tmp_path):
    tex = (park_store.tables_dir("park2023") / "results.tex").read_text()
    compile_tables(tex, tmp_path)
    main = [t for t in floats(tex) if header_metrics(t) == ["FID", "KMMD (squared)", "Coverage", "Density"]]
    assert len(main) >= 2 and r"continued from Table~\ref{tab:park2023-results}" in main[1]
    groups = [g for t in main for g in re.findall(r"\\textit\{(\w+) all\}", t)]
    assert groups == ["cars", "dogs", "flowers", "caltech", "cub", "insect"]


def test_published_values_beside_ours_never_in_our_means(park_store):
    protocol = load_protocol(park_store, "park2023")
    assert protocol.name == "Park et al. 2023" and protocol.published["cars"]["fid"]["partial fine-tuning"] == "10.84"
    results = SuiteResults.load(park_store, "park2023")
    summary = results.summary()
    table = results_table(results, summary, "final", protocol)
    ours = summary[(summary.target == "cars") & (summary.method == "partial") & (summary.metric == "fid")]
    assert len(ours) == 1 and ours["mean"].iloc[0] != 10.84  # the published number is not in our frame

    md = (park_store.tables_dir("park2023") / "results.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    cars_fid = [c.strip() for c in header.split("|")].index("cars all · FID ↓")
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")] for line in lines}
    assert rows["*published:* partial"][cars_fid] == "10.84"
    assert rows["*published:* MineGAN with GLO (not run)"][cars_fid] == "33.65"
    assert "**" not in "".join(rows["*published:* partial"])  # never bold
    assert "Rows marked published hold the values Park et al. 2023 reports" in md

    tex = (park_store.tables_dir("park2023") / "results.tex").read_text()
    assert r"\textit{published: Park et al. 2023}" in tex
    assert re.search(r"\npartial & 10\.84 &  & best & ", tex)  # FID published, coverage ranked best
    assert re.search(r"\nscaleshift & 57\.30 &  & worst & ", tex)  # dogs: as printed in the paper (57.30)
    # Where the paper only ranks, the notes say whether ours agrees: a heading, then one note per target.
    notes = table.ranking_notes(MARKDOWN)
    assert len(notes) == 1 + 5 and notes[0].startswith("Rankings: Park et al. 2023's best and worst method")
    assert notes[1].startswith("cars all: FID best partial (ours: ") and "Coverage best partial (ours: " in notes[1]
    assert all(note in md for note in notes)


def test_ranking_agreement_is_judged_among_the_methods_both_ran(park_store):
    protocol = load_protocol(park_store, "park2023")
    results = SuiteResults.load(park_store, "park2023")
    summary = results.summary()
    cars = (summary.target == "cars") & (summary.metric == "coverage")
    shared = {label for label in protocol.methods.values() if label}
    # partial our best and fd our worst coverage among the methods Park et al. compare; scratch,
    # which they do not compare, above all of them.
    summary.loc[cars & summary.method.isin(shared), "mean"] = 0.5
    summary.loc[cars & (summary.method == "partial"), "mean"] = 0.9
    summary.loc[cars & (summary.method == "fd"), "mean"] = 0.05
    summary.loc[cars & (summary.method == "scratch"), "mean"] = 0.99
    table = results_table(results, summary, "final", protocol)
    cars_note = next(n for n in table.ranking_notes(MARKDOWN) if n.startswith("cars all:"))
    assert "Coverage best partial (ours: partial; agrees), worst minegan (ours: fd; differs)" in cars_note
    assert "Density best fine-tuning with GLO, not run here (ours: " in cars_note


def test_every_method_has_its_own_style_the_same_in_every_plot(toy_tables):
    labels = [m.label for m in load_suite("toy").methods] + ["hypermod-nocontrastive", "hypermod-noalign"]
    names = [m.name for m in load_suite("toy").methods] + ["hypermod", "hypermod"]
    styles = method_styles(pd.DataFrame({"method": labels, "method_name": names}))
    assert len({(s.color, s.linestyle, s.marker, s.filled) for s in styles.values()}) == len(labels) == 17
    assert len({(s.color, s.linestyle) for s in styles.values()}) == 17
    assert len({s.color for s in styles.values()}) == len(set(names)) == 14
    assert all(registered_style(name) for name in METHODS.names()), "every registered method has a fixed style"
    # Fixed: a method's style does not depend on which other methods a suite runs.
    alone = method_styles(pd.DataFrame({"method": ["freezed"], "method_name": ["freezed"]}))
    assert alone["freezed"] == styles["freezed"] == registered_style("freezed")
    assert styles["minegan-multi"].color == styles["minegan"].color != styles["adafm"].color
    assert styles["minegan-multi"].linestyle != styles["minegan"].linestyle
    plots = sorted((toy_tables / "plots").glob("curves_*.png"))
    assert len(plots) == 3  # digit7 10-shot, digit7 100-shot, digits789 10-shot


def test_card_metrics_are_the_users():
    assert CARD_METRICS == ("fid", "kmmd", "coverage", "density")
