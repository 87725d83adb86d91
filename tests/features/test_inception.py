"""The inception extractor computes clean-fid's "clean" features: same quantisation, resize and network call.

clean-fid itself is run on the same images with a TorchScript stand-in for inception-2015-12-05.pt
(tests/features/standin.py), on both of its paths: a generator (compute_fid(gen=...)'s
get_model_features) and a folder of PNGs (the real images).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.errors import BenchmarkError
from benchmark.features import build_extractor
from benchmark.features import inception as inception_module
from benchmark.features.inception import FILENAME, URL, pil_resize, to_uint8, torch_resize
from benchmark.nets import BackboneConfig, StyledGenerator
from tests.features.standin import save_standin


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inception")
    save_standin(folder)
    return folder


@pytest.fixture
def cleanfid_model(standin_dir, monkeypatch):
    """clean-fid's own "clean" feature extractor, reading the stand-in instead of downloading to /tmp."""
    import cleanfid.features
    from cleanfid.inception_torchscript import InceptionV3W

    def local(path, download=True, resize_inside=False):
        return InceptionV3W(str(standin_dir), download=False, resize_inside=resize_inside)

    monkeypatch.setattr(cleanfid.features, "InceptionV3W", local)
    return cleanfid.features.build_feature_extractor("clean", torch.device("cpu"), use_dataparallel=False)


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    config = BackboneConfig(resolution=32, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8})
    G = StyledGenerator(config).eval()
    with torch.no_grad():
        for p in G.parameters():
            p.normal_(0, 0.5)
    return G


def _stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def _cleanfid_generated(generator, model, seed: int, num_gen: int, batch_size: int):
    """clean-fid's generator path (compute_fid(gen=...)); returns its features and the images it was given."""
    from cleanfid.fid import get_model_features

    produced = []

    def gen(z):  # clean-fid wants [0, 255]: map [-1, 1] as a saved PNG would be
        with torch.no_grad():
            images = torch.tanh(generator(z))
        produced.append(images)
        return to_uint8(images)

    torch.manual_seed(seed)
    features = get_model_features(
        gen, model, mode="clean", z_dim=16, num_gen=num_gen, batch_size=batch_size, device=torch.device("cpu"),
        verbose=False,
    )  # fmt: skip
    return features, produced


def _cleanfid_folder(folder, model, batch_size: int) -> np.ndarray:
    """clean-fid's folder path on the PNGs in ``folder``."""
    from cleanfid.fid import get_folder_features

    return get_folder_features(
        str(folder), model, num_workers=0, batch_size=batch_size, device=torch.device("cpu"), mode="clean",
        verbose=False,
    )  # fmt: skip


@pytest.mark.parametrize("resize", ["pil", "torch"])
def test_generator_path_equals_clean_fid(generator, cleanfid_model, standin_dir, resize):
    theirs, produced = _cleanfid_generated(generator, cleanfid_model, seed=1, num_gen=24, batch_size=8)
    ours = build_extractor("inception", path=str(standin_dir), resize=resize)
    with torch.no_grad():
        mine = torch.cat([ours(images) for images in produced]).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6)
    for a, b in zip(_stats(mine), _stats(theirs)):  # the FID's inputs
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def _real_images(folder) -> torch.Tensor:
    """Six smooth 40 px RGB patterns written as PNGs into ``folder``; returns them as uint8 (6, 3, 40, 40)."""
    folder.mkdir()
    grid = torch.linspace(0, 6.28, 40)
    pattern = (torch.sin(grid[:, None] * torch.arange(1, 7).view(6, 1, 1) + grid[None, :]) + 1) * 127.5
    images = torch.stack([pattern.to(torch.uint8)] * 3, 1)
    images[:, 1] = 255 - images[:, 1]
    for i, image in enumerate(images):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    return images


def test_folder_path_equals_clean_fid(tmp_path, cleanfid_model, standin_dir):
    images = _real_images(tmp_path / "real")
    theirs = _cleanfid_folder(tmp_path / "real", cleanfid_model, batch_size=3)
    ours = build_extractor("inception", path=str(standin_dir))
    mine = ours.extract(images.float() / 127.5 - 1, batch_size=3).numpy()  # how evaluate.py feeds real images
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6)


