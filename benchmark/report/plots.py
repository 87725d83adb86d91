"""PNG plots: metric vs step per target x shots, and metric vs shots per method.

Figures are built with ``matplotlib.figure.Figure`` directly, which renders through Agg without
pyplot's global state or backend switching, so a report can run in any process (a notebook
included) and never opens a window.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.report.data import direction, metric_order
from benchmark.report.table import METRIC_NAMES, group_label

ARROWS = {"lower": " ↓", "higher": " ↑"}


def plot_curves(suite: str, steps: pd.DataFrame, colors: dict[str, str], out_dir: Path) -> list[Path]:
    """One figure per target x shots: a subplot per metric, a line per method (mean over seeds, ±std band)."""
    written = []
    for (target, shots), group in steps.groupby(["target", "shots"], dropna=False, sort=True):
        title = f"{suite}: {group_label(target, shots)} (mean ± std over seeds)"
        path = out_dir / f"curves_{_slug(target)}_{_shots_slug(shots)}.png"
        written.append(_metric_figure(group, _draw_curves, colors, "step", title, path))
    return written


def plot_shots(suite: str, summary: pd.DataFrame, select: str, colors: dict[str, str], out_dir: Path) -> list[Path]:
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
            _metric_figure(group, _draw_shots, colors, "shots", title, out_dir / f"shots_{_slug(target)}{suffix}.png")
        )
    return written


def _metric_figure(group: pd.DataFrame, draw, colors: dict[str, str], xlabel: str, title: str, path: Path) -> Path:
    """A subplot per metric of ``group``, each drawn by ``draw(ax, rows, colors)``, one legend; saved to ``path``."""
    metrics = metric_order(group["metric"].unique())
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics):
        draw(ax, group[group["metric"] == metric], colors)
        ax.set_title(_title(metric))
        ax.set_xlabel(xlabel)
    _legend(fig, axes)
    fig.suptitle(title)
    return _save(fig, path)


def method_colors(methods: pd.Series) -> dict[str, str]:
    """One colour per method for every figure of a suite, so a method keeps its colour across plots."""
    return {m: f"C{i % 10}" for i, m in enumerate(sorted(methods.unique()))}


def _draw_curves(ax, rows: pd.DataFrame, colors: dict[str, str]) -> None:
    for method, by_method in rows.groupby("method", sort=True):
        stats = by_method.groupby("step")["value"].agg(["mean", "std"]).fillna({"std": 0.0})
        x, mean, std = stats.index.to_numpy(), stats["mean"].to_numpy(), stats["std"].to_numpy()
        ax.plot(x, mean, marker="o", markersize=3, color=colors[method], label=method)
        ax.fill_between(x, mean - std, mean + std, color=colors[method], alpha=0.2, linewidth=0)


def _draw_shots(ax, rows: pd.DataFrame, colors: dict[str, str]) -> None:
    for method, by_method in rows.groupby("method", sort=True):
        by_method = by_method.sort_values("shots")
        x, std = by_method["shots"].to_numpy(dtype=float), by_method["std"].fillna(0.0)
        ax.errorbar(x, by_method["mean"], yerr=std, marker="o", capsize=3, color=colors[method], label=method)
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
