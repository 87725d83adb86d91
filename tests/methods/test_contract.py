"""Every registered method honours the contract on an unconditional and a conditional target."""

import pytest
import torch

from benchmark.method import METHODS
from tests.methods.helpers import changed, toy_target, train_briefly


@pytest.mark.parametrize("conditional", [False, True], ids=["uncond", "cond"])
@pytest.mark.parametrize("name", METHODS.names())
def test_method_trains_and_samples(name, conditional, tiny_source):
    target = toy_target(conditional, n_classes=2 if conditional else 1)
    method, before, trainer = train_briefly(name, tiny_source, target, steps=2)
    trainable = {id(p) for g in method.param_groups() for p in g.params}
    assert trainable, f"{name} trains nothing"
    moved = changed(method, before)
    named = dict(method.named_parameters())
    assert any(moved[k] for k, p in named.items() if id(p) in trainable), f"{name}: no trainable parameter moved"
    z = torch.randn(5, method.style_dim)
    labels = torch.tensor([0, 1, 0, 1, 0]) if conditional else None
    images = method.sample(z, labels)
    assert images.shape == (5, 1, 32, 32)
    assert images.min() >= -1 and images.max() <= 1 and torch.isfinite(images).all()
    assert trainer.trainable_parameter_count > 0
