"""Stage schedules: laid out against the budget, never cut, scaled with named budgets, printed by the dry run."""

import pytest

from benchmark.config import BUILTIN_BUDGETS, load_suite, parse_suite, shipped_suites
from benchmark.errors import BenchmarkError
from benchmark.method import METHODS
from benchmark.runner import check_schedules, method_schedule
from benchmark.schedule import Stage, resolve_schedule, scaled_steps


def _spans(schedule):
    return [(s.start, s.end, s.stage.name) for s in schedule.spans]


def test_stages_inside_the_budget_share_it():
    schedule = resolve_schedule("m", [Stage("mine", 3), Stage("finetune")], budget=10)
    assert _spans(schedule) == [(0, 3, "mine"), (3, 10, "finetune")]
    assert schedule.total_steps == 10
    assert schedule.describe() == "m: mine 0-3, finetune 3-10"


def test_a_stage_that_does_not_fit_is_an_error_naming_the_fix():
    with pytest.raises(BenchmarkError) as err:
        resolve_schedule("adafm", [Stage("specific", 10_000, set_by="adafm_start"), Stage("adafm")], budget=5000)
    message = str(err.value)
    for part in ("'adafm'", "'specific'", "10000 steps", "5000 steps", "adafm_start to at most 4999", "train.steps"):
        assert part in message
    assert "\n" not in message
    # Filling the budget exactly leaves the last stage no step: also refused, not cut.
    with pytest.raises(BenchmarkError, match="does not fit"):
        resolve_schedule("m", [Stage("mine", 10), Stage("finetune")], budget=10)
    with pytest.raises(BenchmarkError, match="cover 2 of the budget's 5 steps"):
        resolve_schedule("m", [Stage("a", 2)], budget=5)


def test_a_budget_extending_stage_comes_on_top():
    stages = [
        Stage("self-align", 10_000, ("G",), uses_data=False, extends_budget=True),
        Stage("train", reset_ema=True),
    ]
    schedule = resolve_schedule("hypermod", stages, budget=50_000)
    assert _spans(schedule) == [(0, 10_000, "self-align"), (10_000, 60_000, "train")]
    assert schedule.describe() == "hypermod: self-align 0-10000 (G only, no data), train 10000-60000"


def test_scaling_keeps_every_stage():
    assert scaled_steps(100, 0.016) == 1 and scaled_steps(1000, 0.1) == 100 and scaled_steps(0, 0.5) == 0
    schedule = resolve_schedule("m", [Stage("mine", 100), Stage("finetune")], budget=4, scale=0.016)
    assert _spans(schedule) == [(0, 1, "mine"), (1, 4, "finetune")]


@pytest.mark.parametrize("budget", [None, *BUILTIN_BUDGETS])
@pytest.mark.parametrize("suite_name", shipped_suites())
def test_every_shipped_schedule_runs_every_stage_and_mostly_the_main_one(suite_name, budget):
    suite = load_suite(suite_name, budget=budget)
    if budget is not None:
        full = load_suite(suite_name).train.steps
        assert suite.train.stage_scale == pytest.approx(suite.train.steps / full, rel=0.05)
    for entry, target in ((e, t) for e in suite.methods for t in suite.targets):  # with the target's own settings
        schedule, steps = method_schedule(suite, entry, target), suite.train_for(entry, target).steps
        assert all(span.steps >= 1 for span in schedule.spans), schedule.describe()
        main = [span for span in schedule.spans if span.stage.main]
        assert len(main) == 1, f"{entry.label}: one stage must be the one the method exists for"
        assert main[0].steps > steps / 2, schedule.describe()
        inside = sum(span.steps for span in schedule.spans if not span.stage.extends_budget)
        assert inside == steps, schedule.describe()


def test_every_registered_method_declares_a_main_stage():
    from benchmark.schedule import method_options

    for name in METHODS:
        cls = METHODS.get(name)
        stages = cls.schedule(**method_options(cls, {}))
        assert sum(s.main for s in stages) == 1, name


def test_named_budgets_say_how_they_scale():
    toy = load_suite("toy")
    quick = load_suite("toy", budget="quick")
    assert quick.train.steps == round(toy.train.steps * 0.1) and quick.train.stage_scale == pytest.approx(0.1)
    lines = check_schedules(quick)
    assert lines[0] == f"stage lengths scaled by 0.1 with the budget ({quick.train.steps} steps)"
    assert "adafm: specific 0-10, adafm 10-25" in lines


def test_a_stage_is_adversarial_when_it_trains_d_unless_it_says_so():
    assert Stage("train").adversarial and Stage("d-only", phases=("D",)).adversarial
    assert not Stage("reconstruct", phases=("G",)).adversarial  # G's own terms are the whole loss
    assert Stage("frozen-d", phases=("G",), adversarial=True).adversarial
    with pytest.raises(ValueError, match="a stage with a D phase is adversarial"):
        Stage("train", adversarial=False)


def test_a_targets_method_options_reach_its_cells_schedules():
    from benchmark.config import parse_suite
    from benchmark.runner import expand_cells
    from tests.conftest import tiny_suite

    raw = tiny_suite(methods=[{"name": "adafm", "options": {"adafm_start": 1}}], train={"steps": 10})
    raw["targets"][1]["method_options"] = {"adafm": {"adafm_start": 3}}
    suite = parse_suite(raw)
    lines = check_schedules(suite)
    assert lines == ["adafm: specific 0-1, adafm 1-10", "  on digits89: adafm: specific 0-3, adafm 3-10"]
    cells = {c.target.name: c for c in expand_cells(suite)}
    assert _spans(cells["digit7"].schedule())[0] == (0, 1, "specific")
    assert _spans(cells["digits89"].schedule())[0] == (0, 3, "specific")
    assert cells["digits89"].resolved()["schedule"][0]["end"] == 3
    raw["targets"][1]["method_options"] = {"adafm": {"adafm_start": 10}}
    with pytest.raises(BenchmarkError, match="stage 'specific' .* does not fit"):
        check_schedules(parse_suite(raw))


def test_a_method_that_needs_a_perceptual_network_is_refused_at_the_dry_run_where_the_suite_names_none():
    """glo's and bsa's losses use the suite's perceptual network: a suite without one is one line before any cell
    runs (adam2022 once stopped at its glo cell, after its earlier cells had trained)."""
    from tests.conftest import tiny_suite

    with pytest.raises(BenchmarkError, match=r"method 'glo' needs the suite's perceptual network; add `perceptual"):
        check_schedules(parse_suite(tiny_suite(methods=["transfergan", "glo"])))
    assert check_schedules(parse_suite(tiny_suite(methods=["glo"], perceptual="digits-classifier")))
