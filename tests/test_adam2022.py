"""Suite adam2022: the dry run shows the protocol, AdAM's and RICK's stage spans and the published
values; with stand-in files (a tiny rosinality StyleGAN2 checkpoint, miniature image folders,
stand-in feature networks) a smoke run of one target with both methods finishes every cell."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.config import read_suite
from benchmark.features import torchvision_inception, vgg
from benchmark.nets.stylegan2 import StyleGAN2Config, StyleGAN2Discriminator, StyleGAN2Generator
from tests.conftest import write_suite
from tests.features.standin import random_tv_inception_state, random_vgg16_state, save_standin
from tests.sources.checkpoints2 import hashed_state, parameter_layout
from tests.test_cli import run_cli

TINY = StyleGAN2Config(resolution=16, style_dim=16, n_mlp=2, channels={4: 16, 8: 8, 16: 8})


def test_the_dry_run_prints_the_protocol_stage_spans_and_published_values(cache_dir):
    result = run_cli("--suite", "adam2022", "--dry-run", cache_dir=cache_dir)
    plan = result.stdout
    assert result.returncode == 2 and "babies: no data root given" in result.stderr  # the plan comes first
    assert "# protocol: AdAM/RICK 10-shot (Zhao et al. 2022, 2023)" in plan
    # The official iterations per target (AdAM's for every method, RICK's own) and RICK's batch and interval.
    assert "#     on babies, sunglasses, metfaces: adam: probe 0-500, adapt 500-2000" in plan
    assert "#   adam: probe 0-500, adapt 500-3000" in plan  # AFHQ: the suite's 2,500 after probing
    rick_faces = "#     on babies, sunglasses, metfaces: rick: warmup 0-250 (D only), train 250-1750"
    assert f"#   rick, per target:\n{rick_faces}" in plan  # no target runs RICK at the suite's 2,500
    assert "#     on afhq_cat, afhq_dog, afhq_wild: rick: warmup 0-250 (D only), train 250-2250" in plan
    assert "#     on babies, sunglasses, metfaces: transfergan: train 0-1500" in plan
    assert "# method rick: batch 2, evaluated every 50" in plan
    assert plan.count("#   every method: steps 1,500") == 3 and plan.count("#   rick: steps 1,750") == 3
    for target, value in [("babies", "101.6"), ("sunglasses", "55.97"), ("metfaces", "76.81"),
                          ("afhq_cat", "64.68"), ("afhq_dog", "151.5"), ("afhq_wild", "81.3")]:  # fmt: skip
        assert f"# published {target} fid_adam: transfergan {value}" in plan
    assert "could not be read" in plan  # the unverified cells are named as such
    assert "#   adam: quantile=75" in plan and "#   rick: fisher_quantile=85, prune_quantile=0.075" in plan
    assert "fid_adam, intra_lpips" in plan and "evaluated every 100 steps" in plan


def _checkpoint(path):
    """rosinality train.py's checkpoint layout (g, g_ema, d) for the tiny config, from fixed formulas."""
    torch.manual_seed(0)
    g, d = StyleGAN2Generator(TINY), StyleGAN2Discriminator(TINY)
    torch.save(
        {  # the buffers (blur kernels, stored noise) as built, every parameter from the hashed pool
            "g": {**g.state_dict(), **hashed_state(parameter_layout(g), seed=1)},
            "g_ema": {**g.state_dict(), **hashed_state(parameter_layout(g), seed=2)},
            "d": {**d.state_dict(), **hashed_state(parameter_layout(d), lr_mlp=1.0, seed=3)},
            "latent_avg": torch.zeros(TINY.style_dim),
        },
        path,
    )
    return path


def _images(folder, n, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")


@pytest.mark.slow  # about a minute on a CPU: the full-size stand-in Inception-v3 and VGG16
def test_a_smoke_run_of_adam_and_rick_finishes_every_cell(tmp_path, cache_dir):
    weights = tmp_path / "weights"
    weights.mkdir()
    save_standin(weights)
    torch.save(random_tv_inception_state(), weights / torchvision_inception.FILENAME)
    torch.save(random_vgg16_state(), weights / vgg.FILENAME)
    data = tmp_path / "data"
    _images(data / "babies" / "train", 10, 0)
    _images(data / "babies" / "full", 12, 1)

    raw = read_suite("adam2022")
    raw["resolution"] = 16
    raw["sources"]["ffhq256"]["options"]["resolution"] = 16
    raw["targets"] = [t for t in raw["targets"] if t["name"] == "babies"]
    raw["eval"].update(batch_size=16, intra_lpips_n=16)  # a CPU runs the full-size stand-in Inception and VGG16
    raw["train"]["eval_at_start"] = False
    # The smoke budget evaluating once, on 16 images (as tests/test_cdc2021.py's): the full-size stand-in
    # Inception-v3 at 299 px dominates a smoke run on a CPU. Every stage still runs (adam's probe, rick's warm-up).
    smoke = {"train": {"steps": 4, "batch_size": 4, "eval_every": 4, "log_every": 1}, "eval": {"n_fake": 16, "grid": 4}}
    raw["budgets"] = {"smoke": smoke}
    suite = write_suite(tmp_path / "adam2022.yaml", raw)
    env = {
        "GTB_INCEPTION_PATH": str(weights),
        torchvision_inception.ENV_VAR: str(weights),
        vgg.ENV_VAR: str(weights),
    }
    ckpt = _checkpoint(tmp_path / "ffhq-16.pt")
    out = tmp_path / "out"
    args = ["--suite", suite, "--data-root", data, "--source-ckpt", ckpt, "--out", out, "--no-progress"]
    run = run_cli(*args, "--methods", "adam", "rick", "--budget", "smoke", cache_dir=cache_dir, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    folders = sorted((out / "runs" / "adam2022").iterdir())
    assert [f.name.split("-")[2] for f in folders if f.is_dir()] == ["adam", "rick"]
    for folder in (f for f in folders if f.is_dir()):
        result = json.loads((folder / "result.json").read_text())
        assert result["status"] == "finished", result
