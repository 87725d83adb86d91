"""NVIDIA stylegan2-ada-pytorch pickles load without running their code: NVIDIA's numbers from our
backbone, the right networks and config for paper256 / auto / stylegan2, and one-line errors for
every other kind of file."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import pickle
import sys
from collections import OrderedDict

import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.nets.stylegan2 import StyleGAN2Config
from benchmark.sources import SOURCES, load_source
from benchmark.sources.base import EMA_START
from benchmark.sources.nvlabs import (
    KIND,
    _NetworkUnpickler,
    check_network_pickle,
    discriminator_shape,
    generator_shape,
    nvlabs_discriminator_to_rosinality,
    nvlabs_generator_to_rosinality,
    read_network_pickle,
    stylegan2_config,
)
from tests.sources.checkpoints2 import pinned_images, pinned_latents
from tests.sources.nvlabs_pickles import (
    CONFIGS,
    FULL_SIZE,
    RESAMPLE_FILTER,
    STYLEGAN3_SRC,
    EasyDict,
    TFNetwork,
    discriminator,
    discriminator_layout,
    generator,
    generator_layout,
    nvlabs_state,
    persistent_network,
    snapshot,
    write_pickle,
)


@pytest.fixture(scope="module")
def pickles(tmp_path_factory):
    """One network snapshot per configuration, written with no NVlabs package importable."""
    folder = tmp_path_factory.mktemp("nvlabs")
    return {name: write_pickle(snapshot(config), folder / f"{name}.pkl") for name, config in CONFIGS.items()}


def _error(path, **options) -> str:
    with pytest.raises(BenchmarkError) as info:
        load_source(KIND, path, **options)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def _preflight_error(path) -> str:
    with pytest.raises(BenchmarkError) as info:
        check_network_pickle(path)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def _meta_state(layout: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(shape, device="meta") for k, shape in layout.items()}


# --------------------------------------------------------------------------------------------
# Reading


def test_no_nvlabs_code_is_importable_when_reading(pickles):
    assert all(importlib.util.find_spec(m) is None for m in ("torch_utils", "dnnlib", "training"))
    read_network_pickle(pickles["auto"])
    assert not any(m.split(".")[0] in ("torch_utils", "dnnlib", "training") for m in sys.modules)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_reads_the_state_dicts_and_init_kwargs(pickles, name):
    config = CONFIGS[name]
    networks = read_network_pickle(pickles[name])
    expected_g = nvlabs_state(generator_layout(**config), seed=0)
    assert list(networks.G_ema.state) == list(expected_g)  # state_dict() order: synthesis, then mapping
    assert all(torch.equal(networks.G_ema.state[k], v) for k, v in expected_g.items())
    assert torch.equal(
        networks.G.state["mapping.fc0.weight"], nvlabs_state(generator_layout(**config), 1000)["mapping.fc0.weight"]
    )
    assert set(networks.D.state) == set(discriminator_layout(**config))
    assert networks.G_ema.class_name == "Generator" and networks.D.class_name == "Discriminator"
    kwargs = networks.G_ema.init_kwargs  # EasyDicts come back as plain dicts
    assert kwargs["mapping_kwargs"] == {"num_layers": config["n_mapping"]} and type(kwargs["mapping_kwargs"]) is dict
    assert kwargs["synthesis_kwargs"]["channel_base"] == config["channel_base"] and kwargs["img_resolution"] == 32
    assert networks.D.init_kwargs["epilogue_kwargs"] == {"mbstd_group_size": config["mbstd"]}
    assert networks.training_set_kwargs["path"] == "ffhq.zip" and networks.other_keys == []


@pytest.mark.parametrize("name, cm, n_mlp, mbstd", [("paper256", 1, 8, 8), ("auto", 1, 2, 4), ("stylegan2", 2, 8, 4)])
def test_full_size_configurations_map_onto_the_backbone(name, cm, n_mlp, mbstd):
    """NVIDIA's 256 px layouts (meta tensors): paper256 and auto are rosinality's channel multiplier 1,
    stylegan2 is 2, with no per-resolution overrides; every key and shape is the backbone's."""
    config = FULL_SIZE[name]
    g, d = _meta_state(generator_layout(**config)), _meta_state(discriminator_layout(**config))
    d_kwargs = {"epilogue_kwargs": {"mbstd_group_size": config["mbstd"]}}
    backbone = stylegan2_config(generator_shape(g), discriminator_shape(d, d_kwargs))
    assert backbone == StyleGAN2Config(resolution=256, n_mlp=n_mlp, channel_multiplier=cm, mbstd_group=mbstd)
    with torch.device("meta"):
        G, D = backbone.generator(), backbone.discriminator()
    for net, mapped in ((G, nvlabs_generator_to_rosinality(g)), (D, nvlabs_discriminator_to_rosinality(d))):
        assert {k: tuple(v.shape) for k, v in mapped.items()} == {
            k: tuple(v.shape) for k, v in net.state_dict().items()
        }


