"""``write_report``: every table and plot of a suite, rebuilt from the results store alone.

Files under ``store.tables_dir(suite)`` (``_best`` is added after ``results`` for select="best"):

    results.csv           tidy: one row per finished cell and metric (suite, target, shots, method,
                          seed, metric, value, then the step, cell_id and config_hash it came from)
    results_summary.csv   wide: one row per target x shots x method: n_finished and n_seeds (attempted)
                          seeds, and per metric <metric>_mean, <metric>_std (sample std) and
                          <metric>_n (seeds with a value)
    results_cost.csv      per method: mean trainable_params, images_per_second, wall_seconds, cells
    results.tex           the main table (FID, KMMD, coverage, density per target), tables of the
                          other metrics, and the cost table: booktabs floats, each fitting a page
                          (``standalone_latex`` is a document around them)
    results.md            the results (every metric in one wide table) and cost tables as GitHub Markdown
    plots/curves_<target>_<shots>.png   metric vs step per target x shots
    plots/shots_<target>.png            metric vs shots per method, for targets with several shot counts

A run records its suite's protocol in the store (``runs/<suite>/protocol.yaml``); its published
values and rankings appear beside ours in the results tables, marked as published.

Cost is a separate small table rather than trailing columns: it is one number per method, not per
target x shots x metric, and trailing columns would sit outside every group header.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.io import atomic_write_text
from benchmark.protocol import ProtocolConfig, load_protocol
from benchmark.report.data import SuiteResults, check_select, metric_order
from benchmark.report.latex import cost_latex, results_latex
from benchmark.report.markdown import cost_markdown, results_markdown
from benchmark.report.plots import method_styles, plot_curves, plot_shots
from benchmark.report.table import results_table
from benchmark.store import ResultsStore


def write_report(store: ResultsStore, suite: str | None = None, select: str = "final") -> list[Path]:
    """Write tables and plots for one suite (or every suite in the store); returns the files written.

    Args:
        store: the results store, the report's only input.
        suite: a suite name; None writes every suite the store has cells of.
        select: "final" (metrics at each cell's last evaluation step) or "best" (each metric's best
            value over the cell's evaluation steps; see benchmark.report.data).
    """
    check_select(select)
    names = [suite] if suite else store.suites()
    if not names:
        raise BenchmarkError(f"no results in {store.db_path}; run a suite first")
    written: list[Path] = []
    for name in names:
        protocol = load_protocol(store, name)
        written += write_suite(SuiteResults.load(store, name), store.tables_dir(name), select, protocol)
    return written


def summary_frame(store: ResultsStore, suite: str, select: str = "final") -> pd.DataFrame:
    """Per target x shots x method x metric: mean, std (ddof=1), n (seeds with a value), n_finished, n_seeds.

    See ``benchmark.report.data.summarize`` for what each count means.
    """
    return SuiteResults.load(store, suite).summary(select)


def write_suite(results: SuiteResults, out: Path, select: str, protocol: ProtocolConfig | None = None) -> list[Path]:
    summary = results.summary(select)
    table = results_table(results, summary, select, protocol)
    cost = results.cost()
    stem = "results" if select == "final" else f"results_{select}"
    texts = {
        f"{stem}.csv": results.values(select).to_csv(index=False),
        f"{stem}_summary.csv": wide_summary(summary).to_csv(index=False),
        "results_cost.csv": cost.to_csv(index=False),
        f"{stem}.tex": results_latex(table) + "\n" + cost_latex(results.suite, cost),
        f"{stem}.md": results_markdown(table) + "\n" + cost_markdown(results.suite, cost),
    }
    written = [atomic_write_text(text, out / name) for name, text in texts.items()]
    styles = method_styles(results.cells)
    written += plot_curves(results.suite, results.steps, styles, out / "plots")
    written += plot_shots(results.suite, summary, select, styles, out / "plots")
    return written


def wide_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """summary_frame with one row per target x shots x method and mean/std/n columns per metric.

    Built by merges rather than a pivot because pivots drop rows whose shots is missing (all images).
    """
    keys = ["suite", "target", "shots", "method"]
    wide = summary[[*keys, "n_finished", "n_seeds"]].drop_duplicates().reset_index(drop=True)
    for metric in metric_order(summary["metric"].dropna().unique()):
        stats = summary.loc[summary["metric"] == metric, [*keys, "mean", "std", "n"]]
        stats = stats.rename(columns={c: f"{metric}_{c}" for c in ("mean", "std", "n")})
        wide = wide.merge(stats, on=keys, how="left").astype({f"{metric}_n": "Int64"})
    return wide
