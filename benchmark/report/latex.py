"""LaTeX tables: booktabs rules, escaped text, and nothing a document needs beyond ``booktabs``."""

from __future__ import annotations

import math
import re

import pandas as pd

from benchmark.report.data import metric_order
from benchmark.report.table import (
    CARD_METRICS,
    COST_HEADERS,
    Column,
    ResultsTable,
    Spelling,
    cost_caption,
    cost_rows,
)

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",  # the default OT1 font encoding prints < and > as inverted punctuation
    ">": r"\textgreater{}",
}


def tex_escape(text: str) -> str:
    """Plain text -> LaTeX text mode (method labels and target names are user-chosen)."""
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


# Metric columns per table: four "0.0386 $\pm$ 0.0109" columns and a method column fit an article's
# text width at \footnotesize; six run 80pt past it.
MAX_COLUMNS = 4
# A float's height, estimated in points so that none is taller than an article's 550pt of text:
# \footnotesize lines are 9.5pt, booktabs rules with their padding about 5pt, the caption skip
# 10pt; about 85 characters of caption or note text fill a 345pt line (counted low: 80).
PAGE_HEIGHT = 540.0
LINE = 9.5
RULE = 5.0
CHARS_PER_LINE = 80

LATEX = Spelling(
    escape=tex_escape,
    bold=lambda text: rf"\textbf{{{text}}}",
    pm=r" $\pm$ ",
    arrows={"lower": r"$\downarrow$", "higher": r"$\uparrow$"},
    dagger=r"$^\dagger$",
    missing="--",
)


def results_latex(table: ResultsTable) -> str:
    """The main table (the card's metrics: FID, KMMD, coverage, density) and further tables of the other metrics.

    Each table has a row per method and a column per metric, its rows grouped under a heading
    per target x shots, so its width does not grow with the number of targets. Where a protocol
    publishes values, a "published" block follows our rows in each group. Groups that do not fit
    one page continue in further floats, each no taller than a page.
    """
    metrics = metric_order({c.metric for c in table.columns if c.metric is not None})
    card = [m for m in CARD_METRICS if m in metrics]  # in the card's order
    others = [m for m in metrics if m not in CARD_METRICS]
    parts = [(card or ([] if others else [None]), "results", "")]
    for i, chunk in enumerate(column_blocks([others]) if others else []):
        parts.append((chunk, f"results-{i + 2}", "Further metrics. "))
    return "\n".join(_metric_table(table, chosen, label, lead) for chosen, label, lead in parts if chosen)


def _metric_table(table: ResultsTable, metrics: list, label: str, lead: str) -> str:
    """One table of ``metrics`` (None: the "result" column of groups where nothing finished), in page-sized floats."""
    groups = [run for run in table.groups() if any(c.metric in metrics or c.metric is None for c in run)]
    columns = [c for run in groups for c in run if c.metric in metrics or c.metric is None]
    caption = lead + table.caption(LATEX, columns)
    notes = table.footnotes(LATEX, columns)
    segments = [seg for run in groups for seg in _segments(table, run, metrics)]
    fixed = 10 + LINE + 3 * RULE  # caption skip, header row, top and bottom rules
    notes_height = 3 + LINE * sum(_lines(n) for n in notes)
    floats, current, used = [], [], fixed + LINE * _lines(caption)
    for seg in segments:
        if current and used + RULE + LINE * len(seg) > PAGE_HEIGHT:
            floats.append(current)
            current, used = [], fixed + LINE * _lines("continued")
        current.append(seg)
        used += RULE + LINE * len(seg)
    if len(current) > 1 and used + notes_height > PAGE_HEIGHT:  # the notes go under the last float
        floats.append(current[:-1])
        current = current[-1:]
    floats.append(current)

    first = f"{table.suite}-{label}"
    out = []
    for i, chosen in enumerate(floats):
        last = i == len(floats) - 1
        text = caption if i == 0 else rf"{tex_escape(table.suite)}: continued from Table~\ref{{tab:{_slug(first)}}}."
        lines = _opening(text, first if i == 0 else f"{first}-{i + 1}")
        lines += [rf"\begin{{tabular}}{{l{'c' * len(metrics)}}}", r"\toprule"]
        headers = [Column("", None, m).header(LATEX) if m else "result" for m in metrics]
        lines.append(_row(["Method", *headers]))
        for seg in chosen:
            lines += [r"\midrule", *seg]
        lines += [r"\bottomrule", r"\end{tabular}"]
        out.append("\n".join(lines + _closing(notes if last else [])) + "\n")
    return "\n".join(out)


