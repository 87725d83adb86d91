"""The cdc2021 suite through the real CLI: its dry run without data, and a smoke run on stand-ins.

Stand-ins: a tiny rosinality stylegan2-pytorch checkpoint (train.py's file layout) at 16 px, a
miniature Babies set (10 training images, a 12-image full set), pytorch-fid's FID Inception with
random weights, a random VGG16 for LPIPS and clean-fid's scripted stand-in; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import re

import pytest
import torch
import yaml

from benchmark.nets.stylegan2 import StyleGAN2Config, StyleGAN2Discriminator, StyleGAN2Generator
from tests.datasets.layouts import write_jpeg
from tests.test_cli import run_cli

RESOLUTION = 16  # the smoke run's nets: CDC's protocol on a 16 px StyleGAN2 (FID's Inception resizes to 299)


def test_dry_run_without_data_shows_the_protocol_published_values_and_cells_then_names_what_is_missing(
    cache_dir, tmp_path
):
    env = {"GTB_SOURCE_CKPT": "", "GTB_CHURCH_CKPT": ""}
    result = run_cli("--suite", "cdc2021", "--dry-run", "--out", tmp_path / "out", cache_dir=cache_dir, env=env)
    assert result.returncode == 2
    out = result.stdout.splitlines()
    for line in (
        '# protocol: CDC 2021 (Ojha et al. 2021, "Few-shot image generation via cross-domain correspondence", '
        "CVPR 2021)",
        "# training: batch 4, checkpoint every 1,000 steps",
        "# method tgan-ada: the shared step with ada True, ada_target 0.6, ada_length 500000, ada_every 4",
        "# target babies: babies train split, all classes, 10 per class, crop center, unconditional; evaluated "
        "every 1,000 steps on 5,000 generated images against its full split: fid_cdc, intra_lpips, intra_lpips_std",
        "# target haunted: haunted train split, all classes, 10 per class, crop center, unconditional; evaluated "
        "every 1,000 steps on 5,000 generated images: intra_lpips, intra_lpips_std",
        "# published babies fid_cdc: transfergan 104.79, tgan-ada 102.58, ewc 87.41, cdc 74.39, dcl 52.56",
        "# published sunglasses fid_cdc: transfergan 55.61, tgan-ada 53.64, ewc 59.73, cdc 42.13, dcl 38.01",
        "# published landscapes intra_lpips: transfergan .601, tgan-ada .643, ewc .596, cdc .674, dcl .626",
        "# published amedeo intra_lpips_std: transfergan .026, tgan-ada .019, ewc .028, cdc .029, dcl .043",
        "#   cdc: train 0-5000",
        "#   minegan: mine 0-100, finetune 100-5000",
    ):
        assert line in out, line
    cells = [line.split()[0] for line in out if re.match(r"  \S+-10shot-\S+-s0  \[", line)]
    assert len(cells) == 9 * 17 and "babies-10shot-tgan-ada-s0" in cells and "landscapes-10shot-cdc-s0" in cells
    assert result.stderr.startswith("error: babies: no data root given; pass --data-root DIR")
    assert len(result.stderr.strip().splitlines()) == 1


def _checkpoint(path):
    """A rosinality train.py file (g, d, g_ema, args) of a tiny 16 px, 3-channel StyleGAN2."""
    config = StyleGAN2Config(resolution=RESOLUTION, style_dim=16, n_mlp=2, channels={4: 16, 8: 8, 16: 8})
    torch.manual_seed(0)
    g, d = StyleGAN2Generator(config), StyleGAN2Discriminator(config)
    args = argparse.Namespace(arch="stylegan2", size=RESOLUTION, channel_multiplier=2, latent=16, n_mlp=2)
    torch.save({"g": g.state_dict(), "d": d.state_dict(), "g_ema": g.state_dict(), "args": args}, path)
    return path


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    from benchmark.features.pytorch_fid_inception import FILENAME as PT_INCEPTION
    from benchmark.features.vgg import FILENAME as VGG16
    from tests.features.standin import random_pt_inception_state, random_vgg16_state, save_standin

    folder = tmp_path_factory.mktemp("cdc2021")
    for i in range(10):
        write_jpeg(folder / "data" / "babies" / "train" / f"{i:02d}.jpg", i)
    for i in range(12):
        write_jpeg(folder / "data" / "babies" / "full" / f"{i:02d}.jpg", i)
    torch.save(random_pt_inception_state(), folder / PT_INCEPTION)
    torch.save(random_vgg16_state(), folder / VGG16)
    return {
        "data": folder / "data",
        "env": {
            "GTB_SOURCE_CKPT": str(_checkpoint(folder / "550000.pt")),
            "GTB_PT_INCEPTION_PATH": str(folder / PT_INCEPTION),
            "GTB_VGG16_PATH": str(folder / VGG16),
            "GTB_INCEPTION_PATH": str(save_standin(folder)),
        },
    }


def test_smoke_run_writes_tables_in_the_cdc_fid_convention_beside_the_published_values(tmp_path, stand_ins, cache_dir):
    # cdc2021 as shipped on the 16 px stand-in; its smoke budget evaluates once, on 16 images: FID's 2,048-d
    # Inception and eigendecompositions dominate a smoke run on a busy CPU (about 10 s per evaluation)
    smoke = {"train": {"steps": 2, "batch_size": 4, "eval_every": 2, "log_every": 1}, "eval": {"n_fake": 16, "grid": 4}}
    suite = tmp_path / "cdc2021-16px.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "extends": "cdc2021",
                "resolution": RESOLUTION,
                "sources": {name: {"options": {"resolution": RESOLUTION}} for name in ("ffhq256", "church256")},
                "budgets": {"smoke": smoke},
            }
        )
    )
    out = tmp_path / "out"
    result = run_cli(
        "--suite", suite, "--targets", "babies", "--methods", "tgan-ada", "cdc", "--budget", "smoke",
        "--data-root", stand_ins["data"], "--device", "cpu", "--jobs", "1", "--out", out, "--no-progress",
        cache_dir=cache_dir, env=stand_ins["env"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    md = (out / "tables" / "cdc2021" / "results.md").read_text()
    assert "FID (CDC): the CDC convention" in md  # the caption names the FID convention
    lines = [line for line in md[: md.index("**Cost.**")].splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].split("|")]
    rows = {cells[1]: cells for cells in ([c.strip() for c in line.split("|")] for line in lines[2:])}
    fid = next(i for i, h in enumerate(header) if h.startswith("babies") and "FID (CDC)" in h)
    lpips = next(i for i, h in enumerate(header) if h.startswith("babies") and "Intra-LPIPS ↑" in h)
    for label in ("tgan-ada", "cdc"):
        assert float(rows[label][fid].strip("*").split()[0]) > 0
        assert 0 <= float(rows[label][lpips].strip("*").split()[0]) <= 1
    assert rows["*published:* transfergan"][fid] == "104.79" and rows["*published:* cdc"][fid] == "74.39"
    assert rows["*published:* dcl"][lpips] == ".579"
    assert "Rows marked published hold the values CDC 2021 reports" in md

    runs = out / "runs" / "cdc2021"
    ada_run = next(p for p in runs.iterdir() if p.name.startswith("babies-10shot-tgan-ada-s0"))
    assert yaml.safe_load((ada_run / "config.yaml").read_text())["train"]["ada"] is True
    assert "ada_p=" in (ada_run / "log.txt").read_text()
    cdc_run = next(p for p in runs.iterdir() if p.name.startswith("babies-10shot-cdc-s0"))
    assert "ada" not in yaml.safe_load((cdc_run / "config.yaml").read_text())["train"]
    assert "cdc_kl=" in (cdc_run / "log.txt").read_text()
