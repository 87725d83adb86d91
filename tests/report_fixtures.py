"""A results store filled with known numbers, for the report tests: run folders written as cells
write them (cell.json, metrics.jsonl, result.json, status.json), then the index rebuilt from them.

Two targets (digit7 at 5 and 10 shots, digit9 at 10 shots) x two methods x three seeds, plus:

- FAILED: one freezed cell on digit9 that recorded absurdly good metrics before failing;
- STALE: an older, finished config_hash of one scratch cell with absurdly good metrics;
- ALL_FAILED: a third method whose only cells (digit9, every seed) failed.

``EXPECTED`` holds the final per-seed values of the cells that count, for the tests to
aggregate with numpy independently of the report code.
"""

from __future__ import annotations

import time

import numpy as np

from benchmark.io import append_jsonl, write_json
from benchmark.runfolder import METRICS_FILE, RESULT_FILE
from benchmark.store import CellKey, ResultsStore

SUITE = "toy"
EXTRACTOR = "digits-lenet"
N_FAKE = 480
N_REAL = {"digit7": 178, "digit9": 180}
METHODS = {"freezed": "FreezeD_4", "scratch": "Scratch", "minegan": "MineGAN"}
# The suite file's order (tables follow it): deliberately not alphabetical.
METHOD_POSITION = {"scratch": 0, "minegan": 1, "freezed": 2}
TARGET_POSITION = {"digit9": 0, "digit7": 1}
GROUPS = [("digit7", 5), ("digit7", 10), ("digit9", 10)]
SEEDS = (0, 1, 2)
STEPS = (0, 50, 100)
METRICS = ("fid", "kid", "precision", "memorization")
FAILED = ("freezed", "digit9", 10, 2)
STALE = ("scratch", "digit7", 10, 0)
ALL_FAILED = "minegan"
STALE_HASH, CURRENT_HASH = "0ld0ld00", "c0ffee00"
PARAMS = {"freezed": 1_234_567, "scratch": 2_500_000}

# EXPECTED[(target, shots, label)][metric][seed] -> final value, for the finished seeds only.
EXPECTED: dict[tuple[str, int, str], dict[str, dict[int, float]]] = {}
# PEAK[(target, shots, label)][seed] -> precision at step 50, its best step.
PEAK: dict[tuple[str, int, str], dict[int, float]] = {}


def final_metrics(rng: np.random.Generator) -> dict[str, float]:
    return {
        "fid": float(rng.uniform(20, 90)),
        "kid": float(rng.uniform(0.005, 0.05)),
        "precision": float(rng.uniform(0.3, 0.8)),
        "memorization": float(rng.uniform(0.7, 1.0)),
    }


def at_step(final: dict[str, float], step: int) -> dict[str, float]:
    """Distances fall to their final value; precision peaks mid-run, so select='best' differs from 'final'."""
    early = 1 - step / STEPS[-1]
    return {
        "fid": final["fid"] * (1 + early),
        "kid": final["kid"] * (1 + early),
        "precision": final["precision"] + (0.1 if step == 50 else -0.2 * early),
        "memorization": final["memorization"] - 0.1 * early,
    }


def fill_store(store: ResultsStore) -> None:
    """Record every cell; called once per store (EXPECTED is rebuilt each time)."""
    EXPECTED.clear()
    PEAK.clear()
    rng = np.random.default_rng(7)
    _record_stale(store)
    for target, shots in GROUPS:
        for method in ("freezed", "scratch"):
            for seed in SEEDS:
                _record_cell(store, rng, method, target, shots, seed)
    for seed in SEEDS:
        _record_failed(store, ALL_FAILED, "digit9", 10, seed)
    store.rebuild_index()


COST_FIELDS = {"trainable_params": "trainable_parameters", "images_per_second": "images_per_second",
               "wall_seconds": "wall_seconds", "steps": "steps"}  # fmt: skip


def record_cell(store: ResultsStore, key: CellKey, status: str, metrics: dict[int, dict], error=None, **fields) -> None:
    """Write a cell's run folder as run_cell does: identity, metric rows, result, then its final status.

    ``fields`` are index columns: identity ones (target, method, seed, ...), ``n_real`` (recorded in
    the metric rows) and cost ones (trainable_params, images_per_second, wall_seconds, steps).
    """
    n_real = fields.pop("n_real", None)
    cost = {COST_FIELDS[k]: fields.pop(k) for k in list(fields) if k in COST_FIELDS}
    folder = store.folder(key)
    folder.register({"suite": key.suite, "cell_id": key.cell_id, "config_hash": key.config_hash, **fields})
    for step, values in metrics.items():
        append_jsonl({"step": step, "metrics": values, "n_real": n_real}, folder.path / METRICS_FILE)
    write_json({"status": status, "error": error, **cost}, folder.path / RESULT_FILE)
    folder.write_status(status, error=error, finished=time.time())


