"""Every registered method honours the contract, on an unconditional and a conditional target.

Parametrized over the registry (and MineGAN's multi-source mode), so a new method is tested the
moment it is registered: through every stage of its schedule, what it does not train stays bit
for bit, what it trains moves, it samples in [-1, 1], a checkpoint restores it exactly, and a
run killed mid-way and resumed ends with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.method import METHODS
from benchmark.trainer import Trainer
from tests.methods.helpers import make_method, quick_config, toy_data, toy_target

BACKBONES = ("stylegan1", "stylegan2")
# (method, sources, backbone) for every backbone the method runs on; the others are refused (tested below)
CASES = [
    (name, sources, backbone)
    for name, sources in [(name, 1) for name in METHODS.names()] + [("minegan", 2)]
    for backbone in BACKBONES
    if backbone not in METHODS.get(name).unsupported_backbones
]
IDS = [f"{name}-{sources}-sources-{b}" if sources > 1 else f"{name}-{b}" for name, sources, b in CASES]
CONDITIONAL = pytest.mark.parametrize("conditional", [False, True], ids=["uncond", "cond"])


class _Killed(Exception):
    pass


def registered(name: str, sources: int):
    """Builds the registered method (with ``sources`` copies of the source, renamed, when more than one)."""

    def build(source, target):
        copies = [dataclasses.replace(source, name=f"s{i}") for i in range(sources)]
        return make_method(name, source, target, **({"sources": copies} if sources > 1 else {}))

    return build


def _trainer(build, conditional, source, steps, checkpoint_dir=None, evaluate=None, seed=0) -> Trainer:
    """``build(source, target)`` on a toy target, each declared stage cut to one step (the last takes the rest)."""
    target = toy_target(conditional, n_classes=2 if conditional else 1)
    torch.manual_seed(seed)
    method = build(source, target)
    # The backbone's recipe (StyleGAN2's lazy R1 and path length), its regularizers due every 2 steps.
    recipe = {**source.config.recipe, "r1_every": 1}
    if recipe.get("lazy_regularization"):
        recipe.update(r1_every=2, pl_every=2)
    config = quick_config(**{**recipe, "steps": steps, "stage_scale": 1e-6, "eval_every": 2, "mixing_prob": 0.5})
    return Trainer(
        method, toy_data(target, seed), config, seed=seed, checkpoint_dir=checkpoint_dir, evaluate=evaluate,
        progress=False,
    )  # fmt: skip


def _clone(params) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in params}


def _source(request, backbone: str):
    return request.getfixturevalue("tiny_source" if backbone == "stylegan1" else "tiny_source_stylegan2")


@CONDITIONAL
@pytest.mark.parametrize(("name", "sources", "backbone"), CASES, ids=IDS)
def test_what_trains_moves_the_rest_stays_and_checkpoints_restore_it(
    name, sources, backbone, conditional, request, tmp_path
):
    source = _source(request, backbone)
    assert_trains_what_it_declares_and_restores(registered(name, sources), conditional, source, tmp_path)


@CONDITIONAL
@pytest.mark.parametrize(("name", "sources", "backbone"), CASES, ids=IDS)
def test_a_run_killed_mid_way_resumes_bit_identically(name, sources, backbone, conditional, request, tmp_path):
    assert_resumes_bit_identically(registered(name, sources), conditional, _source(request, backbone), tmp_path)


@pytest.mark.parametrize(
    ("name", "backbone"),
    [(n, b) for n in METHODS.names() for b in BACKBONES if b in METHODS.get(n).unsupported_backbones],
)
def test_a_method_refuses_a_backbone_it_cannot_run_on_in_one_line_saying_why(name, backbone, request):
    reason = METHODS.get(name).unsupported_backbones[backbone]
    with pytest.raises(BenchmarkError) as err:
        make_method(name, _source(request, backbone), toy_target())
    assert str(err.value) == f"method {name!r} cannot run on the {backbone} backbone: {reason}"


def assert_trains_what_it_declares_and_restores(build, conditional, source, tmp_path):
    trainer = _trainer(build, conditional, source, 3, tmp_path)
    method = trainer.method
    name = method.name
    # G_ema and a method's own D_ema (AdAM, RICK) are moving averages, not trained
    before = _clone((k, p) for k, p in method.named_parameters() if not k.startswith(("G_ema.", "D_ema.")))
    ever_trained: set[int] = set()
    enter = trainer._enter

    def recording(span):  # the parameters each stage trains, as the trainer hands them to the optimizers
        enter(span)
        ever_trained.update(id(p) for params in trainer.trainable.values() for p in params)

    trainer._enter = recording
    trainer.run()
    params = dict(method.named_parameters())
    in_groups = {id(p) for group in method.param_groups() for p in group.params}
    assert ever_trained <= in_groups, f"{name} trains parameters outside its param_groups()"
    moved = {k: not torch.equal(params[k].detach(), v) for k, v in before.items()}
    frozen = [k for k in before if id(params[k]) not in ever_trained]
    assert not [k for k in frozen if moved[k]], f"{name}: frozen parameters moved"
    held = {id(p) for p in method.held_fixed()}
    last = [
        k
        for k in before
        if any(params[k] is p for ps in trainer.trainable.values() for p in ps) and id(params[k]) not in held
    ]
    assert last and all(moved[k] for k in last), f"{name}: not moved: {[k for k in last if not moved[k]]}"

    z = torch.randn(5, method.style_dim)
    labels = torch.tensor([0, 1, 0, 1, 0]) if conditional else None
    images = method.sample(z, labels)
    assert images.shape == (5, 1, 32, 32)
    assert images.min() >= -1 and images.max() <= 1 and torch.isfinite(images).all()
    assert trainer.trainable_parameter_count > 0

    restored = _trainer(build, conditional, source, 3, tmp_path, seed=1)  # other initial weights
    assert restored.resume() == trainer.step
    for key, value in method.state_dict().items():
        assert torch.equal(value, restored.method.state_dict()[key]), key
    for phase, optimizer in trainer.optimizers.items():
        ours, theirs = optimizer.state_dict()["state"], restored.optimizers[phase].state_dict()["state"]
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[i][k], theirs[i][k]) for i in ours for k in ours[i]), phase
    assert torch.equal(trainer.generator.get_state(), restored.generator.get_state())


def assert_resumes_bit_identically(build, conditional, source, tmp_path):
    steps = 5
    reference = _trainer(build, conditional, source, steps)
    reference.run()

    def killed_at_4(method, step):
        if step == 4:
            raise _Killed  # after evaluating step 4 and before its checkpoint: the run resumes from step 2

    interrupted = _trainer(build, conditional, source, steps, tmp_path, killed_at_4)
    with pytest.raises(_Killed):
        interrupted.run()
    resumed = _trainer(build, conditional, source, steps, tmp_path)
    start = resumed.resume()
    assert start is not None and start < interrupted.step
    resumed.run()
    assert resumed.step == reference.step
    for key, value in reference.method.state_dict().items():
        assert torch.equal(value, resumed.method.state_dict()[key]), key
