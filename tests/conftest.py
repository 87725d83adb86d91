"""Shared fixtures: a session cache (digits classifier, toy source, prepared images) and a tiny suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml
from threadpoolctl import threadpool_limits

# Tiny networks gain nothing from intra-op threads, and spinning OpenMP threads stall badly when
# another process shares the cores (seen: 25x slower convolutions on a loaded 2-core machine).
torch.set_num_threads(1)
threadpool_limits(1)  # numpy's BLAS too: the CPU metrics run their products and eigh through it

TINY_BACKBONE = {"style_dim": 16, "n_mlp": 2, "channels": {4: 16, 8: 16, 16: 8, 32: 8}, "fused_min_resolution": 16}


def tiny_suite(**overrides) -> dict:
    """A suite on the toy suite's data (mnist5k: few-shot from its train split, scored against its
    test split) that trains in seconds: tiny networks, a few steps, few samples."""
    suite = {
        "name": "tiny",
        "description": "test suite",
        "resolution": 32,
        "image_channels": 1,
        "backbone": dict(TINY_BACKBONE),
        "sources": {
            "digits-0to6": {
                "kind": "toy-pretrain",
                "options": {"dataset": "mnist5k", "classes": [0, 1, 2, 3, 4, 5, 6], "steps": 6, "batch_size": 8},
            }
        },
        "feature_extractor": "digits-classifier",
        "targets": [
            {"name": "digit7", "dataset": "mnist5k", "classes": [7], "shots": [5], "eval_split": "test"},
            {
                "name": "digits89",
                "dataset": "mnist5k",
                "classes": [8, 9],
                "conditional": True,
                "shots": [3],
                "eval_split": "test",
            },
        ],
        "methods": ["scratch", "transfergan", "freezed"],
        "seeds": [0],
        "train": {"steps": 4, "batch_size": 4, "eval_every": 2, "log_every": 1, "hflip": False, "r1_every": 2},
        "eval": {"n_fake": 40, "batch_size": 20, "grid": 8, "kid_subsets": 4, "kid_subset_size": 10},
    }
    suite.update(overrides)
    return suite


def write_suite(path: Path, suite: dict) -> Path:
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache for the whole session: the classifier and the tiny source are trained once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def suite_file(tmp_path) -> Path:
    return write_suite(tmp_path / "tiny.yaml", tiny_suite())


@pytest.fixture(scope="session")
def tiny_source(cache_dir):
    from benchmark.nets import BackboneConfig
    from benchmark.sources import load_source

    backbone = BackboneConfig(resolution=32, image_channels=1, **TINY_BACKBONE)
    return load_source(
        "toy-pretrain", None, backbone=backbone, classes=[0, 1, 2, 3, 4, 5, 6], steps=6, batch_size=8,
        cache_dir=cache_dir, progress=False,
    )  # fmt: skip


@pytest.fixture(scope="session")
def tiny_source_stylegan2(cache_dir):
    """The tiny source on the StyleGAN2 backbone, pretrained a few steps with StyleGAN2's recipe."""
    from benchmark.nets.stylegan2 import StyleGAN2Config
    from benchmark.sources import load_source

    widths = {k: v for k, v in TINY_BACKBONE.items() if k != "fused_min_resolution"}  # a v1-only field
    backbone = StyleGAN2Config(resolution=32, image_channels=1, **widths)
    return load_source(
        "toy-pretrain", None, backbone=backbone, classes=[0, 1, 2, 3, 4, 5, 6], steps=6, batch_size=8,
        cache_dir=cache_dir, progress=False, name="toy-stylegan2",
    )  # fmt: skip


@pytest.fixture(params=["stylegan1", "stylegan2"])
def backbone_source(request):
    """The tiny source on each registered backbone (a test using it runs once per backbone)."""
    return request.getfixturevalue("tiny_source" if request.param == "stylegan1" else "tiny_source_stylegan2")


@pytest.fixture(scope="session")
def slurm_cluster():
    """A one-node SLURM cluster (munged, slurmctld, slurmd on localhost) for the session; SLURM_CONF points at it.

    Skipped, with the reason printed, where the binaries are missing (``apt-get install slurm-wlm
    munge``); on CI (``CI`` set) a missing binary fails instead, so the SLURM tests cannot skip
    themselves into a green run there.
    """
    from tests.slurm_cluster import SlurmCluster, missing_binaries

    missing = missing_binaries()
    if missing:
        message = f"SLURM binaries not found: {', '.join(missing)} (apt-get install slurm-wlm munge)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = SlurmCluster().start()
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        cluster.stop()
