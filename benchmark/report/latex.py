"""LaTeX tables: booktabs rules, escaped text, and nothing a document needs beyond ``booktabs``."""

from __future__ import annotations

import math
import re

import pandas as pd

from benchmark.report.table import COST_HEADERS, Column, ResultsTable, Spelling, cost_caption, cost_rows

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


# Metric columns per stacked tabular block: four "0.0386 $\pm$ 0.0109" columns fit an article's text
# width at \footnotesize; six run 80pt past it.
MAX_COLUMNS = 4

LATEX = Spelling(
    escape=tex_escape,
    bold=lambda text: rf"\textbf{{{text}}}",
    pm=r" $\pm$ ",
    arrows={"lower": r"$\downarrow$", "higher": r"$\uparrow$"},
    dagger=r"$^\dagger$",
    missing="--",
)


def results_latex(table: ResultsTable) -> str:
    """A ``table`` float: caption on top, tabular blocks stacked under it, notes below.

    Each block has a multicolumn header per target x shots over its metric headers. The columns
    are cut into blocks of at most MAX_COLUMNS so that a suite with many targets and metrics stays
    about as wide as a page instead of running off it; the Markdown table keeps them in one row.
    """
    lines = _opening(table.caption(LATEX), f"{table.suite}-results")
    for i, block in enumerate(column_blocks(table.groups())):
        lines += [r"\par\medskip"] if i else []
        lines += [rf"\begin{{tabular}}{{l{'c' * len(block)}}}", r"\toprule"]
        lines += _group_header(table, block)
        lines.append(_row(["Method", *(c.header(LATEX) for c in block)]))
        lines.append(r"\midrule")
        lines += [_row(table.row(method, LATEX, block)) for method in table.methods]
        lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines + _closing(table.footnotes(LATEX))) + "\n"


def column_blocks(groups: list[list[Column]], limit: int = MAX_COLUMNS) -> list[list[Column]]:
    """Target x shots groups of columns in blocks of at most ``limit``: small groups share a block, a
    large one is cut into equal parts (9 metrics -> 3 + 3 + 3, not 4 + 4 + 1)."""
    blocks: list[list[Column]] = [[]]
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
        rf"\label{{tab:{re.sub(r'[^A-Za-z0-9-]+', '-', label)}}}",
    ]


def _group_header(table: ResultsTable, block: list[Column]) -> list[str]:
    """The target x shots row over a block's metric headers, each underlined by a cmidrule."""
    cells, rules, first = [""], [], 2
    for run in table.groups(block):
        cells.append(rf"\multicolumn{{{len(run)}}}{{c}}{{{tex_escape(run[0].group)}}}")
        rules.append(rf"\cmidrule(lr){{{first}-{first + len(run) - 1}}}")
        first += len(run)
    return [_row(cells), " ".join(rules)]


def _closing(notes: list[str]) -> list[str]:
    lines = []
    if notes:
        lines += [r"\par\smallskip", r"\parbox{\linewidth}{" + r" \\ ".join(notes) + "}"]
    return lines + [r"\end{table}"]


def _row(cells: list[str]) -> str:
    return " & ".join(cells) + r" \\"
