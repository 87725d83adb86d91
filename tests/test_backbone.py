"""The backbone contract and StyleGAN2's training recipe: backbones registered by name, a suite's
backbone decided by its source, the recipe under the suite's own settings, lazy regularization as
optimizer steps of their own, and the path-length penalty as its formula."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from benchmark.config import TrainConfig, parse_suite
from benchmark.errors import BenchmarkError
from benchmark.losses import path_length_penalty
from benchmark.method import METHODS, Method, TargetSpec
from benchmark.nets import BACKBONES, BackboneConfig, backbone_config
from benchmark.sources import Source
from benchmark.trainer import Trainer
from tests.conftest import TINY_BACKBONE, tiny_suite, write_suite
from tests.methods.helpers import quick_config, toy_data, toy_target
from tests.test_cli import run_cli


def test_backbones_are_registered_and_named_in_a_suite():
    assert "stylegan1" in BACKBONES
    config = backbone_config({"resolution": 32, "image_channels": 1, **TINY_BACKBONE})
    assert isinstance(config, BackboneConfig) and config.name == "stylegan1"  # the default name
    with pytest.raises(BenchmarkError, match="unknown backbone 'stylegan9'; .*valid backbones: stylegan1, stylegan2"):
        backbone_config({"name": "stylegan9"})
    with pytest.raises(BenchmarkError, match="unknown key.*channel_multiplier for backbone 'stylegan1'"):
        backbone_config({"channel_multiplier": 2})


def test_styles_and_synthesis_give_forward_s_images(tiny_source):
    """What the path-length penalty differentiates (styles -> synthesis) is the generator's own forward."""
    G = tiny_source.build_generator()
    z, mix = torch.randn(3, 16), torch.randn(3, 16)
    noise = G.make_noise(3)
    for crossover in (None, 0, 2):
        ws = G.styles(z, mix_z=None if crossover is None else mix, crossover=crossover)
        assert ws.shape == (3, tiny_source.config.n_styles, 16)
        expected = G(z, noise=noise, mix_z=None if crossover is None else mix, crossover=crossover)
        torch.testing.assert_close(G.synthesis(ws, noise), expected, rtol=0, atol=0)


def test_path_length_penalty_is_its_formula():
    """For images = ws A (linear), J^T y = A y per sample: the lengths and the running mean are exact."""
    torch.manual_seed(0)
    ws = torch.randn(4, 3, 5, requires_grad=True)
    A = torch.randn(5, 2 * 2, requires_grad=True)  # a "generator weight": the penalty must reach it
    images = (ws @ A).sum(1).view(4, 1, 2, 2)
    y = torch.randn(4, 1, 2, 2)
    penalty, mean = path_length_penalty(images, ws, torch.tensor(0.5), 0.01, y)
    scaled = y.view(4, 4) / 2  # noise / sqrt(H * W)
    grad = (scaled @ A.detach().T)[:, None].expand(4, 3, 5)  # d/dws of sum(images * noise)
    lengths = grad.pow(2).sum(2).mean(1).sqrt()
    expected_mean = 0.5 + 0.01 * (lengths.mean() - 0.5)
    torch.testing.assert_close(mean, expected_mean)
    torch.testing.assert_close(penalty, (lengths - expected_mean).pow(2).mean())
    assert penalty.requires_grad and not mean.requires_grad


class _Counting(Method):
    """Fine-tuning that counts the discriminator's and synthesis network's calls per step."""

    name = "counting"

    def __init__(self, source, target):
        super().__init__(source, target)
        self.G, self.D = source.build_generator(), source.build_discriminator()
        self.calls: list[tuple[int, str, bool]] = []

    def discriminate(self, images, labels, ctx):
        self.calls.append((ctx.step, ctx.phase, images.requires_grad and images.is_leaf))
        return super().discriminate(images, labels, ctx)

    def path_length_inputs(self, latents, ctx):
        self.calls.append((ctx.step, "pl", latents.z.shape[0]))
        return super().path_length_inputs(latents, ctx)


def _lazy_trainer(source, tmp_path=None, **overrides) -> Trainer:
    torch.manual_seed(0)
    target = toy_target()
    recipe = dict(r1_every=2, lazy_regularization=True, pl_weight=2.0, pl_every=3, batch_size=4, mixing_prob=0.5)
    config = quick_config(**{**recipe, **overrides})
    return Trainer(_Counting(source, target), toy_data(target), config, checkpoint_dir=tmp_path, progress=False)


