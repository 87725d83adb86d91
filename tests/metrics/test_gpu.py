"""The CUDA path is the CPU code on another device: same numbers (skipped without a GPU)."""

import numpy as np
import pytest
import torch

from benchmark.metrics import frechet_distance, intra_class_fid, kid, kmmd, memorization, prdc

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    return rng.random((600, 64)), rng.random((500, 64)) * 1.1


def test_scalar_metrics_match_the_cpu(features):
    real, fake = features
    for metric in (frechet_distance, kmmd):
        assert metric(real, fake, device="cuda") == pytest.approx(metric(real, fake), rel=1e-9)
    assert kid(real, fake, num_subsets=5, device="cuda") == pytest.approx(kid(real, fake, num_subsets=5), rel=1e-9)


def test_prdc_and_memorization_match_the_cpu(features):
    real, fake = features
    for dtype in (np.float32, np.float64):
        assert prdc(real.astype(dtype), fake.astype(dtype), device="cuda") == prdc(
            real.astype(dtype), fake.astype(dtype)
        )
    cuda = memorization(real[:300], fake, heldout=real[300:], device="cuda")
    cpu = memorization(real[:300], fake, heldout=real[300:])
    assert cuda == pytest.approx(cpu, rel=1e-9)


def test_cuda_tensors_choose_the_device(features):
    real, fake = (torch.from_numpy(x).float().cuda() for x in features)
    labels = torch.arange(len(real)) % 2, torch.arange(len(fake)) % 2
    mean, per_class = intra_class_fid(real, labels[0], fake, labels[1])
    assert mean == pytest.approx(np.mean(list(per_class.values())))
    assert torch.cuda.max_memory_allocated() > 0
