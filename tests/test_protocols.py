"""Paper-protocol suites through the real CLI: what a dry run shows, and published values in the tables.

Data are miniature official layouts (tests/datasets/layouts.py) or IDX files written here; the
source is a stand-in rosinality checkpoint and the Inception a stand-in TorchScript file, so
nothing is downloaded.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import yaml

from tests.datasets.layouts import build_layout, idx_bytes
from tests.latex_check import compile_tables
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def stanford_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("stanford-data")
    build_layout("stanford_cars", data / "stanford_cars")
    build_layout("stanford_dogs", data / "stanford_dogs")
    return data


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.sources.checkpoints import save, training_checkpoint

    return save(training_checkpoint(), tmp_path_factory.mktemp("ckpt") / "stylegan-256px-new.model")


@pytest.fixture(scope="module")
def feature_files(tmp_path_factory):
    """Stand-in Inception and VGG16 files: the dry run checks that each is the right kind (no weights are read)."""
    import torch

    from tests.features.standin import save_standin

    folder = tmp_path_factory.mktemp("features")
    torch.save({"features.0.weight": torch.zeros(1)}, folder / "vgg16-397923af.pth")
    return {"GTB_INCEPTION_PATH": str(save_standin(folder)), "GTB_VGG16_PATH": str(folder / "vgg16-397923af.pth")}


def miniature(path, **overrides):
    """``stanford`` as shipped, extended by what a miniature data set needs: PRDC's k below the 4 car images."""
    path.write_text(yaml.safe_dump({"extends": "stanford", "eval": {"prdc_k": 3}, **overrides}, sort_keys=False))
    return path


def test_stanford_dry_run_shows_parks_protocol(tmp_path, stanford_data, checkpoint, cache_dir, feature_files):
    suite = miniature(tmp_path / "stanford-mini.yaml")
    result = run_cli("--suite", suite, "--data-root", stanford_data, "--source-ckpt", checkpoint, "--dry-run",
                     cache_dir=cache_dir, env=feature_files)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    resolved = yaml.safe_load(out[: out.index("\n# ")])
    assert resolved["name"] == "stanford" and resolved["protocol"]["name"] == "Park et al. 2023"
    assert resolved["train"]["steps"] == 50_000 and resolved["train"]["batch_size"] == 8
    assert resolved["train"]["eval_every"] == 1000 and resolved["train"]["checkpoint_every"] == 10_000
    assert resolved["eval"]["n_fake"] == 5000 and resolved["resolution"] == 256
    for line in (
        "# target cars: 4 stanford_cars images (train split), 3 classes",
        "# target dogs: 9 stanford_dogs images (all split), 3 classes",
        '# protocol: Park et al. 2023 (Park et al. 2023, "How to train your pre-trained GAN models", '
        "Applied Intelligence 53(22))",
        "# training: batch 8, checkpoint every 10,000 steps",
        "# target cars: stanford_cars train split, all classes, all images, crop bbox, unconditional; evaluated "
        "every 1,000 steps on 5,000 generated images: fid, kid, kmmd, precision, recall, density, coverage, "
        "memorization_distance",
        # a whole data set is scored against itself by design: the share is printed, with no warning
        "# target cars: training images among the reference images: 100% at all images (at most 100% of a class)",
        "#   freezed: d_trainable_blocks=2",  # FreezeD D5: feature_loc 7 - 5
        "#   freezeg: g_trainable_blocks=4",  # Cars: FreezeG G3
        "#   partial: g_frozen_blocks=3, d_frozen_blocks=3",  # Cars: G4 / D4
        "#   freezeg: g_trainable_blocks=5",  # Dogs: G2
        "#   partial: g_frozen_blocks=4, d_frozen_blocks=6",  # Dogs: G5 / D7
        "# published cars fid: partial 10.84, MineGAN with GLO (not run) 33.65",
        "# published dogs fid: freezeg 29.83, scaleshift 57.30",
        "# published ranking dogs coverage: best fd; worst scaleshift",
        "# steps per cell: 50,000 steps x 90 cells, 60,000 steps x 6 cells; total 4,860,000 training steps",
        "# stage schedules (steps):",
        "#   hypermod: self-align 0-10000 (G only, no data), train 10000-60000",
        "#   adafm: specific 0-10000, adafm 10000-50000",
        "# 96 cells on cpu:",
    ):
        assert line in out.splitlines(), line
    assert "published ranking flowers" not in out  # park2023's other targets are not this suite's
    assert "# warning" not in out
    assert "  cars-all-partial-s0  [" in out and "  dogs-all-hypermod-s2  [" in out