def test_values_are_moved_not_rescaled():
    """FullyConnectedLayer and rosinality's EqualLinear store the same numbers (weight / lr_mul), as do
    the affines (bias_init 1 in both); filters that up-sample are scaled by 4 (NVIDIA's upfirdn2d gain)."""
    g = nvlabs_state(generator_layout(**CONFIGS["paper256"]))
    d = nvlabs_state(discriminator_layout(**CONFIGS["paper256"]), seed=500)
    G, D = nvlabs_generator_to_rosinality(g), nvlabs_discriminator_to_rosinality(d)
    pairs = [
        (G["style.1.weight"], g["mapping.fc0.weight"]),
        (G["style.8.bias"], g["mapping.fc7.bias"]),
        (G["input.input"], g["synthesis.b4.const"][None]),
        (G["conv1.conv.weight"], g["synthesis.b4.conv1.weight"][None]),
        (G["conv1.conv.modulation.bias"], g["synthesis.b4.conv1.affine.bias"]),
        (G["convs.2.conv.weight"], g["synthesis.b16.conv0.weight"][None]),  # no flip
        (G["convs.2.noise.weight"], g["synthesis.b16.conv0.noise_strength"].reshape(1)),
        (G["convs.3.activate.bias"], g["synthesis.b16.conv1.bias"]),
        (G["noises.noise_0"], g["synthesis.b4.conv1.noise_const"][None, None]),
        (G["noises.noise_3"], g["synthesis.b16.conv0.noise_const"][None, None]),
        (G["noises.noise_6"], g["synthesis.b32.conv1.noise_const"][None, None]),
        (G["to_rgbs.2.bias"], g["synthesis.b32.torgb.bias"].view(1, 3, 1, 1)),
        (G["convs.0.conv.blur.kernel"], 4 * RESAMPLE_FILTER),
        (G["to_rgbs.0.upsample.kernel"], 4 * RESAMPLE_FILTER),
        (D["convs.0.0.weight"], d["b32.fromrgb.weight"]),
        (D["convs.1.conv2.1.weight"], d["b32.conv1.weight"]),
        (D["convs.3.skip.1.weight"], d["b8.skip.weight"]),
        (D["convs.1.conv2.0.kernel"], RESAMPLE_FILTER),
        (D["final_linear.1.bias"], d["b4.out.bias"]),
    ]
    for ours, theirs in pairs:
        assert torch.equal(ours, theirs)
    assert "mapping.w_avg" not in G and len([k for k in G if k.startswith("noises.")]) == 7


# --------------------------------------------------------------------------------------------
# The source


def test_registered_and_refuses_a_missing_path():
    assert KIND in SOURCES and SOURCES.get(KIND).preflight is check_network_pickle
    with pytest.raises(BenchmarkError, match="needs a network pickle path"):
        load_source(KIND, None)


