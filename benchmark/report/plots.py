"""PNG plots: metric vs step per target x shots, and metric vs shots per method.

Figures are built with ``matplotlib.figure.Figure`` directly, which renders through Agg without
pyplot's global state or backend switching, so a report can run in any process (a notebook
included) and never opens a window.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.method import METHODS
from benchmark.report.data import direction, metric_order
from benchmark.report.table import METRIC_NAMES, group_label

ARROWS = {"lower": " ↓", "higher": " ↑"}


def plot_curves(suite: str, steps: pd.DataFrame, styles: dict[str, Style], out_dir: Path) -> list[Path]:
    """One figure per target x shots: a subplot per metric, a line per method (mean over seeds, ±std band)."""
    written = []
    for (target, shots), group in steps.groupby(["target", "shots"], dropna=False, sort=True):
        title = f"{suite}: {group_label(target, shots)} (mean ± std over seeds)"
        path = out_dir / f"curves_{_slug(target)}_{_shots_slug(shots)}.png"
        written.append(_metric_figure(group, _draw_curves, styles, "step", title, path))
    return written


def plot_shots(suite: str, summary: pd.DataFrame, select: str, styles: dict[str, Style], out_dir: Path) -> list[Path]:
    """Per target with several shot counts: a subplot per metric, a line per method over shots.

    Runs that use all images (shots None) have no shot count to place on the axis and are left out.
    """
    written = []
    counted = summary.dropna(subset=["shots", "metric", "mean"])
    for target, group in counted.groupby("target", sort=True):
        if group["shots"].nunique() < 2:
            continue
        title = f"{suite}: {target}, {select} values (mean ± std over seeds)"
        suffix = "" if select == "final" else f"_{select}"
        written.append(
            _metric_figure(group, _draw_shots, styles, "shots", title, out_dir / f"shots_{_slug(target)}{suffix}.png")
        )
    return written


def _metric_figure(group: pd.DataFrame, draw, styles: dict[str, Style], xlabel: str, title: str, path: Path) -> Path:
    """A subplot per metric of ``group``, each drawn by ``draw(ax, rows, styles)``, one legend; saved to ``path``."""
    metrics = metric_order(group["metric"].unique())
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics):
        draw(ax, group[group["metric"] == metric], styles)
        ax.set_title(_title(metric))
        ax.set_xlabel(xlabel)
    _legend(fig, axes)
    fig.suptitle(title)
    return _save(fig, path)


@dataclass(frozen=True)
class Style:
    """How one method is drawn: colour, line style and marker (hollow for a variant)."""

    color: str
    linestyle: str | tuple
    marker: str
    filled: bool = True

    def kwargs(self) -> dict:
        face = self.color if self.filled else "white"
        return {"color": self.color, "linestyle": self.linestyle, "marker": self.marker, "markerfacecolor": face}


def registered_style(name: str) -> Style | None:
    """A registered method's fixed style (its ``plot_style``), or None for an unknown or unstyled name."""
    if name not in METHODS.names():
        return None
    style = METHODS.get(name).plot_style
    return Style(*style) if style else None


# Methods without a plot_style, and labels whose method is unknown, take these in turn.
SPARE_COLORS = ("#e6ab02", "#1b9e77", "#7570b3", "#66a61e", "#a6761d", "#e7298a", "#386cb0")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 2)))


def method_styles(cells: pd.DataFrame) -> dict[str, Style]:
    """The style of every method label of a suite (``cells`` holds ``method`` labels and ``method_name``s).

    A label that is a registered method's name gets that method's fixed style. A variant (another
    label of the same method, e.g. minegan-multi) keeps its method's colour and marker, hollow, with
    the next line style not taken, so variants of one method are told apart from it and each other.
    """
    name_of = dict(zip(cells["method"], cells.get("method_name", cells["method"])))
    spares: dict[str, Style] = {}
    styles: dict[str, Style] = {}
    for label in sorted(name_of, key=lambda m: (m != name_of[m], m)):  # each method's own label first
        name = name_of[label]
        own = registered_style(name)
        if own is None and name not in spares:
            i = len(spares)
            color, dash = SPARE_COLORS[i % len(SPARE_COLORS)], LINESTYLES[i // len(SPARE_COLORS) % len(LINESTYLES)]
            spares[name] = Style(color, dash, "o")
        base = own or spares[name]
        taken = [s.linestyle for s in styles.values() if s.color == base.color]
        if not taken:
            styles[label] = base
            continue
        free = [dash for dash in LINESTYLES if dash not in taken] or list(LINESTYLES)
        styles[label] = dataclasses.replace(base, linestyle=free[0], filled=False)
    return styles


def _draw_curves(ax, rows: pd.DataFrame, styles: dict[str, Style]) -> None:
    for method, by_method in rows.groupby("method", sort=True):
        stats = by_method.groupby("step")["value"].agg(["mean", "std"]).fillna({"std": 0.0})
        x, mean, std = stats.index.to_numpy(), stats["mean"].to_numpy(), stats["std"].to_numpy()
        style = styles[method]
        ax.plot(x, mean, markersize=4, linewidth=1.3, label=method, **style.kwargs())
        ax.fill_between(x, mean - std, mean + std, color=style.color, alpha=0.08, linewidth=0)


def _draw_shots(ax, rows: pd.DataFrame, styles: dict[str, Style]) -> None:
    for method, by_method in rows.groupby("method", sort=True):
        by_method = by_method.sort_values("shots")
        x, std = by_method["shots"].to_numpy(dtype=float), by_method["std"].fillna(0.0)
        ax.errorbar(x, by_method["mean"], yerr=std, capsize=3, label=method, **styles[method].kwargs())
    shots = sorted(rows["shots"].astype(int).unique())
    if shots[-1] / shots[0] >= 10:  # 1, 5, 10, 100 shots read better on a log axis
        ax.set_xscale("log")
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.minorticks_off()


def _legend(fig: Figure, axes: list) -> None:
    """One legend for the figure, with every method that appears in any subplot."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize="small")


def _grid(n: int) -> tuple[Figure, list]:
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4 * cols, 3.2 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def _title(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric) + ARROWS.get(direction(metric) or "", "")


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "target"


def _shots_slug(shots) -> str:
    return "all" if pd.isna(shots) else f"{int(shots)}shot"
