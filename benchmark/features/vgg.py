"""VGG16 for the perceptual losses of BSA and GLO (and as a second feature space): the original Caffe
weights, BSA's own network, or torchvision's ImageNet weights as a labelled approximation.

Two weight files are accepted, read from a file (nothing is downloaded at run time), and told
apart from their contents:

- **Caffe VGG16** (``weights == "caffe"``): the original VGG_ILSVRC_16_layers Caffe model converted
  to PyTorch, BSA's official network (its code loads Chainer's ``VGG16Layers``, itself a
  conversion of that Caffe model). Detected from Caffe's layer names (``conv1_1.weight`` ..
  ``fc8.bias``, as caffemodel converters and Chainer's VGG16Layers name them) or, for the widely
  used conversion in torchvision's key names (jcjohnson/pytorch-vgg ``vgg16-00b39a1b.pth``, whose
  keys cannot tell it from torchvision's), from its file name. These weights take BGR 0-255 minus
  the Caffe mean (B 103.939, G 116.779, R 123.68), always: their activations have their own scale,
  which is what BSA's 0.001 per-layer weight was tuned against.
- **torchvision's VGG16** (``weights == "torchvision"``, ``vgg16-397923af.pth``,
  ``VGG16_Weights.IMAGENET1K_V1``): a different network. ``input_scale="caffe"`` feeds it the
  official *input* scale (RGB 0-255 minus the ImageNet mean), an approximation of the official
  loss, logged as such when the extractor is built.

- ``feature_maps``: the ten ReLU outputs conv1_1 .. conv4_3 at the input's own resolution, the
  layers BSA's official code compares (nogu-atsu/small-dataset-image-generation train.py ``layers``;
  Chainer's VGG16Layers reports each conv after its ReLU). By default torchvision's network takes
  RGB in [0, 1] normalised by the ImageNet mean and std, the preprocessing its weights were
  trained with. BSA's official code fed Chainer's Caffe VGG16 ``(x + 1) * 127.5`` minus the
  ImageNet mean, a 0-255 scale: ``input_scale="caffe"`` feeds the same scale (RGB, as these
  weights expect), so the maps, and the perceptual term against the pixel term, are as large as
  in the official loss. The per-layer loss weights (BSA: 0.001 each) are the method's business.
- ``forward``: fc7, the 4096-d output of the second fully connected layer after its ReLU, of the
  image resized to 224 px (bilinear, antialiased), as the classifier was trained.

Images are [-1, 1] with any number of channels: one gray channel is repeated to RGB.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import BenchmarkError, abbreviate, describe
from benchmark.features.base import FEATURES, FeatureExtractor
from benchmark.features.weights import find_weights_file
from benchmark.files import check_file

log = logging.getLogger(__name__)

FILENAME = "vgg16-397923af.pth"
URL = f"https://download.pytorch.org/models/{FILENAME}"
ENV_VAR = "GTB_VGG16_PATH"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # VGG_ILSVRC_16_layers' mean pixel, in BGR order, 0-255
# jcjohnson/pytorch-vgg's conversion of the Caffe model, in torchvision's key names
CAFFE_TORCHVISION_KEYED = "vgg16-00b39a1b"
# Caffe's layer names -> torchvision's vgg16 module paths
CAFFE_LAYERS = {
    **{
        name: f"features.{i}"
        for name, i in zip(
            ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
             "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"],
            [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
        )
    },
    "fc6": "classifier.0",
    "fc7": "classifier.3",
    "fc8": "classifier.6",
}  # fmt: skip
WEIGHTS_DESCRIPTION = {
    "caffe": "the original Caffe VGG16 (BSA's official network), fed BGR 0-255 minus the Caffe mean",
    "torchvision": "torchvision's ImageNet VGG16, an approximation of BSA's Caffe VGG16",
}
INPUT_SIZE = 224
# torchvision's vgg16().features indices of the ReLUs after conv1_1 .. conv4_3 (pools at 4, 9, 16, 23).
FEATURE_MAP_LAYERS = {
    "conv1_1": 1,
    "conv1_2": 3,
    "conv2_1": 6,
    "conv2_2": 8,
    "conv3_1": 11,
    "conv3_2": 13,
    "conv3_3": 15,
    "conv4_1": 18,
    "conv4_2": 20,
    "conv4_3": 22,
}


def default_path() -> Path:
    """Where torchvision caches the file: ``torch.hub.get_dir()/checkpoints`` (~/.cache/torch/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FILENAME


class VGG16Features(FeatureExtractor):
    """VGG16 fc7 features (4096-d) and conv1_1 .. conv4_3 feature maps of images in [-1, 1].

    Args:
        vgg: a torchvision ``vgg16`` with its weights loaded (frozen here).
        weights: "torchvision" (ImageNet-normalised RGB input) or "caffe" (the original Caffe
            weights: BGR 0-255 minus the Caffe mean, whatever the input scale asked).
    """

    name = "vgg16"
    dim = 4096
    layer_names = tuple(FEATURE_MAP_LAYERS)
    input_scales = ("caffe",)

    def __init__(self, vgg: nn.Module, weights: str = "torchvision"):
        super().__init__()
        if weights not in WEIGHTS_DESCRIPTION:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS_DESCRIPTION)}, got {weights!r}")
        self.weights = weights
        self.features = vgg.features
        self.avgpool = vgg.avgpool
        self.fc = vgg.classifier[:5]  # fc6, ReLU, Dropout (identity in eval), fc7, ReLU
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("bgr_mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    @property
    def description(self) -> str:
        """Which network this is, in words (recorded with the results of the methods that use it)."""
        return WEIGHTS_DESCRIPTION[self.weights]

    def normalize(self, images: torch.Tensor, input_scale: str | None = None) -> torch.Tensor:
        """[-1, 1], 1 or 3 channels -> the network's input. Caffe weights: BGR 0-255 minus the Caffe mean
        (their own preprocessing, for any ``input_scale``). torchvision weights: ImageNet-normalised RGB,
        or with ``input_scale="caffe"`` the official input scale, RGB 0-255 minus the ImageNet mean."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        elif images.shape[1] != 3:
            raise BenchmarkError(f"vgg16: images need 1 or 3 channels, got {images.shape[1]}")
        if input_scale is not None and input_scale not in self.input_scales:
            raise ValueError(f"vgg16 has no input scale {input_scale!r}; valid: {', '.join(self.input_scales)}")
        if self.weights == "caffe":
            return (images.flip(1) + 1) * 127.5 - self.bgr_mean
        if input_scale == "caffe":
            return (images + 1) * 127.5 - self.mean * 255
        return ((images + 1) / 2 - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.normalize(images)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))

    def feature_maps(self, images: torch.Tensor, input_scale: str | None = None) -> list[torch.Tensor]:
        """conv1_1 .. conv4_3 after their ReLUs, at the input's resolution (differentiable in ``images``)."""
        x, maps = self.normalize(images, input_scale), []
        wanted = set(FEATURE_MAP_LAYERS.values())
        for i, layer in enumerate(self.features[: max(wanted) + 1]):
            x = layer(x)
            if i in wanted:
                maps.append(x)
        return maps


def weights_kind(path: Path, state: dict) -> str:
    """Which VGG16 a state dict holds: "caffe" (Caffe's layer names, or jcjohnson's conversion by its file
    name) or "torchvision"."""
    if "conv1_1.weight" in state or CAFFE_TORCHVISION_KEYED in Path(path).name:
        return "caffe"
    return "torchvision"


def caffe_to_torchvision_keys(state: dict) -> dict:
    """A state dict in Caffe's layer names (``conv1_1.weight``) renamed to torchvision's (``features.0.weight``)."""
    renamed = {}
    for key, value in state.items():
        layer, _, param = key.rpartition(".")
        renamed[f"{CAFFE_LAYERS[layer]}.{param}" if layer in CAFFE_LAYERS else key] = value
    return renamed


def load_vgg16(path: Path) -> nn.Module:
    """torchvision's vgg16 with the state dict at ``path`` (built on the meta device, then assigned: no init
    cost); a Caffe VGG16 in Caffe's layer names is renamed first."""
    return read_vgg16(path)[0]


def read_vgg16(path: Path) -> tuple[nn.Module, str]:
    """``load_vgg16``'s network and which weights it holds ("caffe" or "torchvision", ``weights_kind``)."""
    from torchvision.models import vgg16

    check_vgg16_file(path)  # an HTML page or a pickled model is named as such, not as an unpickling error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file
        raise BenchmarkError(
            f"vgg16: {path} cannot be read as a torch state dict ({describe(exc)}); "
            f"expected torchvision's {FILENAME} from {URL}"
        ) from None
    if not isinstance(state, dict):
        raise BenchmarkError(f"vgg16: {path} holds a {type(state).__name__}; expected torchvision's {FILENAME}")
    kind = weights_kind(path, state)
    state = caffe_to_torchvision_keys(state)
    with torch.device("meta"):
        model = vgg16()
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        parts = [
            f"{len(keys)} {what}: {abbreviate(keys, 4)}"
            for what, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong))
            if keys
        ]
        raise BenchmarkError(
            f"vgg16: {path} is not a torchvision vgg16 state dict ({'; '.join(parts)}); expected {FILENAME} from {URL}"
        )
    model.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    return model.eval(), kind


