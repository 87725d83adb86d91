"""benchmarks/gpu_check.py: the --dry run computes every row of the table; jobs run isolated with a time limit."""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks import gpu_check

METHODS = ("transfergan", "freezed", "minegan", "hypermod")
METRICS = ("fid", "kid", "kmmd", "prdc")
SMALL, BIG = gpu_check.DRY_SIZES.metric_rows


def test_dry_run_computes_every_row(tmp_path):
    code = gpu_check.main(["--dry", "--out", str(tmp_path)])
    [folder] = tmp_path.iterdir()
    assert folder.name == "00000-dry"
    report = json.loads((folder / "table.json").read_text())
    rows = {row["key"]: row for row in report["rows"]}

    expected = [f"train/{m}/{v}" for m in METHODS for v in ("defaults", "opt-in")]
    expected += ["train/transfergan-stylegan2/defaults", "fid/path"]  # StyleGAN2's recipe against train.py's loop
    expected += [f"metrics/{n}/{metric}" for n in (SMALL, BIG) for metric in METRICS]
    expected += ["smoke/stanford", "tests/gpu"]
    assert [row["key"] for row in report["rows"]] == expected
    failed = {key: row["note"] for key, row in rows.items() if row["status"] != "ok"}
    assert not failed and code == 0
    assert report["dry"] and report["environment"]["torch"] and report["environment"]["device"].startswith("CPU")

    for method in METHODS:
        defaults, opt_in = rows[f"train/{method}/defaults"], rows[f"train/{method}/opt-in"]
        for row in (defaults, opt_in):
            ours, reference = row["values"]["ours"], row["values"]["reference"]
            assert ours["images_per_second"] > 0 and reference["images_per_second"] > 0
            assert row["values"]["speed_ratio"] > 0 and row["met"] in (True, False)
        assert opt_in["values"]["ours"]["amp"] and not defaults["values"]["ours"]["amp"]
        assert opt_in["values"]["reference"] == defaults["values"]["reference"]  # one reference per method
    stylegan2 = rows["train/transfergan-stylegan2/defaults"]["values"]
    assert stylegan2["ours"]["images_per_second"] > 0 and stylegan2["reference"]["images_per_second"] > 0

    # The FID path and the metrics' agreement with their references are real checks even at tiny sizes.
    fid = rows["fid/path"]["values"]
    assert fid["relative_fid_difference"] <= gpu_check.FID_PATH_AGREEMENT
    assert fid["images_per_second"]["ours"] > 0 and fid["images_per_second"]["clean-fid"] > 0
    for metric in ("fid", "kid", "prdc"):
        assert rows[f"metrics/{SMALL}/{metric}"]["values"]["relative_difference"] <= gpu_check.METRIC_AGREEMENT
    for metric in METRICS:
        assert rows[f"metrics/{BIG}/{metric}"]["values"]["ours"]["seconds"] > 0
        assert rows[f"metrics/{BIG}/{metric}"]["met"] in (True, False)
    assert rows[f"metrics/{SMALL}/kmmd"]["met"] is None  # no reference to agree with

    smoke = rows["smoke/stanford"]["values"]
    assert smoke["returncode"] == 0 and smoke["finished"] == smoke["cells"] == 1
    tests = rows["tests/gpu"]["values"]
    assert "tests/metrics/test_gpu.py" in tests["files"] and sum(tests["counts"].values()) >= 3

    # The dry run profiles one training row whatever its goal says (on a GPU: each missed goal).
    profile = rows["train/transfergan/defaults"]["profile"]
    assert profile and "Name" in Path(profile).read_text()
    assert not rows["train/freezed/defaults"]["profile"]
    table = (folder / "table.md").read_text()
    assert "| check | ours | reference | ratio | goal | met |" in table
    assert all(row["check"] in table for row in report["rows"])
    assert math.isfinite(report["seconds"])


def test_isolated_jobs_report_their_result_or_are_killed(tmp_path):
    ctx = gpu_check.Context(tmp_path, "cpu", True, gpu_check.DRY_SIZES, None)
    probe = gpu_check.Job("environment", "environment", {}, 60)
    outcome = gpu_check.run_isolated(probe, ctx, timeout=300)
    assert outcome["result"]["torch"] and outcome["result"]["device"].startswith("CPU")
    slow = gpu_check.Job("environment-slow", "environment", {}, 60)
    outcome = gpu_check.run_isolated(slow, ctx, timeout=0.01)
    assert "killed after" in outcome["error"]
    assert not (tmp_path / "jobs" / "environment-slow.result.json").exists()
