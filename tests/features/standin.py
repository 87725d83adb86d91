"""Stand-ins for the pretrained files: clean-fid's inception-2015-12-05.pt and torchvision's VGG16 weights.

clean-fid calls ``module.layers.forward(x)`` on normalised 299 px images ("clean" mode) and
``module(x, return_features=True)`` on raw [0, 255] images (legacy mode), and reshapes the result
to (B, 2048). ``save_standin`` writes a TorchScript module that does the same with a few thousand
random weights; ``save_inception_sized_standin`` one with the real network's architecture
(torchvision's Inception v3, random weights), which costs what the real file costs to run.
``random_vgg16_state`` is torchvision's VGG16 state dict with random values.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class _Layers(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 5, stride=4)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(8 * 16, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(F.relu(self.conv(x))).flatten(1)
        return torch.tanh(self.fc(h)).view(-1, 2048, 1, 1)


class InceptionStandIn(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = _Layers()

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.layers((x - 128) / 128).flatten(1)


def save_standin(folder: Path, seed: int = 0) -> Path:
    """Write the scripted stand-in as ``folder/inception-2015-12-05.pt``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = torch.jit.script(InceptionStandIn().eval())
    path = Path(folder) / "inception-2015-12-05.pt"
    module.save(str(path))
    return path


class _InceptionV3Layers(nn.Module):
    """torchvision's Inception v3 up to its average pool: (B, 3, 299, 299) -> (B, 2048, 1, 1)."""

    def __init__(self):
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
        names += ["maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d"]
        names += ["Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool"]
        self.body = nn.Sequential(*(getattr(net, name) for name in names))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class InceptionSizedStandIn(InceptionStandIn):
    def __init__(self):
        super().__init__()
        self.layers = _InceptionV3Layers()


def save_inception_sized_standin(folder: Path, seed: int = 0, calibration_batch: int = 4) -> Path:
    """Write a scripted Inception v3 with random weights as ``folder/inception-2015-12-05.pt``.

    Its batch-norm statistics are set from one batch of random images (cumulative average of that
    batch), so the features stay of order one through the 90-odd layers instead of vanishing.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = InceptionSizedStandIn()
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None  # the running statistics become this batch's
        module.train()
        with torch.no_grad():
            module.layers(torch.randn(calibration_batch, 3, 299, 299))
        scripted = torch.jit.script(module.eval())
    path = Path(folder) / "inception-2015-12-05.pt"
    scripted.save(str(path))
    return path


def random_vgg16_state() -> dict[str, torch.Tensor]:
    """Every key and shape of torchvision's vgg16 state dict with seeded random values.

    The fully connected weights are one random column repeated (stride 0), so the file stays
    at the size of the conv weights (~60 MB instead of 550 MB).
    """
    from torchvision.models import vgg16

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in vgg16().state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("bias"):
            state[key] = torch.randn(shape, generator=generator) * 0.1
        elif key.startswith("features."):
            state[key] = torch.randn(shape, generator=generator) * math.sqrt(2 / (shape[1] * shape[2] * shape[3]))
        else:
            column = torch.randn(shape[0], 1, generator=generator) * math.sqrt(2 / shape[1])
            state[key] = column.expand(shape)
    return state


def _calibrated_state(module: nn.Module, calibration_batch: int = 2) -> dict[str, torch.Tensor]:
    """``module``'s state dict after one train-mode pass over random 299 px images sets its batch-norm
    statistics (cumulative average of that batch), so random features stay of order one through the layers."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    module.train()
    with torch.no_grad():
        module(torch.rand(calibration_batch, 3, 299, 299) * 2 - 1)
    return {k: v.clone() for k, v in module.eval().state_dict().items()}


def random_pt_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """pytorch-fid's FID Inception (``pt_inception-2015-12-05-6726825d.pth``'s keys and shapes), random weights.

    The layout is pytorch-fid's own ``fid_inception_v3``, built by the package with its download
    answered by the freshly built network's own (random) state dict.
    """
    from unittest import mock

    from pytorch_fid import inception

    built = []
    build = inception._inception_v3

    def keep(*args, **kwargs):
        built.append(build(*args, **kwargs))
        return built[-1]

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        with (
            mock.patch.object(inception, "_inception_v3", keep),
            mock.patch.object(inception, "load_state_dict_from_url", lambda url, **kw: built[-1].state_dict()),
        ):
            network = inception.fid_inception_v3()
        return _calibrated_state(network)


def random_tv_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet ``inception_v3`` state dict (``inception_v3_google-0cc3c7bd.pth``'s keys), random."""
    from torchvision.models import inception_v3

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        network = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
        return _calibrated_state(network)