def test_source_round_trip(pickles):
    networks = read_network_pickle(pickles["paper256"])
    source = load_source(KIND, pickles["paper256"], resolution=32, cache_dir=None, device="cpu")
    assert source.config == StyleGAN2Config(
        resolution=32, style_dim=16, n_mlp=8, channels={4: 16, 8: 16, 16: 16, 32: 8}, mbstd_group=8
    )
    assert source.name == "paper256" and source.provenance["generators"] == "G + G_ema"
    assert source.provenance["G_init_kwargs"]["mapping_kwargs"] == {"num_layers": 8}
    assert source.provenance["sha256"] == hashlib.sha256(pickles["paper256"].read_bytes()).hexdigest()
    # Fine-tuning starts from G, its moving average from G_ema, D from D.
    assert torch.equal(source.g_state["style.1.weight"], networks.G.state["mapping.fc0.weight"])
    assert torch.equal(source.g_ema_state["style.1.weight"], networks.G_ema.state["mapping.fc0.weight"])
    assert torch.equal(source.d_state["final_conv.0.weight"], networks.D.state["b4.conv.weight"])
    assert torch.equal(source.latent_avg, networks.G_ema.state["mapping.w_avg"])
    G = source.build_generator()
    weight = dict(G.named_parameters())["convs.1.conv.weight"]
    assert torch.equal(getattr(weight, EMA_START), source.g_ema_state["convs.1.conv.weight"])
    source.build_discriminator()


def test_pickle_without_G_or_D(tmp_path, caplog):
    path = write_pickle({"G_ema": generator(CONFIGS["auto"])}, tmp_path / "released.pkl")
    assert "without G, D" in check_network_pickle(path)
    with caplog.at_level("INFO", logger="benchmark.sources.nvlabs"):
        source = load_source(KIND, path, resolution=32)
    assert source.g_ema_state is None and source.d_state is None and "holds only G_ema" in caplog.text
    with pytest.raises(BenchmarkError, match="holds no discriminator"):
        source.build_discriminator()
    assert source.config.mbstd_group == 4  # NVIDIA's default, with no D to say otherwise


# Computed by NVIDIA's own training/networks.py (stylegan2-ada-pytorch, CPU reference ops): Generator and
# Discriminator built with CONFIGS[name] (num_fp16_res 4, conv_clamp 256), given nvlabs_state(generator_layout)
# (seed 0, the pickles' G_ema) and nvlabs_state(discriminator_layout) (seed 500) with load_state_dict, then
# G(z, None, noise_mode='const', force_fp32=True), the same with truncation_psi=0.5, and D(images, None,
# force_fp32=True), for z = pinned_latents(2, 16)[0] and images = pinned_images(2, 32). Our loaded networks
# were 3.4e-5 or closer to them (on outputs of std 6 to 20); NVIDIA's default float16 run differs by 0.05 to 0.15.
NVIDIA = {
    "paper256": {
        "g_row": [
            [[-0.162618, 45.146164, -4.026433], [-23.388718, -5.409018, -19.288527], [-12.792583, 2.22108, -8.273552]],
            [[0.653726, 21.035538, -2.431982], [-9.926962, -2.550256, -7.997128], [-6.079499, -0.430261, -3.589261]],
        ],
        "g_mean_std": (5.5039363, 16.5743561),
        "trunc_row": [
            [[-0.137499, 31.173082, -3.994599], [-10.335636, 3.695234, -8.790552], [-7.236818, 5.241625, -4.904617]],
            [[0.724599, 20.608929, -1.757546], [-3.660847, 4.349488, -3.737609], [-3.214874, 4.834773, -1.434091]],
        ],
        "trunc_mean_std": (1.6567612, 9.0876827),
        "d_images": [-2.358245, -2.384566],
    },
    "auto": {
        "g_row": [
            [[-3.861315, -7.305223, -12.426943], [-0.15193, -0.739102, -1.447835], [-3.601824, -3.850223, -7.957432]],
            [[0.762108, 4.046121, -2.437248], [-0.333743, -0.745488, -1.260961], [-0.684354, -1.759112, -2.636988]],
        ],
        "g_mean_std": (-1.6114134, 6.544342),
        "trunc_row": [
            [[-3.096536, -1.111173, -8.003369], [-0.634104, -0.527753, -2.025354], [-2.14735, -1.304403, -4.430315]],
            [[0.695851, 2.769033, -4.171122], [0.684311, -0.898524, -2.963475], [-0.212396, -1.537046, -2.875929]],
        ],
        "trunc_mean_std": (-0.0190194, 4.2049203),
        "d_images": [-2.358245, -2.384566],
    },
    "stylegan2": {
        "g_row": [
            [[7.038424, 36.594883, 2.332823], [-20.365801, -25.843056, -24.572308], [-10.605256, 8.462791, -19.423544]],
            [[3.098589, 20.766212, 0.391393], [-8.209594, -7.040192, -7.197892], [-6.945347, 4.892656, -8.363323]],
        ],
        "g_mean_std": (-1.5297699, 19.8230858),
        "trunc_row": [
            [[3.629182, 26.247129, 1.78622], [-8.298086, -3.4651, -10.335639], [-7.717851, 4.040679, -13.195752]],
            [[5.424258, 18.759804, 3.994566], [-1.167043, 6.202627, 0.750035], [-3.18356, -2.991819, -9.663337]],
        ],
        "trunc_mean_std": (-4.2290249, 9.5181932),
        "d_images": [-3.021844, -3.02646],
    },
}


