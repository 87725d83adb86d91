"""Stage schedules: what each method trains when, resolved against a suite's budget before any training.

A method declares its stages from its options (``Method.schedule``), without being built, so the
dry run can print and check every cell's schedule. ``resolve_schedule`` lays the stages out in
steps: stages inside the budget share ``train.steps``; a stage that ``extends_budget`` (Hyper-
Modulation's data-free self-alignment, its own run in the official code) comes on top of it. A
stage that does not fit is an error, never a silent cut. Named budgets (``--budget smoke``,
``quick``) shorten ``train.steps`` and scale every stage length by the same factor
(``train.stage_scale``), so a shortened run still runs every stage.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

from benchmark.errors import BenchmarkError


@dataclass(frozen=True)
class Stage:
    """A stretch of training with its own trainable set.

    Args:
        name: shown in logs and passed to the method's ``enter_stage`` and step.
        steps: length in steps at the suite's full budget; None means "the rest of the budget".
        phases: optimizer phases run each step, in order ("D", "G").
        uses_data: whether the stage reads training images (a data-free stage gets no batch).
        adversarial: the G phase adds the non-saturating loss on D's logits of the fakes; by
            default when the stage trains D too. Otherwise the method's G terms are the whole loss
            (a reconstruction or a self-alignment stage, G only).
        extends_budget: the stage runs before the budget and adds to it instead of taking from it.
        reset_ema: when the stage begins, the EMA restarts from the current G (Hyper-Modulation
            starts its g_running from the self-aligned G, train.py).
        reset_optimizers: when the stage begins, optimizers start afresh (a new run in the official code).
        main: the stage the method exists for (adversarial training, AdaFM's gamma/beta, MineGAN's
            fine-tuning); shipped suites give it most of the budget, which the tests check.
        set_by: the method option that sets ``steps``, named in the error when the stage does not fit.
    """

    name: str
    steps: int | None = None
    phases: tuple[str, ...] = ("D", "G")
    uses_data: bool = True
    adversarial: bool | None = None
    extends_budget: bool = False
    reset_ema: bool = False
    reset_optimizers: bool = False
    main: bool = False
    set_by: str | None = None

    def __post_init__(self):
        if self.adversarial is None:
            object.__setattr__(self, "adversarial", "D" in self.phases)
        elif "D" in self.phases and not self.adversarial:
            raise ValueError(f"stage {self.name!r}: a stage with a D phase is adversarial; adversarial=False is G only")

    def describe(self) -> str:
        """What trains, for the dry run: e.g. "G only, no data"."""
        parts = [] if self.phases == ("D", "G") else [" and ".join(self.phases) + " only"]
        parts += [] if self.uses_data else ["no data"]
        return ", ".join(parts)


@dataclass(frozen=True)
class Span:
    """A stage placed in the run: steps [start, end)."""

    start: int
    end: int
    stage: Stage

    @property
    def steps(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Schedule:
    """A method's stages laid out in steps for one budget.

    Attributes:
        method: the method's name (for messages).
        spans: the stages in order, covering [0, total_steps).
        budget: ``train.steps``, the steps inside the budget.
        scale: the factor every declared stage length was multiplied by (1 at the suite's budget).
    """

    method: str
    spans: tuple[Span, ...]
    budget: int
    scale: float = 1.0

    @property
    def total_steps(self) -> int:
        return self.spans[-1].end

    def at(self, step: int) -> Span:
        """The span that contains ``step`` (the last one at and after the end)."""
        for span in self.spans:
            if span.start <= step < span.end:
                return span
        return self.spans[-1]

    def describe(self) -> str:
        """One line, e.g. ``m: self-align 0-10000 (G only, no data), train 10000-60000``."""
        parts = []
        for span in self.spans:
            what = span.stage.describe()
            parts.append(f"{span.stage.name} {span.start}-{span.end}" + (f" ({what})" if what else ""))
        return f"{self.method}: " + ", ".join(parts)

    def to_plain(self) -> list[dict]:
        """For each cell's config.yaml."""
        return [
            {
                "stage": s.stage.name,
                "start": s.start,
                "end": s.end,
                "phases": list(s.stage.phases),
                "uses_data": s.stage.uses_data,
                "extends_budget": s.stage.extends_budget,
            }
            for s in self.spans
        ]


def scaled_steps(steps: int, scale: float) -> int:
    """A stage length under a shortened budget: floor(steps * scale), at least 1 for a non-empty stage."""
    if steps == 0 or scale == 1:
        return steps
    return max(1, math.floor(steps * scale))


def resolve_schedule(method: str, stages: list[Stage], budget: int, scale: float = 1.0) -> Schedule:
    """Lay ``stages`` out in steps: budget-extending stages first, then the rest inside ``budget``.

    Raises:
        BenchmarkError: a stage inside the budget does not fit (it would be cut, or leave a later
            stage no step), or the stages do not cover the budget; the message names the method,
            the stage, its length, the budget and the fix.
    """
    spans, start = [], 0
    for stage in stages:
        if stage.extends_budget:
            if stage.steps is None:
                raise BenchmarkError(f"method {method!r}: stage {stage.name!r} extends the budget but has no length")
            steps = scaled_steps(stage.steps, scale)
            if steps:
                spans.append(Span(start, start + steps, stage))
            start += steps
    offset, inside = start, [s for s in stages if not s.extends_budget]
    for i, stage in enumerate(inside):
        used = start - offset
        later = len(inside) - 1 - i  # every later stage needs at least one step
        if stage.steps is None:
            steps = budget - used - sum(scaled_steps(s.steps or 1, scale) for s in inside[i + 1 :])
        else:
            steps = scaled_steps(stage.steps, scale)
        if stage.steps is not None and steps == 0:
            continue
        if steps < 1 or used + steps + later > budget:
            length = "the rest" if stage.steps is None else f"{steps} steps"
            scaled = f", scaled by {scale:g}" if scale != 1 else ""
            fits = budget - used - later
            shorten = next((s.set_by for s in inside if s.set_by), None)
            fix = f"set {shorten} to at most {fits} in the method's options" if shorten else "shorten earlier stages"
            raise BenchmarkError(
                f"method {method!r}: stage {stage.name!r} ({length}{scaled}) does not fit in the budget of "
                f"{budget} steps (train.steps) after {used} steps of earlier stages; {fix}, or raise train.steps"
            )
        spans.append(Span(start, start + steps, stage))
        start += steps
    if start - offset != budget:
        names = ", ".join(s.name for s in inside)
        raise BenchmarkError(
            f"method {method!r}: stages {names} cover {start - offset} of the budget's {budget} steps; "
            f"give the last stage no length (it takes the rest)"
        )
    return Schedule(method, tuple(spans), budget, scale)


def method_options(cls, options: dict) -> dict:
    """A method's constructor options with its defaults filled in (``source`` and ``target`` left out)."""
    params = inspect.signature(cls.__init__).parameters
    defaults = {
        name: p.default
        for name, p in params.items()
        if name not in ("self", "source", "target") and p.default is not inspect.Parameter.empty
    }
    return {**defaults, **options}


def check_method_options(name: str, cls, options: dict, where: str = "") -> None:
    """An unknown (e.g. misspelled) option is a one-line error listing the valid ones."""
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p, spec in params.items() if p not in ("self", "source", "target") and spec.kind != spec.VAR_KEYWORD]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise BenchmarkError(
            f"{where}method {name!r}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(valid) or '(none)'}"
        )


def schedule_for(name: str, cls, options: dict, budget: int, scale: float = 1.0) -> Schedule:
    """The schedule of a method entry (registered class and suite options), without building it."""
    try:
        stages = cls.schedule(**method_options(cls, options))
    except (TypeError, ValueError) as err:
        raise BenchmarkError(f"method {name!r}: {err}") from None
    return resolve_schedule(name, stages, budget, scale)
