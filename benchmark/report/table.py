"""The results and cost tables as format-free cells; latex.py and markdown.py only spell them.

Deciding what a table says (columns, bold, daggers, caption) happens once here, so the LaTeX and
Markdown versions of a table cannot disagree. A :class:`Spelling` carries the few things that
differ between formats: escaping, bold, the plus-minus sign, arrows and the dagger.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from benchmark.metrics.registry import METRICS, PRDC_ZERO_RADII, all_metrics, metric
from benchmark.protocol import ProtocolConfig
from benchmark.report.data import SuiteResults, direction, unique_sorted

METRIC_NAMES = {m.name: m.display for m in all_metrics()}  # the metrics registry's display names
# The metrics the main table carries, per target (the user's card: FID, KMMD, coverage, density);
# the others go to further tables.
CARD_METRICS = ("fid", "kmmd", "coverage", "density")
PRDC_METRICS = {m.name for m in METRICS.get("prdc").metrics}  # the columns a zero-radii footnote explains
SELECT_PHRASES = {
    "final": "each metric at the cell's last evaluation step",
    "best": "each metric's best value over the cell's evaluation steps, chosen per metric (optimistic)",
}
COST_HEADERS = ("Method", "Trainable params", "Images/s", "Wall time / cell", "Cells")


@dataclass(frozen=True)
class Spelling:
    """How one output format writes the pieces a table is made of."""

    escape: Callable[[str], str]
    bold: Callable[[str], str]
    pm: str
    arrows: dict[str, str]
    dagger: str
    missing: str


@dataclass(frozen=True)
class Column:
    """One table column: a metric of one (target, shots); metric None when nothing finished there."""

    target: str
    shots: int | None
    metric: str | None

    @property
    def group(self) -> str:
        return group_label(self.target, self.shots)

    def header(self, s: Spelling) -> str:
        if self.metric is None:
            return "result"
        name = s.escape(METRIC_NAMES.get(self.metric, self.metric))
        arrow = s.arrows.get(direction(self.metric) or "", "")
        return f"{name} {arrow}".strip()


@dataclass(frozen=True)
class Entry:
    """Mean and std over the finished seeds of one (method, column), and how to show them."""

    mean: float
    std: float
    n: int
    n_finished: int
    n_seeds: int
    decimals: int = 2
    bold: bool = False

    @property
    def partial(self) -> bool:
        return 0 < self.n < self.n_seeds

    def shown_mean(self) -> str:
        return f"{self.mean:.{self.decimals}f}"

    def spell(self, s: Spelling) -> str:
        if self.n_finished == 0 and self.n_seeds:
            return "failed"
        if self.n == 0:
            return s.missing
        text = self.shown_mean()
        if self.n > 1 and math.isfinite(self.std):
            text += f"{s.pm}{self.std:.{self.decimals}f}"
        text = s.bold(text) if self.bold else text
        return text + (s.dagger if self.partial else "")


NOT_RUN = Entry(math.nan, math.nan, 0, 0, 0)


@dataclass(frozen=True)
class ResultsTable:
    """One row per method, one column per target x shots x metric.

    Args:
        suite: the suite's name.
        select: "final" or "best" (see benchmark.report.data).
        columns: in target, shots, METRIC_GROUPS order.
        methods: row labels, alphabetical (the store does not record the suite's method order).
        entries: every (method, column) pair.
        facts: what the caption states (extractors, sample counts, seeds).
        protocol: the suite's protocol as the run recorded it, whose published values and
            rankings are shown beside ours (never in a mean, never bold); None when unknown.
    """

    suite: str
    select: str
    columns: list[Column]
    methods: list[str]
    entries: dict[tuple[str, Column], Entry]
    facts: Facts
    protocol: ProtocolConfig | None = None

    def groups(self, columns: list[Column] | None = None) -> list[list[Column]]:
        """The columns (all, or the given ones) cut into runs of one target x shots each."""
        return [list(run) for _, run in itertools.groupby(self.columns if columns is None else columns, _group)]

    def row(self, method: str, s: Spelling, columns: list[Column] | None = None) -> list[str]:
        columns = self.columns if columns is None else columns
        return [s.escape(method), *(self.entries[method, c].spell(s) for c in columns)]

    def caption(self, s: Spelling, columns: list[Column] | None = None) -> str:
        columns = self.columns if columns is None else columns
        metrics = [c.metric for c in columns if c.metric is not None]
        return " ".join(
            [
                s.escape(f"{self.suite}: mean") + s.pm + s.escape(f"std over {self.facts.seeds_phrase()};"),
                s.escape(f"{SELECT_PHRASES[self.select]}. Best per column in bold."),
                s.escape(self.facts.samples_phrase()),
                directions_phrase(metrics, s),
                s.escape(conventions_phrase(metrics)),
                self.published_phrase(s, columns),
            ]
        ).strip()

    # -- a protocol's published values and rankings, beside ours ------------------------------
    def published_methods(self, columns: list[Column] | None = None) -> list[str]:
        """The paper's methods with a published value or rank in any of ``columns``, in the protocol's order."""
        if self.protocol is None:
            return []
        columns = self.columns if columns is None else columns
        return [m for m in self.protocol.methods if any(self.published_text(m, c) for c in columns)]

    def published_text(self, paper_method: str, column: Column) -> str:
        """The paper's value as it prints it, or its rank ("best", "worst") for a column; "" if neither."""
        if self.protocol is None or column.metric is None:
            return ""
        value = self.protocol.published.get(column.target, {}).get(column.metric, {}).get(paper_method)
        if value is not None:
            return value
        ranks = self.protocol.rankings.get(column.target, {}).get(column.metric, {})
        return ", ".join(rank for rank, names in ranks.items() if paper_method in names)

    def published_row(self, paper_method: str, s: Spelling, columns: list[Column] | None = None) -> list[str]:
        columns = self.columns if columns is None else columns
        texts = [self.published_text(paper_method, c) for c in columns]
        return [s.escape(self.protocol.shown_name(paper_method)), *(s.escape(t) for t in texts)]

    def published_phrase(self, s: Spelling, columns: list[Column] | None = None) -> str:
        if not self.published_methods(columns):
            return ""
        return s.escape(
            f"Rows marked published hold the values {self.protocol.name} reports (its own runs: in no mean, "
            "never bold); best / worst where the paper gives only a ranking."
        )

    def ranking_notes(self, s: Spelling, columns: list[Column] | None = None) -> list[str]:
        """The paper's best / worst methods beside ours, among the methods both ran: one note per group."""
        if self.protocol is None:
            return []
        notes = []
        for run in self.groups(columns):
            ranked = [(c, self.protocol.rankings.get(c.target, {}).get(c.metric or "", {})) for c in run]
            parts = [self._ranking_sentence(c, ranks) for c, ranks in ranked if ranks]
            if parts:
                notes.append(s.escape(f"{run[0].group}: " + "; ".join(parts) + "."))
        if not notes:
            return []
        shared = [label for label in self.protocol.methods.values() if label in self.methods]
        head = s.escape(
            f"Rankings: {self.protocol.name}'s best and worst method beside ours, among the methods both ran "
            f"({', '.join(shared) or 'none'})."
        )
        return [head, *notes]

    def _ranking_sentence(self, column: Column, ranks: dict) -> str:
        label = self.protocol.label
        ours = {
            m: float(e.shown_mean())
            for m in self.protocol.methods.values()
            if m in self.methods and (e := self.entries[m, column]).n
        }
        way = direction(column.metric)
        parts = []
        for rank, names in ranks.items():
            paper = ", ".join(label(n) or n for n in names)
            if len(ours) < 2 or way is None:
                parts.append(f"{rank} {paper} (too few shared methods to compare)")
                continue
            pick = min if (rank == "best") == (way == "lower") else max
            extreme = pick(ours.values())
            mine = sorted(m for m, v in ours.items() if v == extreme)  # ties at the printed precision
            run = {label(n) for n in names} & set(ours)
            if not run:
                parts.append(f"{rank} {paper}, not run here (ours: {', '.join(mine)})")
            else:
                parts.append(f"{rank} {paper} (ours: {', '.join(mine)}; {'agrees' if run & set(mine) else 'differs'})")
        return f"{METRIC_NAMES.get(column.metric, column.metric)} " + ", ".join(parts)

    def footnotes(self, s: Spelling, columns: list[Column] | None = None) -> list[str]:
        """What the table's marks mean (for ``columns``, default all), then the published rankings beside ours."""
        columns = self.columns if columns is None else columns
        entries = [self.entries[m, c] for m in self.methods for c in columns]
        notes = []
        partial = self._partial_notes(columns)
        if partial:
            notes.append(s.dagger + s.escape(" Mean over the seeds that finished: " + "; ".join(partial) + "."))
        if any(e.n_seeds and not e.n_finished for e in entries):
            notes.append(s.escape("failed: no seed finished (all failed or still running)."))
        if any(e.n_finished or not e.n_seeds for e in entries if not e.n):
            notes.append(s.escape(f"{s.missing}: not run, or not recorded by the finished runs."))
        if self.facts.prdc_zero_radii and any(c.metric in PRDC_METRICS for c in columns):
            notes.append(s.escape(self.facts.zero_radii_phrase()))
        return notes + self.ranking_notes(s, columns)

    def _partial_notes(self, columns: list[Column]) -> list[str]:
        """'method, group: n of m seeds' once per (method, group, n), naming metrics when they differ."""
        notes = []
        for method in self.methods:
            for run in self.groups(columns):
                group, marked = run[0].group, [(c, self.entries[method, c]) for c in run]
                counts = sorted({(e.n, e.n_seeds) for _, e in marked if e.partial})
                for n, m in counts:
                    which = [c.metric for c, e in marked if (e.n, e.n_seeds) == (n, m)]
                    scope = "" if len(which) == len(marked) else " (" + ", ".join(which) + ")"
                    notes.append(f"{method}, {group}: {n} of {m} seeds{scope}")
        return notes


@dataclass(frozen=True)
class Facts:
    """What the caption says about provenance: feature extractor(s), sample counts and seeds."""

    extractors: list[str]
    n_fake: list[int]
    n_real: dict[str, list[int]]
    seeds: list[int]
    prdc_zero_radii: dict[str, int] = dataclasses.field(default_factory=dict)  # cell -> most zero radii at a step

    @classmethod
    def of(cls, results: SuiteResults) -> Facts:
        scored = results.finished if not results.finished.empty else results.cells
        n_real = {t: unique_sorted(g["n_real"]) for t, g in scored.groupby("target", sort=True)}
        seeds = unique_sorted(results.cells["seed"])  # attempted, so "3 seeds" stays true when one failed
        zero_radii = {}
        if results.diagnostics is not None and not results.diagnostics.empty:
            rows = results.diagnostics[results.diagnostics["metric"] == PRDC_ZERO_RADII]
            zero_radii = {c: int(v) for c, v in rows.groupby("cell_id")["value"].max().items() if v > 0}
        return cls(unique_sorted(scored["extractor"]), unique_sorted(scored["n_fake"]), n_real, seeds, zero_radii)

    def zero_radii_phrase(self) -> str:
        """The footnote for PRDC values that rest on k-NN radii of 0 (duplicated features)."""
        cells = sorted(self.prdc_zero_radii)
        shown = ", ".join(f"{c} ({self.prdc_zero_radii[c]})" for c in cells[:3])
        more = f" and {len(cells) - 3} more" if len(cells) > 3 else ""
        return (
            f"PRDC: k-NN radii of 0 (duplicated features) in {len(cells)} cell(s), with the most at one evaluation: "
            f"{shown}{more}; a ball of radius 0 holds nothing, so their "
            "precision, recall, density and coverage are lower than the sets' overlap suggests (as in prdc itself)."
        )

    def seeds_phrase(self) -> str:
        listed = ", ".join(str(s) for s in self.seeds)
        return f"{len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''} ({listed}), sample std"

    def samples_phrase(self) -> str:
        extractor = " / ".join(self.extractors) or "unrecorded"
        fake = " / ".join(f"{n:,}" for n in self.n_fake) or "unrecorded"
        real = ", ".join(f"{t} {' / '.join(f'{n:,}' for n in ns) or 'unrecorded'}" for t, ns in self.n_real.items())
        return f"Features: {extractor}; {fake} generated images per evaluation; real images per target: {real}."


def conventions_phrase(metrics: list[str]) -> str:
    """How the table's metrics that have a convention were computed (which FID, which LPIPS), one sentence
    each, from the registry: FIDs of different conventions are different metrics, so never one column."""
    wanted = set(metrics)
    sentences = [
        g.describe_convention
        for g in METRICS.values()
        if g.describe_convention and any(m.name in wanted for m in g.metrics)
    ]
    return " ".join(sentences)


def directions_phrase(metrics: list[str], s: Spelling) -> str:
    """Which of the table's metrics are lower- or higher-better (or unranked), and what memorization means."""
    parts = []
    for way, text in (("lower", "lower is better"), ("higher", "higher is better")):
        names = [METRIC_NAMES.get(m, m) for m in metrics if direction(m) == way]
        if names:
            parts.append(f"{s.arrows[way]} {s.escape(text)} ({s.escape(', '.join(dict.fromkeys(names)))})")
    sentence = "; ".join(parts) + "." if parts else ""
    unknown = [m for m in dict.fromkeys(metrics) if metric(m) is None]
    if unknown:
        sentence += s.escape(f" No known direction, so not ranked: {', '.join(unknown)}.")
    if "memorization" in metrics:
        sentence += s.escape(
            " Memorization (not ranked): the nearest-training-image distance of generated images over that of"
            " held-out real images; well below 1, samples sit closer to the training shots than unseen real"
            " images do (copying); above 1 only says samples are far from the training images."
        )
    if "memorization_distance" in metrics:
        sentence += s.escape(
            " Train NN distance (not ranked): the mean distance from a generated image to its nearest training"
            " image in the extractor's feature space, where no real image outside training exists to scale it"
            " (a whole-data-set target); not comparable with the Memorization ratio."
        )
    return sentence


def _group(column: Column) -> str:
    return column.group


def group_label(target: str, shots: int | None) -> str:
    return f"{target} {'all' if shots is None or pd.isna(shots) else f'{int(shots)}-shot'}"


def decimals_for(means: list[float]) -> int:
    """Digits after the point so a column's typical value shows three significant figures (45.2, 0.0123)."""
    finite = [abs(m) for m in means if math.isfinite(m) and m != 0]
    if not finite:
        return 2
    typical = sorted(finite)[len(finite) // 2]
    return min(max(2 - math.floor(math.log10(typical)), 0), 6)


def results_table(
    results: SuiteResults, summary: pd.DataFrame, select: str, protocol: ProtocolConfig | None = None
) -> ResultsTable:
    """Lay a summary_frame out as a table: columns, entries, decimals and the bold best per column."""
    columns = [
        Column(r.target, None if pd.isna(r.shots) else int(r.shots), None if pd.isna(r.metric) else r.metric)
        for r in summary[["target", "shots", "metric"]].drop_duplicates().itertuples()
    ]
    methods = method_order(results.cells, summary["method"].unique())
    entries = {}
    for column in columns:
        entries.update(_column_entries(summary, column, methods))
    return ResultsTable(results.suite, select, columns, methods, entries, Facts.of(results), protocol)


def method_order(cells: pd.DataFrame, methods) -> list[str]:
    """Methods in the suite file's order where the store recorded it, alphabetically otherwise."""
    if "method_position" not in cells:
        return sorted(methods)
    position = cells.groupby("method")["method_position"].min().to_dict()
    return sorted(methods, key=lambda m: (pd.isna(position.get(m)), position.get(m, 0) or 0, m))


def _column_entries(summary: pd.DataFrame, column: Column, methods: list[str]) -> dict:
    """One column's entries, with the best (as printed, in the metric's direction) in bold."""
    rows = summary[_matches(summary, column)].set_index("method")
    counts = ("n", "n_finished", "n_seeds")
    found = {m: Entry(r["mean"], r["std"], *(int(r[c]) for c in counts)) for m, r in rows.iterrows()}
    places = decimals_for([e.mean for e in found.values() if e.n])
    shown = {m: dataclasses.replace(e, decimals=places) for m, e in found.items()}
    best = _best_shown([e for e in shown.values() if e.n], direction(column.metric or ""))
    return {
        (m, column): dataclasses.replace(e, bold=e.n > 0 and e.shown_mean() == best)
        for m, e in ((m, shown.get(m, NOT_RUN)) for m in methods)
    }


def _matches(summary: pd.DataFrame, column: Column) -> pd.Series:
    same_shots = summary["shots"].isna() if column.shots is None else summary["shots"] == column.shots
    same_metric = summary["metric"].isna() if column.metric is None else summary["metric"] == column.metric
    return (summary["target"] == column.target) & same_shots.fillna(False) & same_metric.fillna(False)


def _best_shown(entries: list[Entry], way: str | None) -> str | None:
    """The best mean as printed; ties at the printed precision are all bold."""
    if way is None or not entries:
        return None
    pick = min if way == "lower" else max
    return pick(entries, key=lambda e: float(e.shown_mean())).shown_mean()


def cost_rows(cost: pd.DataFrame) -> list[list[str]]:
    """The cost table's cells (format-free text), one row per method."""
    return [
        [
            r.method,
            human_count(r.trainable_params),
            human_rate(r.images_per_second),
            human_duration(r.wall_seconds),
            str(int(r.cells)),
        ]
        for r in cost.itertuples()
    ]


def cost_caption(suite: str) -> str:
    return (
        f"{suite}: cost per method, averaged over its finished cells: trainable parameters, training "
        "images per second and wall time per cell."
    )


def human_count(n: float) -> str:
    """1234567 -> '1.2M': parameter counts as people say them."""
    if not math.isfinite(n):
        return "n/a"
    for suffix, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.1f}{suffix}" if value < 99.95 else f"{value:.0f}{suffix}"
    return f"{n:.0f}"


def human_rate(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:,.0f}" if x >= 99.95 else f"{x:.1f}"


def human_duration(seconds: float) -> str:
    """3725 -> '1h 02m': wall time at the precision that matters for its size."""
    if not math.isfinite(seconds):
        return "n/a"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"
