"""Perceptual path length: NVIDIA's definition (pair distance / epsilon^2, 1st-99th percentile mean) on LPIPS."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.metrics.ppl import (
    EPSILON,
    GeneratorParts,
    filtered_mean,
    generator_parts,
    path_distances,
    perceptual_path_length,
    slerp,
)
from benchmark.nets.stylegan import BackboneConfig, StyledGenerator

DIM = 6


class MeanSquare(nn.Module):
    """A stand-in distance: the mean squared pixel difference of each pair."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, a, b):
        return (a - b).pow(2).flatten(1).mean(1)


def _parts(synthesis, make_noise=None) -> GeneratorParts:
    return GeneratorParts(
        DIM,
        0,
        mapping=lambda z, labels: z,
        synthesis=synthesis,
        make_noise=make_noise
        or (lambda b, device=None, generator=None: [torch.randn(b, 1, 4, 4, generator=generator)]),
    )


def test_a_generator_that_ignores_its_latent_has_zero_path_length():
    parts = _parts(lambda w, noise: torch.tanh(noise[0].expand(-1, 3, -1, -1)))  # noise only: shared in a pair
    for space in ("w", "z"):
        distances = path_distances(parts, MeanSquare(), 16, space=space, sampling="full", seed=1)
        assert np.array_equal(distances, np.zeros(16))


def test_a_linear_generator_gives_its_squared_slope_along_the_pair():
    """image = A w: at sampling "end" in w, LPIPS / eps^2 is the distance of A (w1 - w0), whatever t."""
    A = torch.randn(3 * 4 * 4, DIM, generator=torch.Generator().manual_seed(0))
    parts = _parts(lambda w, noise: (w @ A.T).view(-1, 3, 4, 4))
    n, seed = 8, 5
    distances = path_distances(parts, MeanSquare(), n, space="w", sampling="end", batch_size=n, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    torch.rand(n, generator=generator)  # t, drawn first (and zeroed at "end")
    z0, z1 = torch.randn(2 * n, DIM, generator=generator).chunk(2)
    expected = ((z1 - z0) @ A.T).pow(2).mean(1).double().numpy()
    np.testing.assert_allclose(distances, expected, rtol=2e-2)


def test_the_filter_keeps_values_between_the_1st_and_99th_percentile():
    values = np.concatenate([np.arange(1.0, 99.0), [1e6, -1e6]])
    lo, hi = np.percentile(values, 1, method="lower"), np.percentile(values, 99, method="higher")
    assert filtered_mean(values) == pytest.approx(values[(values >= lo) & (values <= hi)].mean())
    assert filtered_mean(values) < 100


def test_slerp_ends_at_the_normalised_endpoints():
    a, b = torch.randn(4, DIM), torch.randn(4, DIM)
    torch.testing.assert_close(slerp(a, b, torch.zeros(4, 1)), a / a.norm(dim=1, keepdim=True))
    torch.testing.assert_close(slerp(a, b, torch.ones(4, 1)), b / b.norm(dim=1, keepdim=True), rtol=1e-4, atol=1e-5)


def _backbone(name: str):
    torch.manual_seed(0)
    channels = {r: 8 for r in (4, 8, 16, 32)}
    if name == "stylegan1":
        return StyledGenerator(BackboneConfig(resolution=32, style_dim=DIM, n_mlp=2, channels=channels)).eval()
    from benchmark.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator

    return StyleGAN2Generator(StyleGAN2Config(resolution=32, style_dim=DIM, n_mlp=2, channels=channels)).eval()


@pytest.mark.parametrize("backbone", ["stylegan1", "stylegan2"])
@pytest.mark.parametrize("space,sampling,crop", [("w", "end", False), ("z", "full", True)])
def test_each_stylegan_backbone_has_a_path_length(backbone, space, sampling, crop):
    G = _backbone(backbone)
    assert generator_parts(G).style_dim == DIM
    options = dict(space=space, sampling=sampling, crop=crop, batch_size=4, seed=2)
    value = perceptual_path_length(G, MeanSquare(), 8, **options)
    assert np.isfinite(value) and value > 0
    assert value == perceptual_path_length(G, MeanSquare(), 8, **options)  # seeded: reproducible


class Recorder(MeanSquare):
    """Records the largest pixel difference within each pair."""

    def __init__(self):
        super().__init__()
        self.gaps = []

    def forward(self, a, b):
        self.gaps.append(float((a - b).abs().max()))
        return super().forward(a, b)


@pytest.mark.parametrize("backbone", ["stylegan1", "stylegan2"])
def test_a_pair_shares_its_noise(backbone):
    """With epsilon 0 both images of a pair come from the same latent: identical only if they share the noise."""
    recorder = Recorder()
    path_distances(generator_parts(_backbone(backbone)), recorder, 4, epsilon=0.0, space="z", sampling="full", seed=3)
    assert recorder.gaps == [0.0]


def test_epsilon_is_nvidias():
    assert EPSILON == 1e-4
