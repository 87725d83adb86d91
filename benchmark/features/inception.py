"""clean-fid's Inception features: the TorchScript file inception-2015-12-05.pt with clean-fid's "clean" preprocessing.

What ``cleanfid.fid.compute_fid(gen=..., mode="clean")`` does to a generator's output, reproduced
step by step (cleanfid/fid.py get_model_features, resize.py make_resizer("PIL", False, "bicubic"),
inception_torchscript.py InceptionV3W):

1. clean-fid expects ``gen(z)`` to return images in [0, 255]; a generator in [-1, 1] is mapped the
   way images are saved to PNG (torchvision ``save_image``, stylegan2-ada): ``uint8(clamp(127.5 x + 128))``,
   i.e. round half up to the nearest level. Real images stored as uint8 and brought to [-1, 1] by
   ``u / 127.5 - 1`` come back to exactly ``u``.
2. Each channel becomes a float32 PIL image (mode "F") resized to 299 x 299 with PIL's bicubic
   filter (which widens its support when downsampling: antialiased), then clipped to [0, 255].
3. ``(x - 128) / 128`` goes through the TorchScript module's ``layers``, giving 2048 features.

Step 2 has two implementations, chosen by the ``resize`` option:

- ``"pil"``: clean-fid's own per-image, per-channel PIL calls on the CPU (in ``workers`` threads:
  PIL releases the GIL while resampling). The fastest on a CPU.
- ``"torch"``: the same filter on the extractor's device: PIL's tap positions and float64 weights
  (Resample.c ``precompute_coeffs``), applied one axis at a time with the same float64 accumulation
  order and a float32 intermediate, so it reproduces PIL's output bit for bit (tested on 38M
  resized values: no difference), without per-image Python work. The fastest on a GPU.
- ``"auto"`` (default): ``"torch"`` on an accelerator, ``"pil"`` on the CPU. Both give the same
  features, so the extractor's name (and the cache of real features) does not depend on the choice.
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmark.errors import BenchmarkError, describe
from benchmark.features.base import FEATURES, FeatureExtractor
from benchmark.features.weights import find_weights_file
from benchmark.files import check_file

FILENAME = "inception-2015-12-05.pt"
URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
ENV_VAR = "GTB_INCEPTION_PATH"
# clean-fid keeps (and downloads) the file in /tmp ("./" on Windows): cleanfid/features.py feature_extractor.
CLEANFID_DIR = Path("/tmp")
SIZE = 299
DIM = 2048
RESIZE_MODES = ("auto", "pil", "torch")


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 as a saved PNG holds it: round half up of 127.5 (x + 1), clamped."""
    return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------------------------
# PIL's bicubic resize


def pil_resize(images: torch.Tensor, size: int = SIZE, workers: int = 1) -> torch.Tensor:
    """clean-fid's resize: uint8 (B, C, H, W) -> float32 (B, C, size, size) via float PIL images, clipped."""
    array = images.cpu().numpy().astype(np.float32)

    def one(index: int) -> np.ndarray:
        b, c = divmod(index, array.shape[1])
        resized = Image.fromarray(array[b, c]).resize((size, size), resample=Image.BICUBIC)
        return np.asarray(resized).clip(0, 255)

    indices = range(array.shape[0] * array.shape[1])
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            planes = list(pool.map(one, indices))
    else:
        planes = [one(i) for i in indices]
    out = np.stack(planes).reshape(array.shape[0], array.shape[1], size, size)
    return torch.from_numpy(out)


def _bicubic(x: float) -> float:
    """PIL's bicubic kernel (Resample.c bicubic_filter, a = -0.5), same operation order."""
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


