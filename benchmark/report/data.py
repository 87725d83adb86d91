"""What a report reads from the results store, and which of it counts.

Rules, applied once here so that every table, CSV and plot agrees:

- **The newest attempt of a cell stands.** A cell re-run under a changed recipe gets a new
  ``config_hash``; the older row's numbers come from another recipe. Per ``(suite, cell_id)`` the
  row with the latest ``finished`` time (``started`` while it has none) decides. When that newest
  attempt failed or is still running, the cell counts as not finished: an older finished row of a
  different recipe is never used in its place.
- **Only finished cells give numbers.** Failed and running cells still count as attempted seeds,
  so a table can say "2 of 3 seeds".
- **select="final"** takes each metric at the cell's last evaluation step (the largest step the
  cell recorded anything at; a metric missing there is missing for that cell).
  **select="best"** takes each metric's best value over all of the cell's evaluation steps,
  step 0 (the starting point, when evaluated) included. Each metric picks its own step, so "best"
  is an optimistic, oracle-early-stopping figure; metrics with no known direction fall back to
  the final value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.metrics.registry import all_metrics, metric_id
from benchmark.metrics.registry import direction as registered_direction
from benchmark.store import ResultsStore

SELECTS = ("final", "best")
KNOWN_METRICS = tuple(m.name for m in all_metrics() if not m.diagnostic)  # in the registry's order
DIAGNOSTICS = tuple(m.name for m in all_metrics() if m.diagnostic)
GROUP_KEYS = ["target", "shots", "method"]
# metric_id: the metric with its sample count and feature extractor (``fid1k_digits-classifier``).
TIDY_COLUMNS = [
    "suite", "target", "shots", "method", "seed", "metric", "value", "metric_id", "step", "cell_id", "config_hash",
    "method_state",  # JSON of what the method reports of its run (bsa/glo: the perceptual network used), or empty
]  # fmt: skip
# "n": seeds with a value of the metric; "n_finished": finished seeds; "n_seeds": attempted seeds.
SUMMARY_COLUMNS = ["suite", *GROUP_KEYS, "metric", "mean", "std", "n", "n_finished", "n_seeds", "direction"]


def direction(metric: str) -> str | None:
    """'lower' or 'higher' is better, as the metrics registry says; None for an unranked or unknown
    metric (no arrow, no bold).

    ``memorization`` is unranked: a ratio well below 1 signals copying, but a ratio above 1 only
    says samples are far from the training images, which garbage samples are too.
    """
    return registered_direction(metric)


def metric_order(metrics) -> list[str]:
    """Metrics in METRIC_GROUPS order, unknown ones after them alphabetically."""
    known = [m for m in KNOWN_METRICS if m in set(metrics)]
    return known + sorted(set(metrics) - set(known))


def check_select(select: str) -> None:
    if select not in SELECTS:
        raise BenchmarkError(f"unknown select {select!r}; valid: {', '.join(SELECTS)}")


@dataclass(frozen=True)
class SuiteResults:
    """One suite's rows, read once: the standing attempt of every cell and the finished ones' metrics.

    Args:
        suite: the suite's name.
        cells: one row per cell_id (its newest attempt), ``method`` holding the table label.
        steps: metric rows of the finished cells, one per (cell, step, metric), with the cell's
            target, shots, method and seed.
    """

    suite: str
    cells: pd.DataFrame
    steps: pd.DataFrame
    diagnostics: pd.DataFrame | None = None  # rows of DIAGNOSTICS, kept out of ``steps`` (footnotes, not columns)

    @classmethod
    def load(cls, store: ResultsStore, suite: str) -> SuiteResults:
        cells = current_cells(store.cells(suite))
        if cells.empty:
            raise BenchmarkError(f"no cells of suite {suite!r} in {store.db_path}; run the suite first")
        steps = finished_steps(cells, store.metrics(suite))
        diagnostic = steps["metric"].isin(DIAGNOSTICS)
        return cls(suite, cells, steps[~diagnostic].reset_index(drop=True), steps[diagnostic].reset_index(drop=True))

    @property
    def finished(self) -> pd.DataFrame:
        return self.cells[self.cells["status"] == "finished"]

    def values(self, select: str = "final") -> pd.DataFrame:
        """One row per finished cell and metric (TIDY_COLUMNS): the numbers the tables aggregate."""
        check_select(select)
        chosen = final_rows(self.steps) if select == "final" else best_rows(self.steps)
        recorded = self.cells.set_index("cell_id")
        counts, extractors = (chosen["cell_id"].map(recorded[c]) for c in ("n_fake", "extractor"))
        ids = [
            metric_id(m, None if pd.isna(n) else int(n), None if pd.isna(x) else str(x))
            for m, n, x in zip(chosen["metric"], counts, extractors)
        ]
        states = chosen["cell_id"].map(recorded["method_state"]) if "method_state" in recorded else None
        chosen = chosen.assign(suite=self.suite, metric_id=ids, method_state=states)[TIDY_COLUMNS]
        order = {m: i for i, m in enumerate(metric_order(chosen["metric"].unique()))}
        by = ["target", "shots", "method", "seed", "metric"]
        return chosen.sort_values(by, key=_metric_key(order)).reset_index(drop=True)

    def summary(self, select: str = "final") -> pd.DataFrame:
        return summarize(self.suite, self.cells, self.values(select))

    def cost(self) -> pd.DataFrame:
        return cost_frame(self.finished)


def current_cells(rows: list[dict]) -> pd.DataFrame:
    """The store's cell rows reduced to each cell's newest attempt (see the module docstring)."""
    cells = pd.DataFrame(rows)
    if cells.empty:
        return cells
    cells["method_name"] = cells["method"]
    cells["method"] = cells["method_label"].fillna(cells["method"])
    cells["shots"] = cells["shots"].astype("Int64")
    cells["when"] = cells["finished"].fillna(cells["started"])
    cells = cells.sort_values(["cell_id", "when"], kind="stable")
    return cells.drop_duplicates("cell_id", keep="last").reset_index(drop=True)


def finished_steps(cells: pd.DataFrame, metric_rows: list[dict]) -> pd.DataFrame:
    """Metric rows of the finished cells' standing attempts, labelled with the cell's coordinates."""
    columns = ["cell_id", "config_hash", "step", "name", "value"]
    metrics = pd.DataFrame(metric_rows, columns=columns).rename(columns={"name": "metric"})
    finished = cells.loc[cells["status"] == "finished", ["cell_id", "config_hash", *GROUP_KEYS, "seed"]]
    steps = metrics.merge(finished, on=["cell_id", "config_hash"], how="inner")
    return steps.dropna(subset=["value"]).reset_index(drop=True)


def final_rows(steps: pd.DataFrame) -> pd.DataFrame:
    last = steps.groupby("cell_id")["step"].transform("max")
    return steps[steps["step"] == last]


def best_rows(steps: pd.DataFrame) -> pd.DataFrame:
    """Per cell and metric, the row of the best value in the metric's direction (final when unknown)."""
    directions = steps["metric"].map(direction)
    score = steps["value"].where(directions != "lower", -steps["value"])
    ranked = steps.assign(score=score.where(directions.notna(), steps["step"].astype(float)))
    best = ranked.sort_values("score", kind="stable").groupby(["cell_id", "metric"]).tail(1)
    return best.drop(columns="score")


