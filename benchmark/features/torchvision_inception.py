"""torchvision's ImageNet Inception-v3 pool3 features: the AdAM / RICK FID convention.

AdAM and RICK score 5,000 generated float tensors (no 8-bit rounding) against at most 5,000 real
images with torchvision's ImageNet ``inception_v3`` (``Inception_V3_Weights.IMAGENET1K_V1``, the
file ``inception_v3_google-0cc3c7bd.pth``), taking the 2048-d output of its last average pool
(pool3) after a bilinear resize to 299 x 299 (``shared/PROTOCOLS.md``, "Two FID conventions").

Here: images in [-1, 1] go to [0, 1], are resized bilinearly to 299 x 299 (``align_corners=False``,
no antialiasing, as ``F.interpolate`` resizes a float tensor) and normalised by the ImageNet mean
and std, the input torchvision's weights expect; the network is built as torchvision builds it for
these weights (``transform_input=True``, which maps that input back to the [-1, 1] scale the Google
weights were trained on), its classifier dropped, so the features are ``avgpool`` flattened.

The weights come from a file: ``path`` option, else ``$GTB_TV_INCEPTION_PATH``, else torch hub's
checkpoints folder (where ``inception_v3(weights="DEFAULT")`` would download it); never a download.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import BenchmarkError, abbreviate, describe
from benchmark.features.base import FEATURES, FeatureExtractor
from benchmark.features.vgg import IMAGENET_MEAN, IMAGENET_STD
from benchmark.features.weights import find_weights_file
from benchmark.files import check_file

FILENAME = "inception_v3_google-0cc3c7bd.pth"
URL = f"https://download.pytorch.org/models/{FILENAME}"
ENV_VAR = "GTB_TV_INCEPTION_PATH"
SIZE = 299
DIM = 2048


def default_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / FILENAME


class TorchvisionInception(FeatureExtractor):
    """torchvision Inception-v3 pool3 features (2048-d) of float images (the AdAM / RICK FID convention).

    Args:
        network: torchvision's ``inception_v3`` with ImageNet weights and ``transform_input=True``.
    """

    name = "torchvision-inception"
    dim = DIM

    def __init__(self, network: nn.Module):
        super().__init__()
        network.fc = nn.Identity()  # pool3 (after avgpool, dropout and flatten), not the 1,000 logits
        network.AuxLogits = None
        network.aux_logits = False
        self.network = network
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1], 1 or 3 channels -> 299 px, ImageNet-normalised RGB."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        elif images.shape[1] != 3:
            raise BenchmarkError(f"{self.name}: images need 1 or 3 channels, got {images.shape[1]}")
        x = (images.float() + 1) / 2
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(self.preprocess(images)).reshape(images.shape[0], -1)


def load_torchvision_inception(path: Path) -> nn.Module:
    """torchvision's ``inception_v3`` as built for its ImageNet weights, with the state dict at ``path``."""
    from torchvision.models import inception_v3

    check_tv_inception_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BenchmarkError(
            f"{TorchvisionInception.name}: {path} cannot be read as a torch state dict ({describe(exc)}); "
            f"expected torchvision's {FILENAME} from {URL}"
        ) from None
    if not isinstance(state, dict):
        raise BenchmarkError(f"{TorchvisionInception.name}: {path} holds a {type(state).__name__}; expected {FILENAME}")
    with torch.device("meta"):
        model = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for key in expected:  # older files lack batch norm's counter (torchvision's own loader tolerates that)
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        parts = [
            f"{len(keys)} {kind}: {abbreviate(keys, 4)}"
            for kind, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong))
            if keys
        ]
        raise BenchmarkError(
            f"{TorchvisionInception.name}: {path} is not a torchvision inception_v3 state dict ({'; '.join(parts)}); "
            f"expected {FILENAME} from {URL}"
        )
    model.load_state_dict(state, assign=True)
    return model.eval()


def check_tv_inception_file(path) -> str:
    """The file is a torch checkpoint of tensors (signature and pickle only); its kind in words, else an error."""
    problem = f"{TorchvisionInception.name}: {path} cannot be read as a torch state dict"
    return check_file(path, "checkpoint", problem, f"expected torchvision's {FILENAME} from {URL}").what


def _find_file(path: str | None) -> Path:
    return find_weights_file(path, ENV_VAR, default_path(), FILENAME, "torchvision's Inception-v3", URL)


@FEATURES.register("torchvision-inception")
def build_torchvision_inception(cache_dir=None, device="cpu", path: str | None = None) -> TorchvisionInception:
    """torchvision's Inception-v3 from ``path``, else ``$GTB_TV_INCEPTION_PATH``, else torch hub's checkpoints folder.

    Args:
        path: ``inception_v3_google-0cc3c7bd.pth``, or a folder holding it.
        cache_dir: unused (the file is never downloaded or copied).
    """
    return TorchvisionInception(load_torchvision_inception(_find_file(path)))


def preflight_torchvision_inception(path: str | None = None, **options) -> str:
    """What ``--dry-run`` checks: the weights file is found and is a torch checkpoint (no weights are read)."""
    file = _find_file(path)
    return f"{check_tv_inception_file(file)} at {file}"


build_torchvision_inception.preflight = preflight_torchvision_inception