@lru_cache(maxsize=16)
def pil_bicubic_taps(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's resampling taps for one axis: source indices and float64 weights, both (out_size, ksize).

    A transcription of Resample.c ``precompute_coeffs`` for the whole-image box; unused taps
    point at the first source pixel with weight 0.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    index = torch.zeros(out_size, ksize, dtype=torch.long)
    weight = torch.zeros(out_size, ksize, dtype=torch.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)  # int() truncates towards zero, as C's cast does
        xmax = min(int(center + support + 0.5), in_size) - xmin
        taps = [_bicubic((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        total = 0.0
        for w in taps:
            total += w
        if total != 0.0:
            taps = [w / total for w in taps]
        index[xx, :xmax] = torch.arange(xmin, xmin + xmax)
        index[xx, xmax:] = xmin
        weight[xx, :xmax] = torch.tensor(taps, dtype=torch.float64)
    return index, weight


def _resample_last_axis(x: torch.Tensor, out_size: int) -> torch.Tensor:
    """One PIL pass along the last axis: float64 sums in tap order, stored as float32."""
    index, weight = pil_bicubic_taps(x.shape[-1], out_size)
    index, weight = index.to(x.device), weight.to(x.device)
    x = x.double()
    acc = torch.zeros(*x.shape[:-1], out_size, dtype=torch.float64, device=x.device)
    for k in range(index.shape[1]):
        acc = acc + x[..., index[:, k]] * weight[:, k]  # separate multiply and add, as PIL's C loop
    return acc.float()


def _pass(x: torch.Tensor, size: int, vertical: bool) -> torch.Tensor:
    if vertical:
        return _resample_last_axis(x.transpose(-1, -2), size).transpose(-1, -2) if x.shape[-2] != size else x
    return _resample_last_axis(x, size) if x.shape[-1] != size else x


def _two_passes(x: torch.Tensor, size: int, vertical_first: bool) -> torch.Tensor:
    return _pass(_pass(x, size, vertical_first), size, not vertical_first)


@lru_cache(maxsize=1)
def pillow_runs_longer_kernel_first() -> bool:
    """Whether the installed Pillow resamples along the axis with the longer kernel first.

    Pillow's C code up to 12.x always runs the horizontal pass first; Pillow 13 runs the vertical
    pass first when its kernel is longer (seen on 30 shapes). The two orders differ only by float32
    rounding of the intermediate image, and only for non-square inputs. A probe image tells which.
    """
    probe = (torch.sin(torch.arange(64 * 16, dtype=torch.float64) * 0.61) * 100 + 127.3).float().view(1, 1, 64, 16)
    resized = np.asarray(Image.fromarray(probe[0, 0].numpy()).resize((20, 20), resample=Image.BICUBIC))
    vertical_first = _two_passes(probe, 20, vertical_first=True)[0, 0].numpy()
    return bool(np.array_equal(resized, vertical_first))


def torch_resize(images: torch.Tensor, size: int = SIZE, chunk: int = 16) -> torch.Tensor:
    """PIL's float bicubic resize on the images' device: uint8 (B, C, H, W) -> float32 (B, C, size, size).

    Two passes with a float32 intermediate, as PIL: an axis already at ``size`` is skipped, and
    the horizontal pass goes first unless the installed Pillow puts a longer vertical kernel first
    (``pillow_runs_longer_kernel_first``; square images always go horizontal first).
    """
    height, width = images.shape[-2:]
    k_vertical, k_horizontal = (pil_bicubic_taps(n, size)[0].shape[1] for n in (height, width))
    vertical_first = k_vertical > k_horizontal and pillow_runs_longer_kernel_first()
    out = []
    for start in range(0, images.shape[0], chunk):
        x = _two_passes(images[start : start + chunk].float(), size, vertical_first)
        out.append(x.clamp(0, 255).contiguous())
    return torch.cat(out)


# --------------------------------------------------------------------------------------------
# The extractor


class CleanFIDInception(FeatureExtractor):
    """Inception pool features (2048-d) exactly as clean-fid's "clean" mode computes them.

    Args:
        network: the loaded TorchScript module (``inception-2015-12-05.pt``); its ``layers``
            submodule maps normalised 299 px images to (B, 2048, ...) features.
        resize: ``"pil"`` (clean-fid's code path, on the CPU), ``"torch"`` (the same filter on the
            network's device, bit-identical; faster on a GPU) or ``"auto"`` (torch on an accelerator).
        workers: threads for the ``"pil"`` resize.
    """

    name = "inception"
    dim = DIM

    def __init__(self, network: torch.nn.Module, resize: str = "auto", workers: int = 1):
        super().__init__()
        if resize not in RESIZE_MODES:
            raise BenchmarkError(f"inception: resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        if not hasattr(network, "layers"):
            raise BenchmarkError(
                "inception: the TorchScript module has no 'layers' submodule; expected clean-fid's "
                f"{FILENAME} from {URL}"
            )
        self.network = network
        self.resize = resize
        self.workers = max(int(workers), 1)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images (any size, 1 or 3 channels) -> the network's input: 299 px, (x - 128) / 128."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # as PIL's convert("RGB") of a gray image
        elif images.shape[1] != 3:
            raise BenchmarkError(f"inception: images need 1 or 3 channels, got {images.shape[1]}")
        quantized = to_uint8(images)
        device = next(self.network.parameters()).device
        if self.resize == "pil" or (self.resize == "auto" and device.type == "cpu"):
            resized = pil_resize(quantized, SIZE, self.workers).to(device)
        else:
            resized = torch_resize(quantized.to(device), SIZE)
        return (resized - 128) / 128

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(images)
        features = self.network.layers(x).reshape(x.shape[0], -1)
        if features.shape[1] != DIM:
            raise BenchmarkError(f"inception: the network gives {features.shape[1]} features, expected {DIM}")
        return features


def load_inception_network(path) -> torch.nn.Module:
    check_inception_file(path)  # an HTML page or a plain checkpoint is named as such, not as a zip error
    try:
        with warnings.catch_warnings():
            # The file is TorchScript (as clean-fid ships it); the loader's deprecation is not ours to fix.
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
            network = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # not a TorchScript archive
        raise BenchmarkError(
            f"inception: {path} is not a TorchScript file ({describe(exc)}); expected clean-fid's {FILENAME} from {URL}"
        ) from None
    return network.eval()


def check_inception_file(path) -> str:
    """The file is a TorchScript archive (its signature and entries only); its kind in words, else a one-line error."""
    problem = f"inception: {path} is not a TorchScript file"
    return check_file(path, "torchscript", problem, f"expected clean-fid's {FILENAME} from {URL}").what


def _find_inception_file(path: str | None) -> Path:
    return find_weights_file(path, ENV_VAR, CLEANFID_DIR / FILENAME, FILENAME, "clean-fid's Inception", URL)


@FEATURES.register("inception")
def build_inception(
    cache_dir=None, device="cpu", path: str | None = None, resize: str = "auto", workers: int | None = None
) -> CleanFIDInception:
    """clean-fid's Inception from ``path``, else ``$GTB_INCEPTION_PATH``, else clean-fid's /tmp/inception-2015-12-05.pt.

    Args:
        path: the TorchScript file, or a folder that holds it.
        resize: ``"auto"`` (default: torch on an accelerator, else pil), ``"pil"`` (clean-fid's code)
            or ``"torch"`` (the same filter on ``device``); all give the same features.
        workers: threads for the PIL resize (default: 1 on the CPU, where the network needs the
            cores, else up to 8).
        cache_dir: unused (the file is never downloaded or copied).
    """
    file = _find_inception_file(path)
    if workers is None:
        workers = 1 if str(device).startswith("cpu") else min(8, os.cpu_count() or 1)
    return CleanFIDInception(load_inception_network(file), resize=resize, workers=workers)


def preflight_inception(path: str | None = None, **options) -> str:
    """What ``--dry-run`` checks: the weights file is found and is TorchScript (no weights are read)."""
    file = _find_inception_file(path)
    return f"{check_inception_file(file)} at {file}"


build_inception.preflight = preflight_inception
