"""The vgg16 extractor loads torchvision's VGG16 from a file and gives BSA's conv1_1 .. conv4_3 maps and fc7."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.errors import BenchmarkError
from benchmark.features import build_extractor
from benchmark.features.vgg import FILENAME, IMAGENET_MEAN, IMAGENET_STD, URL
from tests.features.standin import random_vgg16_state


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / FILENAME
    state = random_vgg16_state()
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def reference(vgg_file):
    """torchvision's own vgg16 with the same weights."""
    from torchvision.models import vgg16

    with torch.device("meta"):
        model = vgg16()
    model.load_state_dict(vgg_file[1], assign=True)
    return model.eval()


@pytest.fixture(scope="module")
def extractor(vgg_file):
    return build_extractor("vgg16", path=str(vgg_file[0]))


def _imagenet(images: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((images + 1) / 2 - mean) / std


def test_feature_maps_are_the_relus_of_conv1_1_to_conv4_3(extractor, reference):
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        maps = extractor.feature_maps(images)
        x, expected = _imagenet(images), []
        for layer in reference.features[:23]:
            x = layer(x)
            if isinstance(layer, torch.nn.ReLU):
                expected.append(x)
    assert extractor.layer_names == tuple(
        f"conv{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3)) for i in range(1, n + 1)
    )
    assert [m.shape[1] for m in maps] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512]
    assert [m.shape[-1] for m in maps] == [64, 64, 32, 32, 16, 16, 16, 8, 8, 8]
    for ours, theirs in zip(maps, expected, strict=True):
        torch.testing.assert_close(ours, theirs)
        assert (ours >= 0).all()


def test_forward_is_fc7_after_relu_at_224_px(extractor, reference):
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        x = F.interpolate(_imagenet(images), size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
        expected = reference.classifier[:5](torch.flatten(reference.avgpool(reference.features(x)), 1))
        features = extractor(images)
    assert extractor.name == "vgg16" and extractor.dim == 4096 and features.shape == (1, 4096)
    torch.testing.assert_close(features, expected)


def test_gray_images_and_gradients(extractor):
    gray = (torch.rand(1, 1, 32, 32) * 2 - 1).requires_grad_(True)
    maps = extractor.feature_maps(gray)
    with torch.no_grad():
        torch.testing.assert_close(maps[3], extractor.feature_maps(gray.expand(-1, 3, -1, -1))[3])
    sum(m.mean() for m in maps).backward()
    assert gray.grad is not None and gray.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in extractor.parameters()) and not extractor.training


def test_path_may_be_a_folder_or_the_environment_variable(vgg_file, monkeypatch):
    assert build_extractor("vgg16", path=str(vgg_file[0].parent)).dim == 4096
    monkeypatch.setenv("GTB_VGG16_PATH", str(vgg_file[0]))
    assert build_extractor("vgg16").dim == 4096


def test_missing_file_names_torchvision_url_and_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("GTB_VGG16_PATH", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # torchvision's cache: $TORCH_HOME/hub/checkpoints
    with pytest.raises(BenchmarkError) as info:
        build_extractor("vgg16")
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "hub" / "checkpoints" / FILENAME) in message and URL in message
    assert "GTB_VGG16_PATH" in message


def test_wrong_files_are_refused(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(BenchmarkError, match="cannot be read as a torch state dict"):
        build_extractor("vgg16", path=str(text))
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1), "features.0.weight": torch.zeros(1)}, other)
    with pytest.raises(BenchmarkError) as info:
        build_extractor("vgg16", path=str(other))
    message = str(info.value)
    assert "not a torchvision vgg16 state dict" in message and "\n" not in message
    assert "31 missing keys" in message and "1 unexpected keys: conv.weight" in message
    assert "1 wrong shapes: features.0.weight" in message


def test_bsa_perceptual_to_pixel_ratio_matches_the_official_preprocessing(extractor, reference, tiny_source):
    """BSA's official code feeds Caffe's VGG16 (x + 1) * 127.5 minus the ImageNet mean; with the same
    weights, our BSA's perceptual/pixel ratio on a fixed pair equals that preprocessing's."""
    from benchmark.method import build_method
    from tests.methods.helpers import toy_target

    method = build_method("bsa", tiny_source, toy_target(), perceptual=extractor)
    generator = torch.Generator().manual_seed(0)
    fake, real = (torch.rand(2, 1, 32, 32, generator=generator) * 2 - 1 for _ in range(2))
    pixel = F.l1_loss(fake, real)
    ours = method.perceptual_weight * sum(method.perceptual_distances(fake, real)) / pixel

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    relu_indices = (1, 3, 6, 8, 11, 13, 15, 18, 20, 22)  # conv1_1 .. conv4_3 after ReLU

    def official_maps(images):
        x, maps = (images.expand(-1, 3, -1, -1) + 1) * 127.5 - mean, []
        for i, layer in enumerate(reference.features[:23]):
            x = layer(x)
            if i in relu_indices:
                maps.append(x)
        return maps

    with torch.no_grad():
        official = 0.001 * sum(F.l1_loss(a, b) for a, b in zip(official_maps(fake), official_maps(real))) / pixel
        torchvision_scale = (
            0.001
            * sum(F.l1_loss(a, b) for a, b in zip(extractor.feature_maps(fake), extractor.feature_maps(real)))
            / pixel
        )
    assert abs(ours.item() / official.item() - 1) < 0.01
    assert official.item() > 10 * torchvision_scale.item()  # what torchvision's normalised input would have given


def test_a_caffe_vgg16_is_detected_and_fed_its_own_bgr_0_255_input(vgg_file, reference, tmp_path, caplog):
    """BSA's official network is the original Caffe VGG16: a conversion in Caffe's layer names (or jcjohnson's
    vgg16-00b39a1b.pth, by name) is that network, always fed BGR 0-255 minus the Caffe mean; torchvision's
    weights are the labelled approximation, with a logged note."""
    from benchmark.features.vgg import CAFFE_BGR_MEAN, CAFFE_LAYERS

    torchvision_names = {v: k for k, v in CAFFE_LAYERS.items()}
    caffe_state = {}
    for key, value in vgg_file[1].items():
        layer, _, param = key.rpartition(".")
        caffe_state[f"{torchvision_names[layer]}.{param}"] = value
    torch.save(caffe_state, tmp_path / "VGG_ILSVRC_16_layers.pth")
    (tmp_path / "vgg16-00b39a1b.pth").symlink_to(vgg_file[0])

    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    bgr = (images.flip(1) + 1) * 127.5 - torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1)
    expected = reference.features[:23](bgr)  # conv4_3 after its ReLU
    for name in ("VGG_ILSVRC_16_layers.pth", "vgg16-00b39a1b.pth"):
        caffe = build_extractor("vgg16", path=str(tmp_path / name))
        assert caffe.weights == "caffe" and "original Caffe VGG16" in caffe.description
        for scale in (None, "caffe"):  # the Caffe weights take their own input, whatever the method asks
            torch.testing.assert_close(caffe.feature_maps(images, scale)[-1], expected)
    with caplog.at_level("INFO", logger="benchmark.features.vgg"):
        torchvision = build_extractor("vgg16", path=str(vgg_file[0]))
    assert torchvision.weights == "torchvision" and "approximation" in torchvision.description
    assert "an approximation of BSA's official Caffe VGG16" in caplog.text
