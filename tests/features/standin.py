"""A tiny TorchScript stand-in for clean-fid's inception-2015-12-05.pt, with the same interface.

clean-fid calls ``module.layers.forward(x)`` on normalised 299 px images ("clean" mode) and
``module(x, return_features=True)`` on raw [0, 255] images (legacy mode), and reshapes the result
to (B, 2048); this module does the same with a few thousand random weights.
"""

from __future__ import annotations

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
