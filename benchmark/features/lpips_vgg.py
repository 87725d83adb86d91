"""LPIPS-VGG (v0.1, Zhang et al. 2018) from the ``lpips`` package, its VGG16 trunk read from a file.

``lpips.LPIPS(net="vgg")`` builds its trunk with ``torchvision.models.vgg16(pretrained=True)``
(lpips/pretrained_networks.py ``vgg16``), which downloads torchvision's ``vgg16-397923af.pth``
inside the constructor. Here it is built with ``pnet_rand=True`` (a random trunk: no download)
and the trunk's conv weights are then loaded from the same file the ``vgg16`` feature network
reads (``$GTB_VGG16_PATH``, see ``benchmark.features.vgg``): LPIPS's trunk is torchvision's
``vgg16().features`` cut into five slices (``slice1.0`` is ``features.0``, ..., ``slice5.28`` is
``features.28``), so the torchvision state dict maps onto it key for key. The linear heads
(``weights/v0.1/vgg.pth``) ship inside the package and are read from there.

Images go in as generators give them, in [-1, 1] (LPIPS's own input range); the distance is
LPIPS's ``forward(in0, in1)`` of shape (B,).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.features.vgg import FILENAME, URL, _find_vgg16_file, check_vgg16_file, load_vgg16

VERSION = "0.1"
# lpips's trunk slices: torchvision vgg16().features indices [0, 4), [4, 9), [9, 16), [16, 23), [23, 30).
_SLICE_BOUNDS = (0, 4, 9, 16, 23, 30)


def _slice_of(index: int) -> int:
    return next(s for s in range(1, 6) if index < _SLICE_BOUNDS[s])


class LPIPSDistance(nn.Module):
    """LPIPS-VGG v0.1 distances between image pairs in [-1, 1], frozen and in eval mode.

    Args:
        vgg: a torchvision ``vgg16`` with its ImageNet weights (its ``features`` become LPIPS's trunk).
    """

    name = "lpips-vgg"

    def __init__(self, vgg: nn.Module):
        super().__init__()
        try:
            import lpips
        except ImportError:  # a dependency of the project; a broken environment says so in one line
            raise BenchmarkError("lpips: the 'lpips' package is missing; pip install 'lpips>=0.1.4,<0.2'") from None
        # pnet_rand=True: torchvision's vgg16 without weights, so the constructor downloads nothing; built on
        # the meta device (no random init of VGG16's 138M parameters), then every tensor is loaded below.
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")  # its `pretrained=` shim
            net = lpips.LPIPS(pretrained=False, net="vgg", version=VERSION, pnet_rand=True, verbose=False)
        state = {}
        for key, value in vgg.features.state_dict().items():  # "28.weight" -> "net.slice5.28.weight"
            state[f"net.slice{_slice_of(int(key.split('.')[0]))}.{key}"] = value
        heads = Path(lpips.__file__).parent / "weights" / f"v{VERSION}" / "vgg.pth"
        state.update(torch.load(heads, map_location="cpu", weights_only=True))
        net = net.to_empty(device="cpu")
        net.scaling_layer = type(net.scaling_layer)()  # its constant shift and scale, lost on the meta device
        result = net.load_state_dict(state, strict=False)
        # lins.k is the same module as lin{k} (registered twice by lpips), so it is loaded with it.
        unloaded = [k for k in result.missing_keys if not k.startswith(("lins.", "scaling_layer."))]
        if unloaded or result.unexpected_keys:  # a changed lpips layout would otherwise leave part of it random
            raise BenchmarkError(
                f"lpips: its LPIPS-VGG layout differs from v{VERSION}'s (unmatched keys "
                f"{(unloaded + result.unexpected_keys)[:3]}); expected lpips 0.1.x"
            )
        self.net = net
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPSDistance:
        return super().train(False)  # LPIPS's heads have dropout: distances always come from eval mode

    def forward(self, images0: torch.Tensor, images1: torch.Tensor) -> torch.Tensor:
        """LPIPS between matching rows of two (B, C, H, W) batches in [-1, 1] (a gray image as RGB): (B,)."""
        images0, images1 = _rgb(images0), _rgb(images1)
        return self.net(images0, images1).reshape(-1)

    @torch.no_grad()
    def pairwise(self, images0: torch.Tensor, images1: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """The (N, M) matrix of LPIPS between every row of ``images0`` and every row of ``images1``, on the CPU."""
        device = next(self.parameters()).device
        out = torch.empty(len(images0), len(images1))
        pairs = [(i, j) for i in range(len(images0)) for j in range(len(images1))]
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            rows, cols = torch.tensor([p[0] for p in chunk]), torch.tensor([p[1] for p in chunk])
            values = self(images0[rows].to(device), images1[cols].to(device)).float().cpu()
            out[rows, cols] = values
        return out


def _rgb(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)
    if images.shape[1] != 3:
        raise BenchmarkError(f"lpips: images need 1 or 3 channels, got {images.shape[1]}")
    return images


def build_lpips(path: str | Path | None = None, device="cpu") -> LPIPSDistance:
    """LPIPS-VGG v0.1 with torchvision's VGG16 from ``path``, else ``$GTB_VGG16_PATH``, else torchvision's cache.

    Args:
        path: ``vgg16-397923af.pth`` (torchvision's ImageNet VGG16 state dict), or a folder holding it.
        device: where distances are computed.
    """
    return LPIPSDistance(load_vgg16(_find_vgg16_file(path))).to(device)


def preflight_lpips(path: str | Path | None = None) -> str:
    """What ``--dry-run`` checks: the VGG16 file is found and is a torch checkpoint (no weights read)."""
    file = _find_vgg16_file(path)
    return f"{check_vgg16_file(file)} at {file} (LPIPS-VGG's trunk: torchvision's {FILENAME} from {URL})"
