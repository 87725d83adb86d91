"""Per-target and per-method train settings (``CELL_TRAIN_FIELDS``): a protocol's iterations per data set and
method and RICK's batch reach exactly their cells, budgets shorten them as they do the suite's, and a cell's
trainer runs them."""

from __future__ import annotations

import json
import math

import pytest
import torch

from benchmark.config import load_suite, parse_suite
from benchmark.errors import BenchmarkError
from benchmark.runner import expand_cells
from tests.conftest import tiny_suite, write_suite
from tests.test_cli import run_cli


def _overridden(**train) -> dict:
    """tiny_suite (4 steps of batch 4) with a length for digit7, a batch for freezed, and freezed's own length
    on digit7: every layer of the precedence."""
    raw = tiny_suite(
        methods=["scratch", "transfergan", {"name": "freezed", "train": {"batch_size": 2}}],
        train={**tiny_suite()["train"], **train},
    )
    raw["targets"][0].update(train={"steps": 6}, method_train={"freezed": {"steps": 8, "eval_every": 4}})
    return raw


def test_the_narrowest_setting_wins_and_only_its_cells_change():
    cells = {c.cell_id: c for c in expand_cells(parse_suite(_overridden()))}
    seen = {cell_id: (c.train.steps, c.train.batch_size, c.train.eval_every) for cell_id, c in cells.items()}
    assert seen == {
        "digit7-5shot-scratch-s0": (6, 4, 2),  # the target's length
        "digit7-5shot-transfergan-s0": (6, 4, 2),
        "digit7-5shot-freezed-s0": (8, 2, 4),  # the target's length for freezed, the entry's batch
        "digits89-3shot-scratch-s0": (4, 4, 2),  # the suite's
        "digits89-3shot-transfergan-s0": (4, 4, 2),
        "digits89-3shot-freezed-s0": (4, 2, 2),  # the entry's batch only
    }
    freezed = cells["digit7-5shot-freezed-s0"]
    assert freezed.schedule().total_steps == 8 and freezed.resolved()["train"]["steps"] == 8
    assert "train" not in freezed.resolved()["target"]  # recorded once, under "train", where it acts
    # Cells no setting reaches resolve (and hash) as they did before the settings existed.
    plain = {c.cell_id: c.key.config_hash for c in expand_cells(parse_suite(tiny_suite()))}
    assert plain["digits89-3shot-scratch-s0"] == cells["digits89-3shot-scratch-s0"].key.config_hash
    assert plain["digit7-5shot-scratch-s0"] != cells["digit7-5shot-scratch-s0"].key.config_hash


def test_a_budget_shortens_the_cells_own_lengths_and_scales_their_stages_alike(tmp_path):
    path = write_suite(tmp_path / "s.yaml", _overridden(steps=40, eval_every=10))
    quick = {c.cell_id: c.train for c in expand_cells(load_suite(str(path), budget="quick"))}
    assert quick["digits89-3shot-scratch-s0"].steps == 4 and quick["digit7-5shot-scratch-s0"].steps == 1  # 6 x 0.1
    assert quick["digit7-5shot-freezed-s0"].steps == 1 and quick["digit7-5shot-freezed-s0"].eval_every == 1
    assert {t.stage_scale for t in quick.values()} == {0.1}

    smoke = {c.cell_id: c.train for c in expand_cells(load_suite(str(path), budget="smoke"))}
    # The smoke budget's 4 steps of batch 4 win everywhere; each length's stage scale is 4 over its own.
    assert {(t.steps, t.batch_size, t.eval_every) for t in smoke.values()} == {(4, 4, 2)}
    assert smoke["digits89-3shot-scratch-s0"].stage_scale == pytest.approx(4 / 40)
    assert smoke["digit7-5shot-scratch-s0"].stage_scale == pytest.approx(4 / 6)
    assert smoke["digit7-5shot-freezed-s0"].stage_scale == pytest.approx(4 / 8)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda s: s["targets"][0].update(train={"lr": 0.1}),
            r"targets\[0\]\.train: lr cannot be set per target or method .*valid here: steps, batch_size",
        ),
        (
            lambda s: s["methods"].append({"name": "glo", "train": {"batch": 2}}),
            r"methods\[3\]\.train: unknown key\(s\) batch; did you mean 'batch_size'\?",
        ),
        (lambda s: s["targets"][0].update(train=[1500]), r"targets\[0\]\.train: expected a mapping"),
        (  # the setting at fault is named, not a method whose cells it reaches
            lambda s: s["targets"][0].update(train={"steps": -5}),
            r"targets\[0\]\.train: steps must be a positive integer, got -5$",
        ),
        (lambda s: s["targets"][0].update(method_train={"nope": {}}), r"method_train: unknown key\(s\) nope"),
        (
            lambda s: s["targets"][0].update(method_train={"freezed": {"r1_gamma": 1}}),
            r"method_train\.freezed: r1_gamma cannot be set",
        ),
        (
            lambda s: s["targets"][0].update(method_train={"freezed": {"steps": 0}}),
            r"targets\[0\]\.method_train\.freezed: steps must be a positive integer, got 0",
        ),
        (lambda s: s["methods"].append({"name": "glo", "train": {"batch_size": "2"}}), "batch_size must be a positive"),
    ],
)
def test_bad_cell_train_settings_are_one_clear_line(mutate, message):
    raw = tiny_suite()
    mutate(raw)
    with pytest.raises(BenchmarkError, match=message) as err:
        parse_suite(raw)
    assert "\n" not in str(err.value)


def test_a_cells_trainer_runs_its_own_length_and_batch(tmp_path, cache_dir):
    """Each cell's trainer draws its own batch for its own steps and evaluates at its own interval: the real
    images it read (result.json: images per second x seconds) and the batch queue's remainder in its last
    checkpoint (epochs of the n shots, refilled when shorter than a batch) both follow from them."""
    raw = tiny_suite(methods=[{"name": "transfergan", "train": {"batch_size": 2}}])
    raw["targets"][0].update(method_train={"transfergan": {"steps": 3, "eval_every": 3, "batch_size": 3}})
    out = tmp_path / "out"
    result = run_cli("--suite", write_suite(tmp_path / "s.yaml", raw), "--out", out, "--no-progress",
                     cache_dir=cache_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    expected = {"digit7": (3, 3, 5, [0, 3]), "digits89": (4, 2, 6, [0, 2, 4])}  # steps, batch, shots, evaluations
    for run in (out / "runs" / "tiny").iterdir():
        steps, batch, n, evaluated = expected[run.name.split("-")[0]]
        outcome = json.loads((run / "result.json").read_text())
        assert round(outcome["images_per_second"] * outcome["train_seconds"]) == steps * batch
        queue = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["queue"]
        assert len(queue) == math.ceil(steps * batch / n) * n - steps * batch
        assert [json.loads(row)["step"] for row in (run / "metrics.jsonl").open()] == evaluated