def test_lazy_regularization_runs_its_own_steps_with_scaled_adam(tiny_source):
    trainer = _lazy_trainer(tiny_source, steps=6)
    # StyleGAN2 train.py: lr x every / (every + 1) and betas ** (every / (every + 1)) per network.
    d, g = trainer.optimizers["D"].param_groups[0], trainer.optimizers["G"].param_groups[0]
    assert d["lr"] == pytest.approx(0.002 * 2 / 3) and d["betas"] == pytest.approx((0.0, 0.99 ** (2 / 3)))
    assert g["lr"] == pytest.approx(0.002 * 3 / 4) and g["betas"] == pytest.approx((0.0, 0.99 ** (3 / 4)))
    steps = {"D": 0, "G": 0}
    for name, optimizer in trainer.optimizers.items():
        step = optimizer.step

        def counted(*args, _step=step, _name=name, **kwargs):
            steps[_name] += 1
            return _step(*args, **kwargs)

        optimizer.step = counted
    trainer.run()
    calls = trainer.method.calls
    r1_calls = [step for step, phase, leaf in calls if phase == "D" and leaf is True]
    assert r1_calls == [0, 2, 4]  # R1 on its own pass of the reals, never inside the main D step
    assert [(step, n) for step, phase, n in calls if phase == "pl"] == [(0, 2), (3, 2)]  # batch 4 // 2
    assert steps == {"D": 6 + 3, "G": 6 + 2}  # one extra optimizer step per regularization
    assert trainer.path_length.mean.item() > 0


def test_path_length_mean_is_checkpointed_and_resumes(tiny_source, tmp_path):
    """A run stopped after its step-2 checkpoint and resumed ends like the uninterrupted one."""
    full = _lazy_trainer(tiny_source, steps=4)
    full.run()
    killed = _lazy_trainer(tiny_source, tmp_path, steps=4, eval_every=2)
    save = killed.save_checkpoint

    def save_then_stop():
        save()
        if killed.step == 2:
            raise KeyboardInterrupt

    killed.save_checkpoint = save_then_stop
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    resumed = _lazy_trainer(tiny_source, tmp_path, steps=4, eval_every=2)
    resumed.run()
    assert resumed.path_length.mean.item() == full.path_length.mean.item() > 0
    for (key, a), b in zip(full.method.G.state_dict().items(), resumed.method.G.state_dict().values()):
        assert torch.equal(a, b), key


def test_pl_weight_needs_lazy_regularization():
    with pytest.raises(BenchmarkError, match="pl_weight needs lazy_regularization"):
        TrainConfig(pl_weight=2.0)


def test_the_suite_s_train_settings_override_its_backbone_s_recipe(monkeypatch):
    monkeypatch.setattr(BackboneConfig, "recipe", {"r1_every": 16, "ema_decay": 0.5})
    suite = parse_suite(tiny_suite(train={"steps": 4, "r1_every": 2}))
    assert suite.train.r1_every == 2 and suite.train.ema_decay == 0.5 and suite.backbone.name == "stylegan1"


def test_a_source_kind_decides_the_suite_s_backbone():
    raw = tiny_suite(sources={"ffhq": {"kind": "rosinality-stylegan1"}}, backbone={"name": "stylegan1"})
    assert parse_suite(raw).backbone.name == "stylegan1"


def test_a_source_built_for_one_backbone_builds_its_networks(tiny_source):
    source = Source.untrained(tiny_source.config)
    G, D = source.build_generator(2, pretrained=False), source.build_discriminator(2, pretrained=False)
    assert type(G) is type(tiny_source.config.generator()) and G.n_classes == 2 and D.n_classes == 2
    assert TargetSpec(1, False, 32, 1, 3).label_classes == 0


def _stylegan2_suite() -> dict:
    widths = {k: v for k, v in TINY_BACKBONE.items() if k != "fused_min_resolution"}  # a v1-only field
    target = {"name": "digit7", "dataset": "mnist5k", "classes": [7], "shots": [5], "eval_split": "test"}
    methods = ["transfergan", {"name": "minegan", "options": {"miner_steps": 1}}]
    return tiny_suite(name="tiny-sg2", backbone={"name": "stylegan2", **widths}, methods=methods, targets=[target])


