"""ADA as an option of the shared step: off at p = 0, p steered by sign(D(real)), checkpointed, per method entry."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmark.augment import AdaptiveAugment, augment
from benchmark.config import TrainConfig
from benchmark.errors import BenchmarkError
from benchmark.trainer import Trainer
from tests.methods.helpers import make_method, quick_config, toy_data, toy_target


class _Killed(Exception):
    pass


def _trainer(source, tmp_path=None, evaluate=None, steps=3, p=0.0, **train) -> Trainer:
    target = toy_target()
    torch.manual_seed(0)
    method = make_method("transfergan", source, target)
    recipe = {**source.config.recipe, "r1_every": 2, "pl_every": 2}
    config = quick_config(**{**recipe, "steps": steps, "eval_every": 2, **train})
    trainer = Trainer(
        method, toy_data(target), config, seed=0, checkpoint_dir=tmp_path, evaluate=evaluate, progress=False
    )
    if trainer.ada is not None:
        trainer.ada.p = p  # a probability already reached (a resumed run reads its own from the checkpoint)
    return trainer


def test_at_p_zero_an_ada_step_is_the_plain_step_bit_for_bit(tiny_source_stylegan2):
    plain = _trainer(tiny_source_stylegan2)
    plain.run()
    # p stays 0: it could only move after 1,000 D steps
    ada = _trainer(tiny_source_stylegan2, ada=True, ada_every=1000)
    ada.run()
    assert ada.ada.p == 0
    for key, value in plain.method.state_dict().items():
        assert torch.equal(value, ada.method.state_dict()[key]), key


def test_p_moves_toward_the_target_by_the_images_seen():
    ada = AdaptiveAugment(target=0.6, length=100, every=2)
    ada.observe(torch.tensor([1.0, 1.0, 1.0, -1.0]))
    assert ada.p == 0  # not yet: every 2 steps
    ada.observe(torch.tensor([1.0, 1.0, 1.0, 1.0]))  # r_t = 6 / 8 > 0.6: p rises by 8 images / 100
    assert ada.r_t == pytest.approx(0.75) and ada.p == pytest.approx(0.08)
    ada.observe(torch.tensor([-1.0, 1.0, -1.0, 1.0]))
    ada.observe(torch.tensor([-1.0, 1.0, -1.0, 1.0]))  # r_t = 0: p falls, clipped at 0
    assert ada.p == 0


def test_augmentation_keeps_shape_moves_pixels_and_passes_r1_double_backward():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    y = augment(x, 1.0, g)
    assert y.shape == x.shape and not torch.allclose(y, x)
    (grad,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    grad.square().sum().backward()  # R1 differentiates through the augmentation twice
    assert torch.isfinite(x.grad).all()
    gray = augment(torch.rand(2, 1, 8, 8), 0.5, torch.Generator().manual_seed(1))
    assert gray.shape == (2, 1, 8, 8)


def test_p_is_logged_checkpointed_and_a_resumed_run_is_bit_identical(tiny_source_stylegan2, tmp_path, caplog):
    fast = dict(ada=True, ada_every=2, ada_length=80, p=0.5)  # p moves by 0.1 every 2 D steps
    steps = 5
    with caplog.at_level("INFO", logger="benchmark.trainer"):
        reference = _trainer(tiny_source_stylegan2, steps=steps, **fast)
        reference.run()
    assert reference.ada.p != 0.5
    assert "ada_p=0.5000" in caplog.text

    def killed_at_4(method, step):
        if step == 4:
            raise _Killed

    interrupted = _trainer(tiny_source_stylegan2, tmp_path, killed_at_4, steps=steps, **fast)
    with pytest.raises(_Killed):
        interrupted.run()
    saved = torch.load(tmp_path / "last.pt", weights_only=False)["ada"]
    resumed = _trainer(tiny_source_stylegan2, tmp_path, steps=steps, **{**fast, "p": 0.0})
    assert resumed.resume() == 2
    assert resumed.ada.state_dict() == saved and saved["p"] > 0
    resumed.run()
    assert resumed.ada.state_dict() == reference.ada.state_dict()
    for key, value in reference.method.state_dict().items():
        assert torch.equal(value, resumed.method.state_dict()[key]), key


def test_ada_settings_stay_out_of_the_resolved_config_when_off():
    assert "ada" not in TrainConfig().to_dict()
    assert TrainConfig(ada=True).to_dict()["ada_target"] == 0.6
    with pytest.raises(BenchmarkError, match="ada_target"):
        dataclasses.replace(TrainConfig(), ada_target=1.5)


def test_a_method_entry_turns_ada_on_for_its_own_cells_only():
    from benchmark.config import parse_suite
    from benchmark.runner import expand_cells
    from tests.conftest import tiny_suite

    plain = expand_cells(parse_suite(tiny_suite(methods=["transfergan"])))
    suite = parse_suite(tiny_suite(methods=["transfergan", {"name": "transfergan", "label": "tgan-ada",
                                                            "train": {"ada": True, "ada_target": 0.5}}]))  # fmt: skip
    cells = {c.cell_id: c for c in expand_cells(suite)}
    ada = cells["digit7-5shot-tgan-ada-s0"]
    assert ada.train.ada and ada.train.ada_target == 0.5 and ada.resolved()["train"]["ada"] is True
    assert "train" not in ada.resolved()["method"]  # recorded once, where it acts
    assert not cells["digit7-5shot-transfergan-s0"].train.ada
    assert {c.cell_id: c.key for c in plain} == {k: c.key for k, c in cells.items() if "tgan-ada" not in k}

    for entry, message in (
        (
            {"name": "transfergan", "train": {"lr": 0.1}},
            r"methods\[0\]\.train: lr cannot be set per target or method .*valid here: steps, batch_size, eval_every",
        ),
        ({"name": "transfergan", "train": {"ada": True, "ada_every": 0}}, "ada_every must be a positive integer"),
    ):
        with pytest.raises(BenchmarkError, match=message):
            parse_suite(tiny_suite(methods=[entry]))