def test_fid_equals_the_clean_fid_pipeline(tmp_path, generator, cleanfid_model, standin_dir):
    """FID of generated vs real images: clean-fid's feature paths and ours, scored by benchmark.metrics.

    (benchmark.metrics.frechet_distance is itself tested against clean-fid's frechet_distance.)
    """
    from benchmark.metrics import frechet_distance

    real = _real_images(tmp_path / "real")
    fake_theirs, produced = _cleanfid_generated(generator, cleanfid_model, seed=2, num_gen=12, batch_size=6)
    real_theirs = _cleanfid_folder(tmp_path / "real", cleanfid_model, batch_size=6)
    ours = build_extractor("inception", path=str(standin_dir))
    fake_ours = ours.extract(torch.cat(produced), batch_size=6)
    real_ours = ours.extract(real.float() / 127.5 - 1, batch_size=6)
    fid_theirs = frechet_distance(real_theirs, fake_theirs)
    fid_ours = frechet_distance(real_ours, fake_ours)
    assert fid_theirs > 0
    assert fid_ours == pytest.approx(fid_theirs, rel=1e-9)


def test_quantisation_round_trips_uint8_and_rounds_half_up():
    levels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(levels.float() / 127.5 - 1), levels)
    assert to_uint8(torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0])).tolist() == [0, 0, 128, 255, 255]


@pytest.mark.parametrize("shape", [(3, 3, 64, 64), (2, 3, 256, 256), (2, 3, 40, 52), (2, 3, 52, 40), (1, 3, 299, 299)])
def test_torch_resize_reproduces_pil_bit_for_bit(shape):
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch_resize(images), pil_resize(images))
    assert torch.equal(pil_resize(images, workers=2), pil_resize(images))


def test_gray_images_are_repeated_to_rgb(standin_dir):
    ours = build_extractor("inception", path=str(standin_dir))
    gray = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ours(gray), ours(gray.expand(-1, 3, -1, -1)), rtol=0, atol=0)


def test_extractor_contract(standin_dir, monkeypatch):
    ours = build_extractor("inception", path=str(standin_dir / FILENAME), device="cpu")
    assert ours.name == "inception" and ours.dim == 2048 and not ours.training
    ours.train()
    assert not ours.training
    assert ours.extract(torch.rand(5, 3, 16, 16) * 2 - 1, batch_size=2).shape == (5, 2048)
    monkeypatch.setenv("GTB_INCEPTION_PATH", str(standin_dir))
    assert build_extractor("inception").dim == 2048


def test_missing_file_says_where_to_put_it_and_where_it_comes_from(tmp_path, monkeypatch):
    monkeypatch.delenv("GTB_INCEPTION_PATH", raising=False)
    monkeypatch.setattr(inception_module, "CLEANFID_DIR", tmp_path)
    with pytest.raises(BenchmarkError) as info:
        build_extractor("inception")
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / FILENAME) in message and URL in message and "GTB_INCEPTION_PATH" in message
    monkeypatch.setenv("GTB_INCEPTION_PATH", str(tmp_path / "elsewhere.pt"))
    with pytest.raises(BenchmarkError, match=r"elsewhere\.pt \(\$GTB_INCEPTION_PATH\)"):
        build_extractor("inception")
    with pytest.raises(BenchmarkError, match=r"nothing\.pt \(the 'path' option\)"):
        build_extractor("inception", path=str(tmp_path / "nothing.pt"))


def test_wrong_files_are_refused(tmp_path, standin_dir):
    not_script = tmp_path / "plain.pt"
    torch.save({"a": torch.zeros(1)}, not_script)
    with pytest.raises(BenchmarkError, match="is not a TorchScript file"):
        build_extractor("inception", path=str(not_script))
    no_layers = tmp_path / "nolayers.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(no_layers))
    with pytest.raises(BenchmarkError, match="no 'layers' submodule"):
        build_extractor("inception", path=str(no_layers))
    with pytest.raises(BenchmarkError, match="resize must be one of"):
        build_extractor("inception", path=str(standin_dir), resize="bilinear")
