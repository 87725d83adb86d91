"""Inputs from the real world through the real CLI: each is refused before any training, in one line, exit 2.

The conditions come from public bug reports against the tools this field uses (failed Google Drive
downloads saved as checkpoints, archives passed as data roots, YAML 1.1 booleans, read-only caches).
Each reported instance runs ``run_benchmark.py`` in a subprocess; their variants call ``benchmark.cli.main``
in this process (the same code from argument parsing to the exit code, without a new interpreter each).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import tiny_suite, write_suite
from tests.test_errors import GOOGLE_DRIVE_PAGE

ROOT = Path(__file__).resolve().parent.parent
READ_ONLY = "/sys/gtb-read-only"  # writes fail here even for root (EPERM), as on a read-only file system


def cli(*args, cache_dir, env=None):
    full_env = {**os.environ, "GTB_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1", **(env or {})}
    full_env = {k: str(v) for k, v in full_env.items() if v is not None}  # None: unset
    return subprocess.run(
        [sys.executable, str(ROOT / "run_benchmark.py"), *map(str, args)],
        capture_output=True, text=True, timeout=300, env=full_env, cwd=ROOT,
    )  # fmt: skip


def in_process(capsys, *args) -> subprocess.CompletedProcess:
    """``benchmark.cli.main`` in this process, as a CompletedProcess (stderr must show no traceback either)."""
    from benchmark.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def one_line_error(result) -> str:
    """The single stderr line of a refused command (exit 2, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "\x1b" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def checkpoint_suite(tmp_path, checkpoint: Path, **overrides) -> Path:
    """The tiny digits suite with a rosinality source: the dry run checks the checkpoint's kind only."""
    raw = tiny_suite(**overrides)
    raw["sources"]["ffhq"] = {"kind": "rosinality-stylegan1", "path": str(checkpoint)}
    raw["methods"] = ["transfergan", {"name": "freezed", "source": "ffhq"}]
    return write_suite(tmp_path / "ckpt.yaml", raw)


def test_an_html_page_saved_as_the_checkpoint_fails_the_dry_run(tmp_path, cache_dir):
    page = tmp_path / "stylegan-256px-new.model"
    page.write_bytes(GOOGLE_DRIVE_PAGE)
    line = one_line_error(cli("--suite", checkpoint_suite(tmp_path, page), "--dry-run", cache_dir=cache_dir))
    assert f"{page}: cannot be read as a torch checkpoint: it is an HTML page" in line
    assert "the download failed" in line and "download it again" in line and "weights_only" not in line


def test_a_pickled_model_as_the_checkpoint_fails_the_dry_run_without_colour_codes(tmp_path, cache_dir, capsys):
    model = tmp_path / "stylegan.model"
    torch.save(torch.nn.Linear(2, 2), model)
    line = one_line_error(cli("--suite", checkpoint_suite(tmp_path, model), "--dry-run", cache_dir=cache_dir))
    assert "it is a pickled Python object that imports torch.nn.modules.linear.Linear" in line
    assert "weights_only=False" not in line and "trust" not in line
    good = tmp_path / "good.model"
    torch.save({"g_running": {"style.1.linear.bias": torch.zeros(1)}}, good)
    ok = in_process(capsys, "--suite", checkpoint_suite(tmp_path, good), "--dry-run", "--cache-dir", cache_dir)
    assert ok.returncode == 0, ok.stderr
    assert f"# source ffhq: rosinality-stylegan1 from {good} (a torch checkpoint (torch.save))" in ok.stdout


def test_feature_network_files_are_checked_by_the_dry_run(tmp_path, cache_dir, capsys, monkeypatch):
    page = tmp_path / "inception-2015-12-05.pt"
    page.write_bytes(GOOGLE_DRIVE_PAGE)
    monkeypatch.setenv("GTB_INCEPTION_PATH", str(page))
    suite = write_suite(tmp_path / "inception.yaml", tiny_suite(feature_extractor="inception"))
    line = one_line_error(in_process(capsys, "--suite", suite, "--dry-run", "--cache-dir", cache_dir))
    assert "inception: " in line and "is not a TorchScript file: it is an HTML page" in line
    vgg = tmp_path / "vgg16-397923af.pth"
    torch.save(torch.nn.Linear(2, 2), vgg)
    monkeypatch.setenv("GTB_VGG16_PATH", str(vgg))
    raw = tiny_suite(perceptual="vgg16", methods=["transfergan", "glo"])  # glo's loss uses the perceptual network
    suite = write_suite(tmp_path / "vgg.yaml", raw)
    line = one_line_error(in_process(capsys, "--suite", suite, "--dry-run", "--cache-dir", cache_dir))
    assert "vgg16: " in line and "it is a pickled Python object" in line
    ok = in_process(capsys, "--suite", suite, "--dry-run", "--methods", "transfergan", "--cache-dir", cache_dir)
    assert ok.returncode == 0, ok.stderr  # no method uses VGG16: its file is not needed


def test_an_archive_as_data_root_says_to_extract_it(tmp_path, cache_dir, capsys):
    archive = tmp_path / "256_ObjectCategories.tar"
    archive.write_bytes(b"\0" * 2048)
    expected = f"data root {archive} is a file, not a folder: extract the archive and pass the folder it extracts to"
    assert expected in one_line_error(
        cli("--suite", "caltech-fewshot", "--data-root", archive, "--dry-run", cache_dir=cache_dir)
    )
    assert expected in one_line_error(in_process(capsys, "inspect-data", "caltech256", "--data-root", archive))


def conditional_suite(tmp_path, shots, **eval_options) -> Path:
    raw = tiny_suite(targets=[{"name": "digits789", "dataset": "digits", "classes": [7, 8, 9], "conditional": True}])
    raw["targets"][0]["shots"] = shots
    raw["eval"].update(eval_options)
    return write_suite(tmp_path / "conditional.yaml", raw)


def test_too_few_generated_images_per_class_fail_the_dry_run(tmp_path, cache_dir, capsys):
    suite = conditional_suite(tmp_path, [3], n_fake=5, prdc_k=3)
    line = one_line_error(cli("--suite", suite, "--dry-run", cache_dir=cache_dir))
    assert "intra-class FID needs at least 2 generated images of every class; eval.n_fake 5 over 3 classes" in line
    out = tmp_path / "out"
    real_run = in_process(capsys, "--suite", suite, "--no-progress", "--out", out, "--cache-dir", cache_dir)
    assert "intra-class FID needs at least 2 generated images" in one_line_error(real_run)
    assert not out.exists()  # refused before the results folder, let alone training


def test_more_shots_than_a_class_has_fail_the_dry_run(tmp_path, cache_dir, capsys):
    suite = conditional_suite(tmp_path, [3, 400])
    line = one_line_error(in_process(capsys, "--suite", suite, "--dry-run", "--cache-dir", cache_dir))
    assert "target digits789: 3 class(es) have fewer images than the 400 shots asked (train split): '7' (1" in line


def test_a_read_only_cache_is_one_line_before_anything_runs(tmp_path, cache_dir, suite_file):
    out = tmp_path / "out"
    result = cli(
        "--suite", suite_file, "--no-progress", "--out", out, "--cache-dir", f"{READ_ONLY}/cache", cache_dir=cache_dir
    )
    line = one_line_error(result)
    assert f"cache folder {READ_ONLY}/cache (--cache-dir) cannot be used: it is not writable" in line
    assert "pass --cache-dir DIR or set GTB_CACHE_DIR to a writable folder" in line
    assert not out.exists()


def test_unusable_cache_and_output_folders_fail_the_dry_run(tmp_path, cache_dir, suite_file, capsys, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    dry = ["--suite", suite_file, "--dry-run"]
    monkeypatch.setenv("GTB_CACHE_DIR", f"{READ_ONLY}/cache")
    line = one_line_error(in_process(capsys, *dry))
    assert f"cache folder {READ_ONLY}/cache ($GTB_CACHE_DIR) cannot be used: it is not writable" in line
    line = one_line_error(in_process(capsys, *dry, "--cache-dir", a_file))
    assert f"cache folder {a_file} (--cache-dir) cannot be used: it is a file, not a folder" in line
    monkeypatch.setenv("GTB_CACHE_DIR", str(cache_dir))
    line = one_line_error(in_process(capsys, *dry, "--out", a_file))
    assert f"output folder {a_file} cannot be used: it is a file, not a folder; choose another with --out" in line
    line = one_line_error(in_process(capsys, *dry, "--out", a_file / "results"))
    assert f"output folder {a_file / 'results'} cannot be used: {a_file} is a file, not a folder" in line
    monkeypatch.delenv("GTB_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", READ_ONLY)
    line = one_line_error(in_process(capsys, *dry))
    assert f"cache folder {READ_ONLY}/.cache/gan-transfer-benchmark (the default) cannot be used" in line
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty means unset, not the current folder
    assert f"{READ_ONLY}/.cache/gan-transfer-benchmark (the default)" in one_line_error(in_process(capsys, *dry))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "tiny.yaml"]  # the checks created nothing


def test_yaml_booleans_as_class_names_and_bad_seeds_are_one_line(tmp_path, cache_dir, capsys):
    raw = tiny_suite()
    raw["targets"][0]["classes"] = ["CLASS_A", "CLASS_B"]
    text = write_suite(tmp_path / "s.yaml", raw).read_text().replace("CLASS_A", "no").replace("CLASS_B", "on")
    suite = tmp_path / "classes.yaml"
    suite.write_text(text)  # class folders named "no" and "on", written as a user would, unquoted
    line = one_line_error(cli("--suite", suite, "--dry-run", cache_dir=cache_dir))
    assert "targets[0].classes[0] is no, which YAML reads as the boolean false: quote it ('no') if it is a name" in line
    bad_seed = in_process(capsys, "--suite", "toy", "--seeds", "one", "--dry-run")
    assert "--seeds takes whole numbers >= 0, e.g. --seeds 0 1 2; got one" in one_line_error(bad_seed)
    for jobs in ("0", "-1"):  # 0 used to fall back to the default silently
        no_jobs = in_process(capsys, "--suite", "toy", "--jobs", jobs, "--dry-run")
        assert f"--jobs takes a whole number >= 1 (cells run in parallel), e.g. --jobs 2; got {jobs}" in one_line_error(
            no_jobs
        )


def test_inspect_data_reports_a_partial_copy(tmp_path, cache_dir, capsys):
    from tests.datasets.test_partial_copies import partial_flowers

    root = partial_flowers(tmp_path / "flowers")
    result = cli("inspect-data", "flowers102", "--data-root", root, "--split", "all", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flowers102 (all split): 12 images in 102 classes"
    assert "problems (1):" in lines
    assert any("99 of 102 classes have no images" in line and "(+89 more)" in line for line in lines)
    as_json = in_process(capsys, "inspect-data", "flowers102", "--data-root", root, "--split", "all", "--json")
    report = json.loads(as_json.stdout)
    assert report["n_images"] == 12 and len(report["empty_classes"]) == 99


def test_a_cell_whose_last_checkpoint_is_damaged_finishes_on_a_plain_rerun_with_the_same_metrics(
    tmp_path, cache_dir, capsys, monkeypatch
):
    """Stopped by a full disk after its step-3 checkpoint (one line, the cell left interrupted), last.pt then
    cut in half (a node that died while the folder was copied): the plain rerun warns, naming the file,
    resumes from previous.pt (step 2) and ends with the metrics of a clean run."""
    import benchmark.runner

    raw = tiny_suite(
        methods=["transfergan"],
        targets=[{"name": "digit7", "dataset": "mnist5k", "classes": [7], "shots": [5], "eval_split": "test"}],
        train={
            "steps": 4,
            "batch_size": 4,
            "eval_every": 2,
            "checkpoint_every": 1,
            "log_every": 1,
            "hflip": False,
            "r1_every": 2,
        },
    )
    suite = write_suite(tmp_path / "ckpt.yaml", raw)
    args = ["--suite", suite, "--no-progress", "--no-report", "--jobs", "1"]
    monkeypatch.setenv("GTB_CACHE_DIR", str(cache_dir))
    assert in_process(capsys, *args, "--out", tmp_path / "clean").returncode == 0

    append = benchmark.runner.append_jsonl

    def full_disk_at_4(row, path):  # the disk fills after the step-3 checkpoint
        if row["step"] == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        append(row, path)

    with monkeypatch.context() as patch:
        patch.setattr(benchmark.runner, "append_jsonl", full_disk_at_4)
        full = one_line_error(in_process(capsys, *args, "--out", tmp_path / "damaged"))
    (last,) = (tmp_path / "damaged").glob("runs/*/*/checkpoints/last.pt")
    assert f"no space left on the device (or the disk quota is reached) writing in {last.parent.parent}" in full
    assert "run the same command again" in full
    assert json.loads((last.parent.parent / "status.json").read_text())["state"] == "interrupted"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])

    rerun = in_process(capsys, *args, "--out", tmp_path / "damaged")
    assert rerun.returncode == 0, rerun.stderr
    log_text = (last.parent.parent / "log.txt").read_text()
    assert f"checkpoint {last} cannot be read" in log_text and "previous.pt (step 2) instead" in log_text

    def metrics(out):
        (path,) = out.glob("runs/*/*/metrics.jsonl")
        return [(r["step"], r["metrics"]) for r in map(json.loads, path.read_text().splitlines())]

    assert [s for s, _ in metrics(tmp_path / "damaged")] == [0, 2, 4]
    assert metrics(tmp_path / "damaged") == metrics(tmp_path / "clean")


def test_an_afhq_v2_copy_fails_the_dry_run_of_a_v1_suite_naming_both_versions(tmp_path, cache_dir, capsys):
    from tests.datasets.test_partial_copies import _afhq_v2

    _afhq_v2(tmp_path / "data" / "afhq")
    result = in_process(capsys, "--suite", "afhq-fewshot", "--data-root", tmp_path / "data", "--dry-run",
                        "--out", tmp_path / "out")  # fmt: skip
    line = one_line_error(result)
    assert "holds AFHQ v2 (train/ and test/ of PNG images, afhq_v2.zip)" in line
    assert "the suite asks for AFHQ v1" in line