def check_vgg16_file(path) -> str:
    """The file is a torch checkpoint of tensors (its signature and pickle only); its kind in words, else an error."""
    problem = f"vgg16: {path} cannot be read as a torch state dict"
    return check_file(path, "checkpoint", problem, f"expected torchvision's {FILENAME} from {URL}").what


def _find_vgg16_file(path: str | None) -> Path:
    return find_weights_file(path, ENV_VAR, default_path(), FILENAME, "torchvision's VGG16", URL)


@FEATURES.register("vgg16")
def build_vgg16(cache_dir=None, device="cpu", path: str | None = None) -> VGG16Features:
    """VGG16 from ``path``, else ``$GTB_VGG16_PATH``, else torchvision's cache (~/.cache/torch/hub): the Caffe
    weights when the file is a Caffe VGG16 (``weights_kind``), else torchvision's, with a logged note.

    Args:
        path: the state dict file, or a folder that holds ``vgg16-397923af.pth``.
        cache_dir: unused (the file is never downloaded or copied).
    """
    file = _find_vgg16_file(path)
    model, kind = read_vgg16(file)
    if kind == "torchvision":
        log.info(
            "vgg16: %s holds torchvision's ImageNet VGG16, an approximation of BSA's official Caffe VGG16 "
            "(its activations have another scale); for the official network give a Caffe VGG16 converted to "
            "PyTorch (jcjohnson/pytorch-vgg %s.pth, or one in Caffe's layer names): docs/pretrained_files.md",
            file,
            CAFFE_TORCHVISION_KEYED,
        )
    return VGG16Features(model, weights=kind)


def preflight_vgg16(path: str | None = None, **options) -> str:
    """What ``--dry-run`` checks: the weights file is found and is a torch checkpoint (no weights are read)."""
    file = _find_vgg16_file(path)
    return f"{check_vgg16_file(file)} at {file}"


build_vgg16.preflight = preflight_vgg16
