"""GitHub Markdown tables: the caption as a paragraph above, notes as paragraphs below."""

from __future__ import annotations

import pandas as pd

from benchmark.report.table import COST_HEADERS, ResultsTable, Spelling, cost_caption, cost_rows


def md_escape(text: str) -> str:
    """Keep user-chosen labels from closing a cell (|) or starting emphasis (*, _, `)."""
    out = str(text).replace("\\", "\\\\")
    for ch in "|*_`":
        out = out.replace(ch, "\\" + ch)
    return out


MARKDOWN = Spelling(
    escape=md_escape,
    bold=lambda text: f"**{text}**",
    pm=" ± ",
    arrows={"lower": "↓", "higher": "↑"},
    dagger="†",
    missing="–",
)


def results_markdown(table: ResultsTable) -> str:
    """A pipe table whose headers read 'target shots · metric arrow' (Markdown has no multicolumn).

    A protocol's published values follow our rows, one row per method of the paper, labelled
    "*published:*", in the columns of the same target and metric.
    """
    headers = ["Method", *(f"{md_escape(c.group)} · {c.header(MARKDOWN)}" for c in table.columns)]
    rows = [table.row(method, MARKDOWN) for method in table.methods]
    for paper_method in table.published_methods():  # the protocol's values, below ours and marked
        label, *cells = table.published_row(paper_method, MARKDOWN)
        rows.append([f"*published:* {label}", *cells])
    return _document(f"**Results.** {table.caption(MARKDOWN)}", headers, rows, table.footnotes(MARKDOWN))


def cost_markdown(suite: str, cost: pd.DataFrame) -> str:
    rows = [[md_escape(cell) for cell in row] for row in cost_rows(cost)]
    return _document(f"**Cost.** {md_escape(cost_caption(suite))}", list(COST_HEADERS), rows, [])


def _document(caption: str, headers: list[str], rows: list[list[str]], notes: list[str]) -> str:
    lines = [caption, "", _row(headers), _row([":---", *["---:"] * (len(headers) - 1)])]
    lines += [_row(row) for row in rows]
    for note in notes:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