@pytest.mark.parametrize("name", list(NVIDIA))
def test_outputs_match_nvidias_networks(pickles, name):
    """Our G from G_ema with NVIDIA's const noise (the stored ``noises.*``), and truncation towards
    ``latent_avg`` (w_avg), give NVIDIA's images; D gives its logits.

    The pins (``NVIDIA`` above) were computed by hand outside the repository by NVIDIA's own
    training/networks.py on the very state dicts these pickles hold (see the comment there).
    Tolerance: 1e-4 of the image std (float32 kernels round differently across CPUs; the pins are
    rounded to 6 decimals)."""
    source = load_source(KIND, pickles[name], resolution=32)
    G, D = source.build_generator(ema=True).eval(), source.build_discriminator().eval()
    z, _ = pinned_latents(2, 16)
    expected = NVIDIA[name]
    with torch.no_grad():
        images = G(z, noise=G.stored_noise())
        truncated = G(z, noise=G.stored_noise(), truncation=0.5, truncation_latent=source.latent_avg[None])
        logits = D(pinned_images(2, 32))
    for out, row, mean_std in ((images, "g_row", "g_mean_std"), (truncated, "trunc_row", "trunc_mean_std")):
        tolerance = 1e-4 * expected[mean_std][1]
        torch.testing.assert_close(out[:, :, 0, :3], torch.tensor(expected[row]), rtol=0, atol=tolerance)
        torch.testing.assert_close(
            torch.stack([out.mean(), out.std()]), torch.tensor(expected[mean_std]), rtol=0, atol=tolerance
        )
    torch.testing.assert_close(logits, torch.tensor(expected["d_images"]), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Nothing in the file runs


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Exec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


class _Writer:
    """Writes a file when unpickled, through __setstate__ (a class the unpickler would import)."""

    def __init__(self, marker):
        self.path = str(marker)

    def __setstate__(self, state):
        open(state["path"], "w").close()


class _StorageBlob:
    """A 'storage' whose bytes are a pickle that runs code: torch's own _load_from_bytes would run it."""

    def __init__(self, marker):
        self.payload = pickle.dumps(_Exec(marker), protocol=2)

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.payload,)


def test_code_in_the_pickle_never_runs(tmp_path):
    markers = {k: tmp_path / f"{k}.marker" for k in ("module_src", "system", "exec", "setstate")}
    g_ema = generator(CONFIGS["auto"])
    g_ema.module_src = f"open({str(markers['module_src'])!r}, 'w').close()\n"  # what NVIDIA's unpickling exec()s
    data = snapshot(CONFIGS["auto"], G_ema=g_ema, augment_pipe=_Writer(markers["setstate"]))
    data.update(payload_system=_System(markers["system"]), payload_exec=_Exec(markers["exec"]))
    path = write_pickle(data, tmp_path / "payloads.pkl")
    # The same objects do run under ordinary unpickling (os.system is left out: it would run a shell).
    sanity = {k: tmp_path / f"sanity-{k}.marker" for k in ("exec", "setstate")}
    pickle.loads(pickle.dumps([_Exec(sanity["exec"]), _Writer(sanity["setstate"])]))
    assert all(m.exists() for m in sanity.values())

    networks = read_network_pickle(path)
    source = load_source(KIND, path, resolution=32)
    assert not any(m.exists() for m in markers.values())
    assert networks.other_keys == ["payload_system", "payload_exec"]
    assert networks.G_ema.module_sha256 == hashlib.sha256(g_ema.module_src.encode()).hexdigest()
    assert source.provenance["networks_module_sha256"] == networks.G_ema.module_sha256