def _segments(table: ResultsTable, run: list[Column], metrics: list) -> list[list[str]]:
    """One target x shots group as lists of tabular rows (a heading, our rows, the published block),
    cut into pieces that fit a page, each under its own heading."""
    by_metric = {c.metric: c for c in run}
    fallback = by_metric.get(None)
    cells = [by_metric.get(m, fallback) for m in metrics]
    width = len(metrics) + 1
    heading = rf"\multicolumn{{{width}}}{{l}}{{\textit{{{tex_escape(run[0].group)}}}}} \\"
    ours = [
        _row([tex_escape(m), *(table.entries[m, c].spell(LATEX) if c else "" for c in cells)]) for m in table.methods
    ]
    placeholders = [c or Column(run[0].target, run[0].shots, m) for c, m in zip(cells, metrics)]
    published = [_row(table.published_row(m, LATEX, placeholders)) for m in table.published_methods(placeholders)]
    if published:
        name = tex_escape(f"published: {table.protocol.name}")
        published = [r"\addlinespace", rf"\multicolumn{{{width}}}{{l}}{{\textit{{{name}}}}} \\", *published]
    rows = ours + published
    room = int(PAGE_HEIGHT / LINE) - 14  # rows of one piece: with a caption and notes it still fits a page
    pieces = [rows[i : i + room] for i in range(0, len(rows), room)]
    more = rf"\multicolumn{{{width}}}{{l}}{{\textit{{{tex_escape(run[0].group)} (continued)}}}} \\"
    return [[heading if i == 0 else more, *piece] for i, piece in enumerate(pieces)]


def _lines(text: str) -> int:
    """Lines that a caption or note takes at \footnotesize, estimated from its text without markup."""
    plain = re.sub(r"\\[a-zA-Z]+|[{}$^]", "", text)
    return math.ceil(len(plain) / CHARS_PER_LINE)


def column_blocks(groups: list[list], limit: int = MAX_COLUMNS) -> list[list]:
    """Runs of items in blocks of at most ``limit``: small runs share a block, a large one is cut into
    equal parts (9 metrics -> 3 + 3 + 3, not 4 + 4 + 1)."""
    blocks: list[list] = [[]]
    for run in groups:
        parts = math.ceil(len(run) / limit)
        size = math.ceil(len(run) / parts)
        for piece in (run[i : i + size] for i in range(0, len(run), size)):
            if blocks[-1] and len(blocks[-1]) + len(piece) > limit:
                blocks.append([])
            blocks[-1].extend(piece)
    return blocks


def cost_latex(suite: str, cost: pd.DataFrame) -> str:
    lines = _opening(tex_escape(cost_caption(suite)), f"{suite}-cost")
    lines += [r"\begin{tabular}{lrrrr}", r"\toprule", _row(list(COST_HEADERS)), r"\midrule"]
    lines += [_row([tex_escape(cell) for cell in row]) for row in cost_rows(cost)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines + _closing([])) + "\n"


def standalone_latex(table_tex: str) -> str:
    """A complete minimal document around table fragments, for checking that they compile."""
    return "\n".join(
        [r"\documentclass{article}", r"\usepackage{booktabs}", r"\begin{document}", table_tex, r"\end{document}", ""]
    )


def _opening(caption: str, label: str) -> list[str]:
    return [
        r"\begin{table}[t]",
        r"\centering",
        r"\footnotesize",
        r"\setlength{\tabcolsep}{3pt}",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:{_slug(label)}}}",
    ]


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", label)


def _closing(notes: list[str]) -> list[str]:
    lines = []
    if notes:
        lines += [r"\par\smallskip", r"\parbox{\linewidth}{" + r" \\ ".join(notes) + "}"]
    return lines + [r"\end{table}"]


def _row(cells: list[str]) -> str:
    return " & ".join(cells) + r" \\"