def summarize(suite: str, cells: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and counts over seeds per (target, shots, method, metric).

    ``n`` counts the seeds with a value of the metric, ``n_finished`` the finished seeds of the
    (target, shots, method) and ``n_seeds`` the attempted ones (finished, failed or running).
    Every attempted (target, shots, method) gets a row for each metric that its (target, shots)
    reports, so a group whose seeds all failed appears with n=0 and a NaN mean. A (target, shots)
    with no finished cell at all keeps one row per method with no metric, so it is not dropped.
    """
    stats = values.groupby([*GROUP_KEYS, "metric"], dropna=False)["value"].agg(["mean", "std", "count"])
    stats = stats.rename(columns={"count": "n"}).reset_index()
    by_group = cells.assign(done=cells["status"] == "finished").groupby(GROUP_KEYS, dropna=False)
    attempted = by_group.agg(n_finished=("done", "sum"), n_seeds=("seed", "nunique")).reset_index()
    reported = values[["target", "shots", "metric"]].drop_duplicates()
    grid = attempted.merge(reported, on=["target", "shots"], how="left")
    out = grid.merge(stats, on=[*GROUP_KEYS, "metric"], how="left")
    out["n"] = out["n"].fillna(0).astype(int)
    out = out.assign(suite=suite, direction=out["metric"].map(direction))
    order = {m: i for i, m in enumerate(metric_order(out["metric"].unique()))}
    targets = target_positions(cells)
    out = out.sort_values(["target", "shots", "method", "metric"], key=_metric_key(order, targets), na_position="last")
    return out[SUMMARY_COLUMNS].reset_index(drop=True)


def target_positions(cells: pd.DataFrame) -> dict[str, int]:
    """Each target's position in the suite file, where the store recorded it."""
    if "target_position" not in cells:
        return {}
    return {t: int(p) for t, p in cells.groupby("target")["target_position"].min().dropna().items()}


def _metric_key(order: dict[str, int], targets: dict[str, int] | None = None):
    """Sort key: metrics in METRIC_GROUPS order, targets in suite order (then by name), the rest as they are."""

    def key(column: pd.Series) -> pd.Series:
        if column.name == "metric":
            return column.map(order)
        if column.name == "target" and targets:
            return column.map(lambda t: f"{targets.get(t, len(targets)):06d} {t}")
        return column

    return key


def cost_frame(finished: pd.DataFrame) -> pd.DataFrame:
    """Per method, averaged over its finished cells: trainable parameters, images/s and wall time."""
    columns = ["trainable_params", "images_per_second", "wall_seconds"]
    numeric = finished[["method", *columns]].astype({c: float for c in columns})
    cost = numeric.groupby("method")[columns].mean()
    cost["cells"] = numeric.groupby("method").size()
    return cost.reset_index()


def unique_sorted(series: pd.Series) -> list:
    """The distinct non-missing values, sorted, as plain Python values (what a caption lists).

    Whole floats become ints: one missing n_fake turns the column into floats, and a caption
    should still say 5,000 rather than 5,000.0.
    """
    values = [v.item() if isinstance(v, np.generic) else v for v in series.dropna().unique()]
    return sorted(int(v) if isinstance(v, float) and v.is_integer() else v for v in values)