def test_a_storage_that_would_run_code_fails_cleanly(tmp_path):
    marker = tmp_path / "storage.marker"
    path = write_pickle(snapshot(CONFIGS["auto"], payload=_StorageBlob(marker)), tmp_path / "storage.pkl")
    message = _error(path, resolution=32)
    assert "cannot be read as a network pickle (UnpicklingError" in message
    assert not marker.exists()


def test_a_tensor_rebuilt_from_something_else_fails_cleanly(tmp_path):
    class Tensor:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (_System(tmp_path / "m"), 0, (1,), (1,), False, OrderedDict())

    path = write_pickle(snapshot(CONFIGS["auto"], payload=Tensor()), tmp_path / "tensor.pkl")
    assert "a tensor rebuilt from a posix.system, not a storage" in _error(path, resolution=32)
    assert not (tmp_path / "m").exists()


# --------------------------------------------------------------------------------------------
# Other files: one line each, naming what the file is and what reads it


def test_conditional_pickle(tmp_path):
    config = CONFIGS["auto"]
    path = write_pickle(
        snapshot(config, G=generator(config, c_dim=4), G_ema=generator(config, c_dim=4)), tmp_path / "c.pkl"
    )
    assert "conditional" in _error(path, resolution=32) and "only unconditional" in _preflight_error(path)
    state = nvlabs_state(generator_layout(**config, c_dim=4))
    with pytest.raises(BenchmarkError, match="conditional"):
        generator_shape(state)
    d = nvlabs_state(discriminator_layout(**config)) | {"mapping.fc0.weight": torch.zeros(16, 16)}
    with pytest.raises(BenchmarkError, match="discriminator is conditional"):
        discriminator_shape(d, {"c_dim": 4})


def test_tensorflow_pickle(tmp_path):
    path = write_pickle((TFNetwork("G"), TFNetwork("D"), TFNetwork("Gs")), tmp_path / "stylegan2-ffhq-config-f.pkl")
    for message in (_error(path), _preflight_error(path)):
        assert "a TensorFlow StyleGAN pickle" in message
        assert "python legacy.py --source=FILE.pkl --dest=FILE-pytorch.pkl" in message


def test_stylegan3_pickle(tmp_path):
    state = {
        "synthesis.input.freqs": torch.zeros(16, 2),
        "synthesis.input.affine.weight": torch.zeros(4, 16),
        "synthesis.L0_36_16.weight": torch.zeros(16, 16, 3, 3),
        "mapping.fc0.weight": torch.zeros(16, 16),
    }
    g = persistent_network(
        state, "Generator", {"z_dim": 16}, STYLEGAN3_SRC, class_names={"synthesis.input": "SynthesisInput"}
    )
    path = write_pickle({"G": g, "D": discriminator(CONFIGS["auto"]), "G_ema": g}, tmp_path / "stylegan3-t.pkl")
    for message in (_error(path), _preflight_error(path)):
        assert "StyleGAN3" in message and "no rosinality StyleGAN2 equivalent" in message
    with pytest.raises(BenchmarkError, match="StyleGAN3"):
        generator_shape(state)


@pytest.mark.parametrize(
    "obj, expected",
    [
        ({"model": [1, 2, 3]}, "a pickle of other objects (it imports no classes)"),
        (torch.nn.Linear(2, 2), "it imports torch.nn.modules.linear.Linear"),
        ({"G_ema": EasyDict(a=1)}, "imports dnnlib.util.EasyDict"),
    ],
)
def test_pickles_of_other_things(tmp_path, obj, expected):
    path = write_pickle(obj, tmp_path / "other.pkl")
    assert expected in _preflight_error(path) and expected in _error(path)


def test_a_persistent_pickle_that_is_not_a_snapshot(tmp_path):
    path = write_pickle([generator(CONFIGS["auto"])], tmp_path / "list.pkl")
    assert "without G_ema" in _preflight_error(path)


