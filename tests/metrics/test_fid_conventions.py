"""The FID conventions of few-shot adaptation as metrics: each equals its reference package's FID on the
same features, and each convention's features differ from the others' on the same images."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.config import EVAL_PRESETS, EvalConfig, apply_eval_preset
from benchmark.errors import BenchmarkError
from benchmark.features import build_extractor
from benchmark.features import pytorch_fid_inception as cdc
from benchmark.features import torchvision_inception as adam
from benchmark.features.inception import to_uint8
from benchmark.metrics.fid import feature_statistics
from benchmark.metrics.registry import METRICS, Scoring, metric_id
from tests.features.standin import random_pt_inception_state, random_tv_inception_state, save_standin


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    torch.save(random_pt_inception_state(), folder / cdc.FILENAME)
    torch.save(random_tv_inception_state(), folder / adam.FILENAME)
    save_standin(folder)  # clean-fid's inception-2015-12-05.pt (the default convention)
    return folder


@pytest.fixture(scope="module")
def extractors(weights):
    return {
        name: build_extractor(name, path=str(weights))
        for name in ("inception", "pytorch-fid-inception", "torchvision-inception")
    }


def _scoring(group: str, real: np.ndarray, fake: np.ndarray) -> Scoring:
    extractor = METRICS.get(group).extractor
    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
    return Scoring(
        real_t, fake_t, EvalConfig(), torch.device("cpu"), torch.zeros(len(real)), torch.zeros(len(fake)), False, 1,
        real_t[:2], None, {group: feature_statistics(real_t)}, features={extractor: (real_t, fake_t)},
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")  # in both references
@pytest.mark.parametrize("group", ["fid_cdc", "fid_adam"])
def test_each_convention_equals_the_reference_packages_fid_on_the_same_features(group):
    from cleanfid.fid import frechet_distance as cleanfid_frechet
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 48))
    fake = rng.normal(size=(250, 48)) * 1.3 + 0.2
    value = METRICS.get(group).compute(_scoring(group, real, fake))[group]
    stats = (real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert value == pytest.approx(calculate_frechet_distance(*stats), rel=1e-6)
    assert value == pytest.approx(cleanfid_frechet(*stats), rel=1e-6)


def test_the_conventions_features_differ_on_the_same_images(extractors):
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    features = {name: e.extract(images) for name, e in extractors.items()}
    assert all(f.shape == (3, 2048) and torch.isfinite(f).all() for f in features.values())
    names = list(features)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.allclose(features[a], features[b], rtol=1e-3, atol=1e-3), (a, b)


def test_cdc_reads_8_bit_pngs_and_adam_float_images(extractors):
    """Below half an 8-bit level a change is lost in CDC's PNGs and seen by AdAM's float pipeline."""
    base = to_uint8(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    images = base.float() / 127.5 - 1
    nudged = images + 0.3 / 127.5  # 0.3 of a level: the same bytes in a PNG
    pt, tv = extractors["pytorch-fid-inception"], extractors["torchvision-inception"]
    assert torch.equal(pt.extract(images), pt.extract(nudged))
    assert not torch.equal(tv.extract(images), tv.extract(nudged))


def test_the_png_round_trip_is_what_a_saved_png_reads_back_as():
    from torchvision.transforms.functional import to_tensor
    from torchvision.utils import save_image

    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 2.2 - 1.1
    for image, ours in zip(images, cdc.png_round_trip(images)):
        buffer = io.BytesIO()
        save_image(image, buffer, format="png", normalize=True, value_range=(-1, 1))
        buffer.seek(0)
        assert torch.equal(to_tensor(Image.open(buffer).convert("RGB")), ours)


def test_the_pytorch_fid_network_is_pytorch_fids_own(weights, extractors):
    from unittest import mock

    from pytorch_fid import inception

    state = torch.load(weights / cdc.FILENAME, weights_only=True)
    with mock.patch.object(inception, "load_state_dict_from_url", lambda url, **kw: state):
        reference = inception.InceptionV3([3]).eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        expected = reference(to_uint8(images).float() / 255)[0].flatten(1)
    torch.testing.assert_close(extractors["pytorch-fid-inception"].extract(images), expected)


def test_the_torchvision_network_is_torchvisions_imagenet_inception(weights, extractors):
    from torchvision.models import inception_v3

    reference = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    reference.load_state_dict(torch.load(weights / adam.FILENAME, weights_only=True))
    reference.fc = torch.nn.Identity()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4)) * 2 - 1
    x = torch.nn.functional.interpolate((images + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False)
    x = torchvision_normalize(x)
    with torch.no_grad():
        expected = reference.eval()(x)
    torch.testing.assert_close(extractors["torchvision-inception"].extract(images), expected)


def torchvision_normalize(x: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.functional import normalize

    return normalize(x, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def test_building_never_downloads(weights, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    for name in ("pytorch-fid-inception", "torchvision-inception"):
        build_extractor(name, path=str(weights))


@pytest.mark.parametrize("module", [cdc, adam], ids=["cdc", "adam"])
def test_a_missing_weights_file_names_the_variable_and_the_url(module, tmp_path, monkeypatch):
    monkeypatch.setenv(module.ENV_VAR, str(tmp_path))
    name = "pytorch-fid-inception" if module is cdc else "torchvision-inception"
    with pytest.raises(BenchmarkError) as info:
        build_extractor(name)
    message = str(info.value)
    assert "\n" not in message and f"${module.ENV_VAR}" in message and module.URL in message


@pytest.mark.parametrize("module", [cdc, adam], ids=["cdc", "adam"])
def test_another_networks_weights_are_refused_in_one_line(module, tmp_path):
    path = tmp_path / module.FILENAME
    torch.save({"features.0.weight": torch.zeros(2, 3, 1, 1)}, path)
    name = "pytorch-fid-inception" if module is cdc else "torchvision-inception"
    with pytest.raises(BenchmarkError, match=module.FILENAME) as info:
        build_extractor(name, path=str(path))
    assert "\n" not in str(info.value)


def test_presets_name_their_convention_in_the_metric_and_its_id():
    assert apply_eval_preset({"preset": "cdc-convention", "n_fake": 48}, "eval") == {
        "metrics": ("fid_cdc", "intra_lpips"),
        "n_fake": 48,
        "preset": "cdc-convention",
    }
    assert EvalConfig(**apply_eval_preset({"preset": "adam-convention"}, "eval")).metrics == ("fid_adam", "intra_lpips")
    assert set(EVAL_PRESETS) == {"clean", "cdc-convention", "adam-convention"}
    assert metric_id("fid_cdc", 5000, "inception") == "fid_cdc5k_pytorch-fid-inception"
    assert metric_id("fid_adam", 5000, "inception") == "fid_adam5k_torchvision-inception"
    assert metric_id("fid", 5000, "inception") == "fid5k_inception"
    assert metric_id("intra_lpips", 5000, "inception") == "intra_lpips5k_lpips-vgg"
    with pytest.raises(BenchmarkError, match="valid: clean, cdc-convention, adam-convention"):
        apply_eval_preset({"preset": "ddpm"}, "eval")


def test_a_caption_names_the_convention_of_each_fid_in_the_table():
    from benchmark.report.table import conventions_phrase

    assert conventions_phrase(["fid_cdc", "coverage"]).startswith("FID (CDC): the CDC convention, pytorch-fid's")
    both = conventions_phrase(["fid", "fid_adam", "intra_lpips"])
    assert "clean-fid's convention" in both and "FID (AdAM): the AdAM/RICK convention" in both
    assert "Intra-LPIPS: mean pairwise LPIPS-VGG (v0.1)" in both and "CDC convention" not in both
    assert conventions_phrase(["kid"]) == ""


def test_the_dry_run_checks_each_evaluated_conventions_file(weights, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from benchmark.features import vgg
    from benchmark.runner import _check_metric_files

    suite = SimpleNamespace(targets=[], eval=EvalConfig(metrics=("fid_cdc", "fid_adam", "intra_lpips")))
    monkeypatch.setenv(cdc.ENV_VAR, str(weights))
    monkeypatch.setenv(adam.ENV_VAR, str(weights))
    monkeypatch.setenv(vgg.ENV_VAR, str(tmp_path))  # no VGG16 file there: LPIPS has no trunk
    with pytest.raises(BenchmarkError, match=rf"no weights file at .*\${vgg.ENV_VAR}") as info:
        _check_metric_files(suite)
    assert "\n" not in str(info.value)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / vgg.FILENAME)
    lines = _check_metric_files(suite)
    assert [line.split(":")[0] for line in lines] == [
        "metric fid_cdc network pytorch-fid-inception",
        "metric fid_adam network torchvision-inception",
        "metric intra_lpips network",
    ]


def test_the_new_eval_settings_leave_existing_cells_config_hashes_alone():
    from benchmark.config import to_plain

    before = {"n_fake", "batch_size", "metrics", "prdc_k", "kid_subsets", "kid_subset_size", "grid", "seed"}
    assert set(to_plain(EvalConfig())) == before
    assert to_plain(EvalConfig(**apply_eval_preset({"preset": "cdc-convention"}, "eval")))["preset"] == "cdc-convention"
    assert to_plain(EvalConfig(intra_lpips_n=500))["intra_lpips_n"] == 500


def test_at_most_fid_max_real_reals_a_seeded_subset_in_order():
    from benchmark.evaluate import real_subset

    kept = real_subset(20, 6, seed=1)
    assert len(kept) == 6 and torch.equal(kept, kept.sort().values) and len(set(kept.tolist())) == 6
    assert torch.equal(kept, real_subset(20, 6, seed=1)) and not torch.equal(kept, real_subset(20, 6, seed=2))
    assert torch.equal(real_subset(5, 6, seed=1), torch.arange(5))
    assert torch.equal(real_subset(5, None, seed=0), torch.arange(5))