def test_a_stylegan2_suite_runs_end_to_end_with_its_recipe_and_refuses_v1_only_methods(tmp_path, cache_dir):
    suite = write_suite(tmp_path / "sg2.yaml", _stylegan2_suite())
    dry = run_cli("--suite", suite, "--dry-run", cache_dir=cache_dir)
    assert dry.returncode == 0, dry.stderr
    assert "# backbone: stylegan2 at 32 px; recipe: rosinality stylegan2-pytorch train.py (" in dry.stdout
    assert "the suite overrides r1_every 2 (recipe 16)" in dry.stdout  # the tiny suite's own r1_every

    out = tmp_path / "out"
    run = run_cli("--suite", suite, "--out", out, "--no-progress", "--budget", "smoke", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    for folder in sorted((out / "runs" / "tiny-sg2").iterdir()):
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["backbone"]["name"] == "stylegan2"
        assert config["train"]["lazy_regularization"] is True and config["train"]["pl_weight"] == 2.0
        assert json.loads((folder / "result.json").read_text())["status"] == "finished"

    refused = run_cli("--suite", suite, "--methods", "hypermod", "--dry-run", cache_dir=cache_dir)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    reason = METHODS.get("hypermod").unsupported_backbones["stylegan2"]
    assert refused.stderr.strip().splitlines() == [
        f"error: method 'hypermod' cannot run on the stylegan2 backbone: {reason}"
    ]


def test_a_suite_on_an_nvidia_pickle_runs_on_stylegan2_and_wrong_files_are_one_line(tmp_path, cache_dir):
    """A stylegan2-ada pickle (written by the tests in NVIDIA's layout) as a suite's source: the dry run
    names the backbone, its recipe and the stage spans, a smoke run finishes; rosinality files given to
    this source kind, and this pickle given to theirs, are each one line naming the right kind."""
    from tests.sources import checkpoints
    from tests.sources.nvlabs_pickles import CONFIGS, snapshot, write_pickle
    from tests.sources.test_rosinality2 import train_checkpoint

    pickle = write_pickle(snapshot(CONFIGS["paper256"]), tmp_path / "network-snapshot-000100.pkl")
    target = {"name": "digit7", "dataset": "mnist5k", "classes": [7], "shots": [5], "eval_split": "test"}
    raw = tiny_suite(
        name="nvlabs", image_channels=3, sources={"ffhq": {"kind": "nvlabs-stylegan2-ada"}}, targets=[target],
        methods=["transfergan", {"name": "minegan", "options": {"miner_steps": 1}}],
    )  # fmt: skip
    raw.pop("backbone")
    suite = write_suite(tmp_path / "nvlabs.yaml", raw)
    dry = run_cli("--suite", suite, "--source-ckpt", pickle, "--dry-run", cache_dir=cache_dir)
    assert dry.returncode == 0, dry.stderr
    assert "# backbone: stylegan2 at 32 px; recipe: rosinality stylegan2-pytorch train.py" in dry.stdout
    assert "#   minegan: mine 0-1, finetune 1-4" in dry.stdout
    assert "# source ffhq: nvlabs-stylegan2-ada from" in dry.stdout

    out = tmp_path / "out"
    run = run_cli(
        "--suite", suite, "--source-ckpt", pickle, "--out", out, "--no-progress", "--budget", "smoke",
        "--methods", "transfergan", cache_dir=cache_dir,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    [folder] = (out / "runs" / "nvlabs").iterdir()
    assert json.loads((folder / "result.json").read_text())["status"] == "finished"

    v1 = checkpoints.save(checkpoints.training_checkpoint(), tmp_path / "stylegan-256px-new.model")
    v2 = checkpoints.save(train_checkpoint(), tmp_path / "550000.pt")
    for wrong, right in ((v1, "rosinality-stylegan1"), (v2, "rosinality-stylegan2")):
        refused = run_cli("--suite", suite, "--source-ckpt", wrong, "--dry-run", cache_dir=cache_dir)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1 and right in lines[0], refused.stderr
    raw["sources"] = {"ffhq": {"kind": "rosinality-stylegan2"}}
    other = write_suite(tmp_path / "rosinality2.yaml", raw)
    refused = run_cli("--suite", other, "--source-ckpt", pickle, "--dry-run", cache_dir=cache_dir)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1 and "nvlabs-stylegan2-ada" in lines[0], refused.stderr