def key(method: str, target: str, shots: int, seed: int, config_hash: str = CURRENT_HASH) -> CellKey:
    return CellKey(SUITE, f"{target}-{shots}shot-{method}-s{seed}", config_hash)


def _fields(method: str, target: str, shots: int, seed: int) -> dict:
    return dict(
        target=target,
        dataset="digits",
        shots=shots,
        method=method,
        method_label=METHODS[method],
        seed=seed,
        method_position=METHOD_POSITION[method],
        target_position=TARGET_POSITION[target],
        extractor=EXTRACTOR,
        n_fake=N_FAKE,
        n_real=N_REAL[target],
    )


def _record_cell(store: ResultsStore, rng, method: str, target: str, shots: int, seed: int) -> None:
    if (method, target, shots, seed) == FAILED:
        _record_failed(store, method, target, shots, seed)
        return
    cell = key(method, target, shots, seed)
    final = final_metrics(rng)
    cost = dict(trainable_params=PARAMS[method], images_per_second=100.0 + seed, wall_seconds=60.0 * (seed + 1))
    metrics = {step: at_step(final, step) for step in STEPS}
    record_cell(store, cell, "finished", metrics, steps=STEPS[-1], **cost, **_fields(method, target, shots, seed))
    label = METHODS[method]
    for metric, value in final.items():
        EXPECTED.setdefault((target, shots, label), {}).setdefault(metric, {})[seed] = value
    PEAK.setdefault((target, shots, label), {})[seed] = at_step(final, 50)["precision"]


def _record_failed(store: ResultsStore, method: str, target: str, shots: int, seed: int) -> None:
    """A cell that logged unbeatable metrics, then failed: none of them may reach a table."""
    cell = key(method, target, shots, seed)
    metrics = {50: {"fid": 0.01, "kid": 0.0, "precision": 1.0, "memorization": 1.0}}
    error = "DivergedError: loss is nan"
    record_cell(store, cell, "failed", metrics, error=error, **_fields(method, target, shots, seed))


def _record_stale(store: ResultsStore) -> None:
    """An earlier recipe's finished run of a cell that is re-run (and finished later) under a new hash."""
    method, target, shots, seed = STALE
    cell = key(method, target, shots, seed, STALE_HASH)
    metrics = {step: {"fid": 0.02, "kid": 0.0, "precision": 0.99, "memorization": 0.99} for step in STEPS}
    cost = dict(steps=STEPS[-1], trainable_params=1, images_per_second=1e6, wall_seconds=1.0)
    record_cell(store, cell, "finished", metrics, **cost, **_fields(method, target, shots, seed))


# --------------------------------------------------------------------------------------------
# A whole suite's worth of cells: every cell of a shipped suite, every metric its evaluation writes.

RANGES = {
    "fid": (5.0, 60.0),
    "kid": (0.001, 0.05),
    "kmmd": (0.1, 1.5),
    "precision": (0.2, 0.9),
    "recall": (0.0, 0.8),
    "density": (0.2, 1.3),
    "coverage": (0.1, 0.9),
    "intra_fid": (10.0, 80.0),
    "memorization": (0.7, 1.3),
    "memorization_distance": (5.0, 20.0),
}


def fill_suite_store(store: ResultsStore, suite, steps=(0, 125, 250), rng_seed: int = 3) -> None:
    """Record every cell of ``suite`` (a SuiteConfig) as finished, with random metrics that improve
    over ``steps``: the size of table a real run of the suite gives."""
    from benchmark.config import METRIC_GROUPS
    from benchmark.runner import expand_cells

    rng = np.random.default_rng(rng_seed)
    for cell in expand_cells(suite):
        names = [n for group in cell.eval.metrics for n in METRIC_GROUPS[group]]
        names = [n for n in names if n != "intra_fid" or cell.target.conditional]
        # the memorization ratio where held-out reals exist (few-shot), the raw distance on a whole data set
        names = [n for n in names if n != ("memorization" if cell.shots is None else "memorization_distance")]
        final = {n: float(rng.uniform(*RANGES[n])) for n in names}
        metrics = {step: {n: v * (1 + 0.5 * (1 - step / steps[-1])) for n, v in final.items()} for step in steps}
        cost = dict(steps=steps[-1], trainable_params=1_000_000 + cell.seed, images_per_second=100.0, wall_seconds=60.0)
        record_cell(store, cell.key, "finished", metrics, **cost, **cell.index_fields, n_real=500)
    store.rebuild_index()
