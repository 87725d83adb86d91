"""pytorch-fid's Inception features as CDC, RSSA and DCL computed them: the CDC FID convention.

Those papers saved 5,000 generated images as PNG and ran ``python -m pytorch_fid`` on them against
the whole target set (``shared/PROTOCOLS.md``, "Two FID conventions"). What that does, step by step:

1. The generator's [-1, 1] output is written as an 8-bit PNG (torchvision ``save_image`` with
   ``normalize=True, value_range=(-1, 1)``: ``floor(255 (x + 1) / 2 + 0.5)``, i.e.
   ``uint8(clamp(127.5 x + 128))``). PNG is lossless, so reading it back gives exactly those bytes:
   the round trip is that quantization (tested against a real PNG encode and decode).
2. pytorch-fid reads it with PIL, ``convert("RGB")`` and ``ToTensor()``: ``u / 255`` in [0, 1].
3. ``pytorch_fid.inception.InceptionV3([3])`` (the default 2048-d pool3 block, ``resize_input``
   and ``normalize_input`` on): bilinear resize to 299 x 299 (``align_corners=False``), ``2 x - 1``,
   then the FID Inception (TF's 2015-12-05 graph ported to PyTorch) up to its average pool.

The network is pytorch-fid's own module, built by the package; only its download is replaced by
reading the weights file ``pt_inception-2015-12-05-6726825d.pth`` from a configured path
(``path`` option, else ``$GTB_PT_INCEPTION_PATH``, else torch hub's checkpoints folder where
pytorch-fid would have downloaded it). Real images (uint8) take steps 2-3 as they are, at the
suite's resolution: pytorch-fid read the target's files at their stored size, so a target stored
larger than the suite's resolution is resized once more here than there.

CDC used pytorch-fid 0.1.1; 0.3.0's ``InceptionV3`` computes the same layers with the same
weights and resize. The features differ from clean-fid's (``inception``: TorchScript graph,
PIL bicubic resize): FIDs of the two conventions never share a column.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch

from benchmark.errors import BenchmarkError, describe
from benchmark.features.base import FEATURES, FeatureExtractor
from benchmark.features.inception import to_uint8
from benchmark.features.weights import find_weights_file
from benchmark.files import check_file

FILENAME = "pt_inception-2015-12-05-6726825d.pth"
URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FILENAME}"
ENV_VAR = "GTB_PT_INCEPTION_PATH"
DIM = 2048


def default_path() -> Path:
    """Where pytorch-fid's download would put it: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FILENAME


def png_round_trip(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> what pytorch-fid reads back from their 8-bit PNGs: ``uint8 / 255`` in [0, 1]."""
    return to_uint8(images).float() / 255


class PytorchFIDInception(FeatureExtractor):
    """pytorch-fid's pool3 features (2048-d) of images saved as 8-bit PNGs (the CDC FID convention).

    Args:
        network: ``pytorch_fid.inception.InceptionV3([3])`` with the FID weights loaded.
    """

    name = "pytorch-fid-inception"
    dim = DIM

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # PIL's convert("RGB") of a gray PNG
        elif images.shape[1] != 3:
            raise BenchmarkError(f"{self.name}: images need 1 or 3 channels, got {images.shape[1]}")
        (pool3,) = self.network(png_round_trip(images))
        return pool3.reshape(images.shape[0], -1)


def load_pytorch_fid_network(path: Path) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3([3])``, its ``load_state_dict_from_url`` answered from ``path`` (no download)."""
    from pytorch_fid import inception

    check_pt_inception_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BenchmarkError(
            f"{PytorchFIDInception.name}: {path} cannot be read as a torch state dict ({describe(exc)}); "
            f"expected pytorch-fid's {FILENAME} from {URL}"
        ) from None

    def from_file(url, *args, **kwargs):
        if url != inception.FID_WEIGHTS_URL:  # only the FID weights are ours to answer
            raise BenchmarkError(f"{PytorchFIDInception.name}: pytorch-fid asked for {url}; nothing is downloaded")
        return state

    try:
        with mock.patch.object(inception, "load_state_dict_from_url", from_file):
            network = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[DIM]])
    except RuntimeError as exc:  # load_state_dict: missing or unexpected keys, wrong shapes
        raise BenchmarkError(
            f"{PytorchFIDInception.name}: {path} is not pytorch-fid's FID Inception ({describe(exc)}); "
            f"expected {FILENAME} from {URL}"
        ) from None
    return network.eval()


def check_pt_inception_file(path) -> str:
    """The file is a torch checkpoint of tensors (signature and pickle only); its kind in words, else an error."""
    problem = f"{PytorchFIDInception.name}: {path} cannot be read as a torch state dict"
    return check_file(path, "checkpoint", problem, f"expected pytorch-fid's {FILENAME} from {URL}").what


def _find_file(path: str | None) -> Path:
    return find_weights_file(path, ENV_VAR, default_path(), FILENAME, "pytorch-fid's FID Inception", URL)


@FEATURES.register("pytorch-fid-inception")
def build_pytorch_fid_inception(cache_dir=None, device="cpu", path: str | None = None) -> PytorchFIDInception:
    """pytorch-fid's Inception from ``path``, else ``$GTB_PT_INCEPTION_PATH``, else torch hub's checkpoints folder.

    Args:
        path: ``pt_inception-2015-12-05-6726825d.pth``, or a folder holding it.
        cache_dir: unused (the file is never downloaded or copied).
    """
    return PytorchFIDInception(load_pytorch_fid_network(_find_file(path)))


def preflight_pytorch_fid_inception(path: str | None = None, **options) -> str:
    """What ``--dry-run`` checks: the weights file is found and is a torch checkpoint (no weights are read)."""
    file = _find_file(path)
    return f"{check_pt_inception_file(file)} at {file}"


build_pytorch_fid_inception.preflight = preflight_pytorch_fid_inception
