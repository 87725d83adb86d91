"""The dry run's account of a suite: its protocol, what runs, how long, against which published numbers."""

from __future__ import annotations

import dataclasses
from collections import Counter

from benchmark.config import ADA_FIELDS, SuiteConfig
from benchmark.metrics.registry import METRICS


def protocol_summary(suite: SuiteConfig, cells: list) -> list[str]:
    """Lines (each starting with "# ") that show a suite's protocol, its cells and their cost in steps."""
    lines = []
    protocol = suite.protocol
    if protocol is not None:
        lines.append(f"# protocol: {protocol.name}" + (f" ({protocol.paper})" if protocol.paper else ""))
        lines += [f"#   {note}" for note in protocol.notes]
    train = suite.train
    checkpoint = train.checkpoint_every or train.eval_every
    lines.append(backbone_line(suite))
    lines.append(f"# training: batch {train.batch_size}, checkpoint every {checkpoint:,} steps")
    for method in suite.methods:  # a method entry's own train settings (RICK's batch, ADA for TGAN+ADA)
        if method.train:
            lines.append(f"# method {method.label}: {_train_settings(suite.train_for(method), method.train)}")
    labels = {m.label for m in suite.methods}
    for target in suite.targets:
        ev, on_target = suite.eval_for(target), dataclasses.replace(train, **target.train)
        shots = ", ".join("all images" if s is None else f"{s} per class" for s in target.shots)
        kind = "conditional" if target.conditional else "unconditional"
        classes = "all classes" if target.classes is None else f"{len(target.classes)} classes"
        scored = f" against its {target.eval_split} split" if target.eval_split not in (None, target.split) else ""
        lines.append(
            f"# target {target.name}: {target.dataset} {target.split} split, {classes}, {shots}, crop {target.crop}, "
            f"{kind}; evaluated every {on_target.eval_every:,} steps on {ev.n_fake:,} generated images{scored}: "
            f"{', '.join(_metric_names(ev.metrics, target))}"
        )
        shown = _train_settings(on_target, target.train)
        if shown:
            lines.append(f"#   every method: {shown}")
        for label, options in target.method_options.items():
            shown = ", ".join(f"{k}={v}" for k, v in options.items())
            lines.append(f"#   {label}: {shown}")
        for label, own in target.method_train.items():
            if label in labels:  # --methods may have left it out
                shown = _train_settings(suite.train_for(suite.method(label), target), own or {})
                if shown:
                    lines.append(f"#   {label}: {shown}")
    if protocol is not None:
        names = {t.name for t in suite.targets}
        published = {t: v for t, v in protocol.published.items() if t in names}
        rankings = {t: v for t, v in protocol.rankings.items() if t in names}
        for target, by_metric in published.items():
            for metric, values in by_metric.items():
                shown = ", ".join(f"{protocol.shown_name(m)} {v}" for m, v in values.items())
                lines.append(f"# published {target} {metric}: {shown}")
        for target, by_metric in rankings.items():
            for metric, ranks in by_metric.items():
                shown = "; ".join(f"{r} {', '.join(map(protocol.shown_name, names))}" for r, names in ranks.items())
                lines.append(f"# published ranking {target} {metric}: {shown}")
    # A cell's steps: the suite's train.steps plus any stage on top of the budget (hypermod's self-alignment).
    steps = Counter(cell.schedule().total_steps for cell in cells)
    per_cell = ", ".join(f"{n:,} steps x {count} cells" for n, count in sorted(steps.items()))
    total = sum(n * count for n, count in steps.items())
    lines.append(f"# steps per cell: {per_cell or 'no cells'}; total {total:,} training steps")
    return lines


def backbone_line(suite: SuiteConfig) -> str:
    """The backbone and the recipe in force: the backbone's official settings, and any the suite overrides."""
    backbone, train = suite.backbone, suite.train
    recipe = ", ".join(f"{k} {_shown(v)}" for k, v in backbone.recipe.items())
    line = f"# backbone: {backbone.name} at {backbone.resolution} px; recipe: {backbone.recipe_source}"
    line += f" ({recipe})" if recipe else " (the train defaults)"
    overridden = [
        f"{k} {_shown(getattr(train, k))} (recipe {_shown(v)})"
        for k, v in backbone.recipe.items()
        if getattr(train, k) != v
    ]
    return line + (f"; the suite overrides {', '.join(overridden)}" if overridden else "")


def _train_settings(train, own: dict) -> str:
    """The train settings a target or method entry sets (``own``) as in force, e.g. "steps 1,750, batch 2";
    ADA as the shared step with all its settings."""
    shown = []
    for key in own:
        if key in ADA_FIELDS or key == "stage_scale":
            continue
        value = getattr(train, key)
        names = {"batch_size": "batch", "eval_every": "evaluated every"}
        shown.append(f"{names.get(key, key)} {value:,}")
    if any(key in ADA_FIELDS for key in own):
        shown.append("the shared step with " + ", ".join(f"{k} {_shown(getattr(train, k))}" for k in ADA_FIELDS))
    return ", ".join(shown)


def _shown(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _metric_names(groups, target) -> list[str]:
    """The metric names an evaluation writes: a per-class group (intra-class FID) only on a conditional target;
    memorization as a ratio where real images outside training exist (a few-shot draw or another evaluation
    split), as a raw distance where every real image trains (a whole data set scored against itself)."""
    chosen = [METRICS.get(name) for name in groups]
    names = [m.name for g in chosen if target.conditional or not g.per_class for m in g.metrics if not m.diagnostic]
    against_itself = target.eval_split in (None, target.split)
    if not (against_itself and None in target.shots):
        names = [n for n in names if n != "memorization_distance"]
    if against_itself and all(s is None for s in target.shots):
        names = [n for n in names if n != "memorization"]
    return names