@pytest.mark.parametrize(
    "contents, zip_format, source",
    [
        (
            {"g_ema": {"conv1.conv.modulation.weight": torch.zeros(1)}, "latent_avg": torch.zeros(1)},
            True,
            "rosinality-stylegan2",
        ),
        ({"g_running": {"generator.progression.0.conv1.0.weight_orig": torch.zeros(1)}}, True, "rosinality-stylegan1"),
        ({"g_running": {"generator.progression.0.conv1.0.weight_orig": torch.zeros(1)}}, False, "rosinality-stylegan1"),
    ],
)
def test_torch_checkpoints_are_sent_to_their_source(tmp_path, contents, zip_format, source):
    path = tmp_path / "checkpoint.pt"
    torch.save(contents, path, _use_new_zipfile_serialization=zip_format)
    for message in (_error(path), _preflight_error(path)):
        assert f"use source '{source}'" in message and "torch checkpoint" in message


def test_broken_downloads(tmp_path, pickles):
    html = tmp_path / "ffhq.pkl"
    html.write_text("<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head></html>")
    assert "an HTML page ('Google Drive - Virus scan warning')" in _error(html)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    assert "empty file" in _preflight_error(empty)
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(pickles["auto"].read_bytes()[:5000])
    assert "a damaged or incomplete pickle" in _error(cut)
    assert "no such network pickle" in _error(tmp_path / "missing.pkl")
    assert "is a folder" in _error(tmp_path)


def test_resolution_must_be_the_pickles(pickles):
    assert "the networks are 32 px, not the requested 256 px" in _error(pickles["auto"], resolution=256)


def test_other_architectures_are_named(tmp_path):
    config = CONFIGS["auto"]
    resnet_g = nvlabs_state(generator_layout(**config)) | {"synthesis.b8.skip.weight": torch.zeros(16, 16, 1, 1)}
    with pytest.raises(BenchmarkError, match=r"1 keys outside the supported layout: synthesis.b8.skip.weight \(only"):
        nvlabs_generator_to_rosinality(resnet_g)
    skip_d = nvlabs_state(discriminator_layout(**config)) | {"b16.fromrgb.weight": torch.zeros(16, 3, 1, 1)}
    with pytest.raises(BenchmarkError, match="b16.fromrgb.weight .*architecture='resnet'"):
        nvlabs_discriminator_to_rosinality(skip_d)
    two_mbstd = nvlabs_state(discriminator_layout(**config)) | {"b4.conv.weight": torch.zeros(16, 18, 3, 3)}
    with pytest.raises(BenchmarkError, match="mbstd_num_channels is 2"):
        nvlabs_discriminator_to_rosinality(two_mbstd)
    narrow_d = discriminator(dict(config, channel_max=8))
    path = write_pickle(snapshot(config, D=narrow_d), tmp_path / "narrow-d.pkl")
    assert "the discriminator's widths" in _error(path, resolution=32)


def test_a_pickle_cannot_modify_the_readers_functions():
    """BUILD sets attributes on the object below it; with state (None, {"__defaults__": (5,)}) it would
    change the allowed _rebuild_tensor_v2 itself for the rest of the process, as it does an ordinary function."""
    data = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00__defaults__(K\x05ts\x86b."
    with pytest.raises(pickle.UnpicklingError, match="a pickle that sets '__defaults__' on _rebuild_tensor"):
        _NetworkUnpickler(io.BytesIO(data)).load()
    target = b"tests.sources.test_nvlabs\n_target"
    assert pickle.loads(data.replace(b"torch._utils\n_rebuild_tensor_v2", target)) is _target and _target() == 5


def _target(x=1):
    return x


def test_a_module_that_contains_itself(tmp_path):
    g_ema = generator(CONFIGS["auto"])
    g_ema.state["_modules"]["loop"] = g_ema  # pickle writes the cycle through the memo
    path = write_pickle(snapshot(CONFIGS["auto"], G_ema=g_ema), tmp_path / "cycle.pkl")
    assert "G_ema loop is a module that contains itself" in _error(path, resolution=32)
    kwargs = generator(CONFIGS["auto"])
    kwargs.state["_init_kwargs"]["itself"] = kwargs.state["_init_kwargs"]
    path = write_pickle(snapshot(CONFIGS["auto"], G_ema=kwargs), tmp_path / "kwargs.pkl")
    assert "G_ema nests its modules or arguments endlessly" in _error(path, resolution=32)