def test_stanford_smoke_run_tables_show_parks_published_values(tmp_path, stanford_data, checkpoint, cache_dir):
    """A --budget smoke run of stanford from the stand-in checkpoint, made cheap enough for a test: the
    source runs at 8 px and the metrics use the digits classifier's 64-d features (FID's
    eigendecompositions on 2,048-d Inception features take minutes on a busy 2-core CPU)."""
    suite = miniature(
        tmp_path / "stanford-8px.yaml",
        resolution=8,
        sources={"ffhq256": {"options": {"resolution": 8}}},
        feature_extractor="digits-classifier",
        train={"eval_at_start": False},
    )
    out = tmp_path / "out"
    result = run_cli(
        "--suite", suite, "--data-root", stanford_data, "--source-ckpt", checkpoint, "--budget", "smoke",
        "--methods", "scaleshift", "--seeds", "0", "--jobs", "2", "--device", "cpu", "--out", out, "--no-progress",
        cache_dir=cache_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (out / "runs" / "stanford" / "protocol.yaml").is_file()
    tables = out / "tables" / "stanford"

    md = (tables / "results.md").read_text()
    results_part = md[: md.index("**Cost.**")]
    lines = [line for line in results_part.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].split("|")]
    rows = {cells[1]: cells for cells in ([c.strip() for c in line.split("|")] for line in lines[2:])}
    cars_fid, dogs_fid = header.index("cars all · FID ↓"), header.index("dogs all · FID ↓")
    assert float(rows["scaleshift"][cars_fid].strip("*")) > 0  # ours, from the run (bold: the only method)
    assert rows["*published:* partial"][cars_fid] == "10.84"
    assert rows["*published:* MineGAN with GLO (not run)"][cars_fid] == "33.65"
    assert rows["*published:* freezeg"][dogs_fid] == "29.83"
    assert rows["*published:* scaleshift"][dogs_fid] == "57.30"
    assert "Rows marked published hold the values Park et al. 2023 reports" in md

    tex = (tables / "results.tex").read_text()
    assert tex.count(r"\textit{published: Park et al. 2023}") == 2  # under cars and under dogs
    assert "\npartial & 10.84 & " in tex and "\nfreezeg & 29.83 & " in tex
    compile_tables(tex, tmp_path / "latex")


def write_mnist(root, per_digit: int = 1010) -> None:
    """MNIST/raw/ IDX files with ``per_digit`` train images of each digit: a bar whose height is the
    digit, and random specks so that no two images are alike."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", per_digit), ("t10k", 10)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), count)
        images = (rng.random((len(labels), 28, 28)) < 0.05).astype(np.uint8) * 255
        for i, label in enumerate(labels):
            images[i, 4 : 10 + 1 + int(label), 6 + i % 5 : 22] = 255
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))


def test_minegan_mnist_dry_run_on_idx_files(tmp_path, cache_dir):
    write_mnist(tmp_path / "mnist")
    result = run_cli("--suite", "minegan-mnist", "--data-root", tmp_path / "mnist", "--dry-run", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    for line in (
        "# target digit5: 1010 mnist images (train split), 1 classes",
        # these files hold 1,010 fives (MNIST's train split: 5,421), so 1,000 shots are nearly all of them
        "# target digit5: training images among the reference images: 99% at 1000 shots (at most 99% of a class)",
        "# warning: target digit5 at 1000 shots: up to 99% of a class's reference images are training images "
        "(more than 50%), so FID and intra-FID reward copying them; lower the shots, choose larger classes or "
        "score against another split (eval_split)",
        "# source mnist-no5: pretrained by the harness (toy-pretrain)",
        "# protocol: MineGAN MNIST (Wang et al. 2020) (Wang et al. 2020, MineGAN, CVPR (official code: "
        "yaxingwang/MineGAN))",
        "# target digit9: mnist train split, 1 classes, 1000 per class, crop center, unconditional; evaluated every "
        "2,000 steps on 5,000 generated images: fid, kid, kmmd, precision, recall, density, coverage, memorization",
        "# steps per cell: 20,000 steps x 135 cells, 30,000 steps x 9 cells; total 2,970,000 training steps",
        "#   minegan-noft: mine 0-20000",
        "#   adafm: specific 0-4000, adafm 4000-20000",
        "# 144 cells on cpu:",
    ):
        assert line in out, line
    cells = [line.split()[0] for line in out if line.startswith("  digit")]
    assert len(cells) == 144 and "digit8-1000shot-minegan-noft-s1" in cells
    resolved = yaml.safe_load(result.stdout[: result.stdout.index("\n# ")])
    sources = {t["name"]: t["source"] for t in resolved["targets"]}
    assert sources == {"digit5": "mnist-no5", "digit8": "mnist-no8", "digit9": "mnist-no9"}
    held_out = {name: set(range(10)) - set(s["options"]["classes"]) for name, s in resolved["sources"].items()}
    assert held_out == {"mnist-no5": {5}, "mnist-no8": {8}, "mnist-no9": {9}}


def test_minegan_mnist_smoke_pretrains_the_targets_own_source_on_the_users_mnist(tmp_path, cache_dir):
    """One target (bare-name inheritance through extends): its source pretrains on MNIST from --data-root."""
    write_mnist(tmp_path / "mnist")
    suite = tmp_path / "digit8.yaml"
    suite.write_text("extends: minegan-mnist\ntargets: [digit8]\n")
    out = tmp_path / "out"
    result = run_cli(
        "--suite", suite, "--data-root", tmp_path / "mnist", "--budget", "smoke", "--methods", "transfergan",
        "--seeds", "0", "--jobs", "1", "--device", "cpu", "--out", out, "--no-progress", cache_dir=cache_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run,) = (out / "runs" / "minegan-mnist").glob("digit8-1000shot-transfergan-s0-*")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["source"] == "mnist-no8" and 8 not in config["sources"]["mnist-no8"]["options"]["classes"]
    assert "data_root" not in config["sources"]["mnist-no8"]["options"]  # the user's path is not in the hash
    assert list(cache_dir.glob("sources/mnist-no8-*.pt")), "the source was pretrained and cached"
    assert "kmmd" in (run / "result.json").read_text()
