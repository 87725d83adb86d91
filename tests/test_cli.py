"""The command line, end to end on a tiny suite: files produced, skips, resume after SIGKILL, errors."""

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_suite, write_suite

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, cache_dir, timeout=600, env=None, **popen):
    env = {**os.environ, "GTB_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "run_benchmark.py"), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, **popen,
    )  # fmt: skip


def test_end_to_end_writes_every_file(tmp_path, suite_file, cache_dir):
    out = tmp_path / "out"
    result = run_cli("--suite", suite_file, "--out", out, "--no-progress", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    assert "tables:" in result.stdout

    runs = sorted((out / "runs" / "tiny").iterdir())
    assert len(runs) == 2 * 3  # two targets x three methods x one seed
    for run in runs:
        for name in ("config.yaml", "manifest.json", "metrics.jsonl", "log.txt", "result.json", "checkpoints/last.pt"):
            assert (run / name).is_file(), f"{run.name}: {name} missing"
        assert sorted(p.name for p in (run / "samples").iterdir()) == [f"step_{s:06d}.png" for s in (0, 2, 4)]
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [0, 2, 4]
        final = rows[-1]["metrics"]
        assert {"fid", "kid", "kmmd", "precision", "recall", "density", "coverage"} <= set(final)
        assert all(math.isfinite(v) for v in final.values())
        assert rows[-1]["extractor"] == "digits-classifier" and rows[-1]["n_fake"] == 40
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["schedule"] == [
            {"stage": "train", "start": 0, "end": 4, "phases": ["D", "G"], "uses_data": True, "extends_budget": False}
        ]
        result_json = json.loads((run / "result.json").read_text())
        assert result_json["status"] == "finished" and result_json["trainable_parameters"] > 0
        manifest = json.loads((run / "manifest.json").read_text())
        assert all(len(v) in (5, 3) for v in manifest["files"].values())
    conditional = [r for r in runs if r.name.startswith("digits89")]
    assert all("intra_fid" in json.loads((r / "result.json").read_text())["metrics"] for r in conditional)

    with sqlite3.connect(out / "results.sqlite") as db:
        statuses = [s for (s,) in db.execute("SELECT status FROM cells")]
    assert statuses == ["finished"] * 6
    tables = out / "tables" / "tiny"
    for suffix in (".csv", ".tex", ".md"):
        assert list(tables.glob(f"*{suffix}")), f"no {suffix} table"
    assert list((tables / "plots").glob("*.png"))

    again = run_cli("--suite", suite_file, "--out", out, "--no-progress", cache_dir=cache_dir)
    assert again.returncode == 0 and "skipped 6" in again.stdout


def _worker_pids(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker`` (the run's unique cache path)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _describe(pid: int) -> str:
    """A live process's command line and state, for a failure message."""
    try:
        cmdline = (Path(f"/proc/{pid}") / "cmdline").read_bytes().replace(b"\0", b" ")[:160].decode()
        status = (Path(f"/proc/{pid}") / "status").read_text().splitlines()
    except OSError:
        return "exited"
    return " | ".join([cmdline, *(line for line in status if line.startswith(("State:", "PPid:")))])


def test_sigkill_mid_training_resumes_to_the_same_metrics(tmp_path, cache_dir):
    """Two cells in two worker processes; the parent is SIGKILLed once both have a checkpoint."""
    raw = tiny_suite(
        methods=["transfergan"],
        seeds=[0, 1],
        targets=[{"name": "digit7", "dataset": "mnist5k", "classes": [7], "shots": [5], "eval_split": "test"}],
        train={"steps": 60, "batch_size": 4, "eval_every": 20, "checkpoint_every": 5, "log_every": 5,
               "hflip": False, "r1_every": 2},
    )  # fmt: skip
    suite = write_suite(tmp_path / "kill.yaml", raw)
    args = ["--suite", suite, "--no-progress", "--no-report", "--jobs", "2"]
    clean = run_cli(*args, "--out", tmp_path / "clean", cache_dir=cache_dir)
    assert clean.returncode == 0, clean.stderr

    out = tmp_path / "killed"
    marker = str(tmp_path / "kill-marker")
    env = {**os.environ, "GTB_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1", "KILL_TEST_MARKER": marker}
    cmd = [sys.executable, str(ROOT / "run_benchmark.py"), *map(str, args), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and len(list(out.glob("runs/*/*/checkpoints/last.pt"))) < 2:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while _worker_pids(marker) and time.time() < deadline:
        time.sleep(0.2)
    left = {pid: _describe(pid) for pid in _worker_pids(marker)}
    assert not left, f"worker processes outlived their killed parent: {left}"

    resumed = run_cli(*args, "--out", out, cache_dir=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    logs = [p.read_text() for p in out.glob("runs/*/*/log.txt")]
    assert len(logs) == 2 and any("resumed from step" in log for log in logs)

    def final_metrics(root):
        finals = {}
        for metrics in root.glob("runs/*/*/metrics.jsonl"):
            rows = [json.loads(line) for line in metrics.read_text().splitlines()]
            assert [r["step"] for r in rows] == [0, 20, 40, 60]
            finals[metrics.parent.name] = rows[-1]["metrics"]
        return finals

    assert final_metrics(out) == final_metrics(tmp_path / "clean")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--suite", "nope"], "unknown suite 'nope'"),
        (["--suite", "toy", "--methods", "nope"], "unknown method 'nope'; valid methods:"),
        (["--suite", "{bad}"], "malformed YAML"),
        (["--suite", "toy", "--out", "/proc/forbidden"], "not writable"),
        (["report", "--out", "{empty}"], "no results in"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(args, message, tmp_path, cache_dir):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntargets: [oops\n")
    args = [str(bad) if a == "{bad}" else str(tmp_path / "empty") if a == "{empty}" else a for a in args]
    result = run_cli(*args, cache_dir=cache_dir)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_list_shows_registries(cache_dir):
    result = run_cli("list", cache_dir=cache_dir)
    assert result.returncode == 0
    for name in ("scratch", "transfergan", "freezed", "digits", "toy-pretrain", "digits-classifier", "toy"):
        assert name in result.stdout
    assert "[in --data-root or its CUB_200_2011/]" in result.stdout  # where a data set's folder goes


def test_dry_run_lists_cells(suite_file, cache_dir):
    result = run_cli("--suite", suite_file, "--dry-run", cache_dir=cache_dir)
    assert result.returncode == 0
    assert "digit7-5shot-freezed-s0" in result.stdout and "# 6 cells" in result.stdout


def test_dry_run_prints_every_methods_stage_spans(cache_dir):
    result = run_cli("--suite", "toy", "--dry-run", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    for line in (
        "hypermod: self-align 0-100 (G only, no data), train 100-350",
        "adafm: specific 0-100, adafm 100-250",
        "minegan: mine 0-50, finetune 50-250",
        "minegan-noft: mine 0-250",
        "bsa: train 0-250 (G only)",
    ):
        assert f"#   {line}\n" in result.stdout, line
    assert (
        "# target digit7: mnist5k train split, 1 classes, 10 per class, 100 per class, crop center, unconditional; "
        "evaluated every 125 steps on 1,000 generated images against its test split: fid, " in result.stdout
    )
    smoke = run_cli("--suite", "toy", "--budget", "smoke", "--dry-run", cache_dir=cache_dir)
    assert "#   stage lengths scaled by 0.016 with the budget (4 steps)" in smoke.stdout
    assert "#   adafm: specific 0-1, adafm 1-4" in smoke.stdout


@pytest.mark.parametrize(("method", "message"), [
    ({"name": "adafm", "options": {"adafm_strat": 2}}, "methods[1]: method 'adafm': unknown option(s) adafm_strat"),
    ({"name": "adafm", "options": {"adafm_start": 10}}, "stage 'specific' (10 steps) does not fit in the budget of 4"),
])  # fmt: skip
def test_method_option_mistakes_stop_the_dry_run_and_the_run(tmp_path, cache_dir, method, message):
    suite = write_suite(tmp_path / "bad.yaml", tiny_suite(methods=["scratch", method]))
    for extra in (["--dry-run"], []):
        result = run_cli("--suite", suite, "--out", tmp_path / "out", *extra, cache_dir=cache_dir)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "out" / "runs").exists(), "nothing trains before the error"


def test_inspect_data_on_an_official_layout(tmp_path, cache_dir):
    from tests.datasets.layouts import build_layout

    layout = build_layout("cub200", tmp_path / "data")
    result = run_cli("inspect-data", "cub200", "--data-root", layout.root, "--json", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"dataset", "n_images", "n_classes", "classes", "per_class"} <= set(report)
    assert report["dataset"] == "cub200" and report["n_images"] == sum(report["per_class"].values())
    missing = run_cli("inspect-data", "cub200", "--data-root", tmp_path / "nowhere", cache_dir=cache_dir)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "cub200" in missing.stderr


def test_real_suite_dry_run_checks_data_and_checkpoint(tmp_path, cache_dir, monkeypatch):
    """The stanford-fewshot suite against miniature official layouts of both datasets under one data root."""
    import torch

    from benchmark.config import read_suite
    from tests.datasets.layouts import build_layout
    from tests.features.standin import save_standin

    # The dry run checks that each pretrained file is the right kind (no weights are read).
    monkeypatch.setenv("GTB_INCEPTION_PATH", str(save_standin(tmp_path)))
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "vgg16-397923af.pth")
    monkeypatch.setenv("GTB_VGG16_PATH", str(tmp_path / "vgg16-397923af.pth"))

    data = tmp_path / "data"
    build_layout("stanford_cars", data / "stanford_cars")
    build_layout("stanford_dogs", data / "stanford_dogs")
    raw = read_suite("stanford-fewshot")  # its extends chain merged in
    for target in raw["targets"]:
        # the miniatures hold three classes, and few train images (the sizes the checks below need)
        target["classes"], target["shots"], target["split"] = [0, 1, 2], [1], "train"
    ckpt = tmp_path / "stylegan-256px-new.model"
    torch.save({"g_running": {"style.1.linear.bias": torch.zeros(1)}}, ckpt)  # the right kind; never loaded
    too_few = run_cli(
        "--suite", write_suite(tmp_path / "k5.yaml", raw), "--data-root", data, "--source-ckpt", ckpt, "--dry-run",
        cache_dir=cache_dir,
    )  # fmt: skip
    assert too_few.returncode == 2, too_few.stderr
    assert "PRDC with k=5 needs at least 6 real and generated images" in too_few.stderr
    raw["eval"]["prdc_k"] = 3  # four car images: PRDC's k must be below that
    one_per_class = run_cli(
        "--suite", write_suite(tmp_path / "k3.yaml", raw), "--data-root", data, "--source-ckpt", ckpt, "--dry-run",
        cache_dir=cache_dir,
    )  # fmt: skip
    assert one_per_class.returncode == 2, one_per_class.stderr
    assert "intra-class FID needs at least 2 real images of every class" in one_per_class.stderr
    raw["eval"]["metrics"] = ["fid", "kid", "kmmd", "prdc", "memorization"]  # one image of some car classes
    suite = write_suite(tmp_path / "stanford.yaml", raw)

    ok = run_cli("--suite", suite, "--data-root", data, "--source-ckpt", ckpt, "--dry-run", cache_dir=cache_dir)
    assert ok.returncode == 0, ok.stderr
    assert "target cars10: 4 stanford_cars images" in ok.stdout and "target dogs10: 6 stanford_dogs images" in ok.stdout
    assert "cars10-1shot-freezed-s0" in ok.stdout and "# 96 cells" in ok.stdout
    for target in ("cars10", "dogs10"):  # the share of the reference images that are training images, per target
        assert f"# target {target}: training images among the reference images: " in ok.stdout

    for args, message in (
        (["--suite", "stanford", "--dry-run"], "stanford_cars: no data root given"),
        (["--suite", "stanford", "--data-root", tmp_path / "none", "--dry-run"], "does not exist"),
        (["--suite", suite, "--data-root", data, "--dry-run"], "needs a checkpoint"),
    ):
        result = run_cli(*args, cache_dir=cache_dir)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
        # The plan needs no data: a dry run shows the stage spans and cells before the input error.
        plan = result.stdout
        assert "# stage schedules (steps):" in plan and "-transfergan-s0 " in plan, plan[-2000:]
