"""l2sp and fd: zero at step 0, gradients that pull toward the source, and references kept out of checkpoints."""

import pytest
import torch

from benchmark.method import accumulate_gradients, build_method
from benchmark.step import StepContext
from methods.regularized import l2sp_penalty
from tests.methods.helpers import quick_config, toy_data, toy_target


def _perturb(net: torch.nn.Module, scale: float = 0.1) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))


def _descend(params: list[torch.nn.Parameter], loss: torch.Tensor, lr: float) -> None:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(params, grads):
            if g is not None:
                p.sub_(lr * g)


def _distance(net: torch.nn.Module, reference_state: dict) -> float:
    return sum((p - reference_state[k]).pow(2).sum().item() for k, p in net.named_parameters() if k in reference_state)


@pytest.mark.parametrize("name", ["l2sp", "fd"])
def test_source_references_stay_out_of_checkpoints_and_follow_the_method(name, tiny_source):
    method = build_method(name, tiny_source, toy_target(conditional=True, n_classes=2))
    assert all(k.startswith(("G.", "D.")) for k in method.state_dict())
    assert {n.split(".")[0] for n, _ in method.named_parameters()} == {"G", "D"}
    build_method(name, tiny_source, toy_target(conditional=True, n_classes=2)).load_state_dict(method.state_dict())
    method.to(torch.float64)  # stands in for .to(device): the references move with the method
    assert all(b.dtype == torch.float64 for b in method.D_source.buffers())


def test_l2sp_is_zero_at_step_zero_and_pairs_by_name(tiny_source):
    method = build_method("l2sp", tiny_source, toy_target(conditional=True, n_classes=3))
    assert l2sp_penalty(method.G, method.G_source).item() == 0
    assert l2sp_penalty(method.D, method.D_source).item() == 0
    with torch.no_grad():
        method.G.class_embed.weight.fill_(5.0)  # the label path has no source weight: never penalised
    assert l2sp_penalty(method.G, method.G_source).item() == 0


@pytest.mark.parametrize("net_name", ["G", "D"])
def test_l2sp_gradient_pulls_toward_the_source(net_name, tiny_source):
    method = build_method("l2sp", tiny_source, toy_target())
    net, reference = getattr(method, net_name), getattr(method, f"{net_name}_source")
    source_state = tiny_source.g_state if net_name == "G" else tiny_source.d_state
    _perturb(net)
    start = _distance(net, source_state)
    penalty = l2sp_penalty(net, reference)
    assert penalty.item() > 0
    _descend(list(net.parameters()), penalty, lr=0.4)  # < numel / 2 for every tensor: no overshoot
    assert _distance(net, source_state) < start
    assert l2sp_penalty(net, reference).item() < penalty.item()


def test_fd_is_zero_at_step_zero_and_pulls_d_features_back(tiny_source):
    method = build_method("fd", tiny_source, toy_target())
    assert method.feature_resolution == 32  # feature_loc 3 = the block whose input is 32 px
    images = toy_data(toy_target()).images[:4].float() / 127.5 - 1
    assert method.distillation_loss(images).item() == 0
    _perturb(method.D, 0.05)
    loss = method.distillation_loss(images)
    assert loss.item() > 0
    _descend(list(method.D.parameters()), loss, lr=0.5)
    assert method.distillation_loss(images).item() < loss.item()


def test_fd_enters_the_d_step_only(tiny_source):
    from benchmark.trainer import Trainer

    method = build_method("fd", tiny_source, toy_target(), lambda_fm=2.0, feature_loc=1)
    assert method.feature_resolution == 8
    trainer = Trainer(method, toy_data(toy_target()), quick_config(), progress=False)
    trainer._enter(trainer.schedule.spans[0])
    stage = trainer.schedule.spans[0].stage

    def ctx(phase):
        return StepContext(0, stage, phase, trainer.sample_latents, 10.0, 1, trainer.trainable, trainer.generator)

    _perturb(method.D, 0.05)
    batch = trainer.next_batch()
    d_terms = accumulate_gradients(method, "D", batch, ctx("D"))
    expected = 2.0 * method.distillation_loss(batch.images).detach()
    torch.testing.assert_close(d_terms["fd"], expected)
    assert "fd" not in accumulate_gradients(method, "G", batch, ctx("G"))
