"""rosinality stylegan2-pytorch files load into the StyleGAN2 backbone: every file format, the shape
read from the tensors, safe loading, and one-line errors for files that are not such checkpoints."""

from __future__ import annotations

import argparse

import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.nets.stylegan2 import StyleGAN2Config, StyleGAN2Discriminator, StyleGAN2Generator
from benchmark.sources import SOURCES, load_source
from benchmark.sources.base import EMA_START, reinitialize_parts
from benchmark.sources.rosinality2 import KIND, NOISE_SEED, infer_config, preflight

TINY = StyleGAN2Config(resolution=16, style_dim=16, n_mlp=2, channels={4: 16, 8: 8, 16: 8})


def _state(net_class, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = net_class(TINY)
    with torch.no_grad():  # non-zero noise strengths and biases, so a wrong copy changes the output
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return net.state_dict()


def _train_args() -> argparse.Namespace:
    return argparse.Namespace(arch="stylegan2", size=16, channel_multiplier=2, iter=800000, batch=16, augment=False,
                              path="/data/ffhq-lmdb", latent=512, n_mlp=8, wandb=None)  # fmt: skip


def train_checkpoint() -> dict:
    """train.py's checkpoint: g (differs from g_ema), d, g_ema, optimizers, args (a Namespace), ada_aug_p."""
    g = StyleGAN2Generator(TINY)
    return {
        "g": _state(StyleGAN2Generator, 1),
        "d": _state(StyleGAN2Discriminator, 2),
        "g_ema": _state(StyleGAN2Generator, 3),
        "g_optim": torch.optim.Adam(g.parameters(), lr=0.002, betas=(0.0, 0.99)).state_dict(),
        "d_optim": torch.optim.Adam(g.parameters(), lr=0.002, betas=(0.0, 0.99)).state_dict(),
        "args": _train_args(),
        "ada_aug_p": 0.25,
    }


def _save(obj, path):
    torch.save(obj, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rosinality2")
    checkpoint = train_checkpoint()
    no_noise = {k: v for k, v in checkpoint["g_ema"].items() if not k.startswith("noises.")}
    latent_avg = torch.linspace(-1, 1, 16)
    written = {
        "train": _save(checkpoint, folder / "000800.pt"),
        "convert": _save({"g_ema": checkpoint["g_ema"], "latent_avg": latent_avg}, folder / "ffhq-config-f.pt"),
        "no_noise": _save({"g_ema": no_noise, "latent_avg": latent_avg}, folder / "old.pt"),
        "no_d": _save({k: checkpoint[k] for k in ("g", "g_ema")} | {"latent_avg": latent_avg}, folder / "gen.pt"),
    }
    return checkpoint, written


def _error(path, resolution: int = 16) -> str:
    with pytest.raises(BenchmarkError) as info:
        load_source(KIND, path, resolution=resolution)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------
# Formats


def test_train_checkpoint_round_trip(files):
    checkpoint, paths = files
    source = load_source(KIND, paths["train"], resolution=16, name="ffhq", cache_dir=None, device="cpu")
    assert source.config == TINY and source.name == "ffhq" and KIND in SOURCES
    for state, key in ((source.g_state, "g"), (source.g_ema_state, "g_ema"), (source.d_state, "d")):
        assert list(state) == list(checkpoint[key])
        assert all(torch.equal(v, checkpoint[key][k]) for k, v in state.items()), key
    p = source.provenance
    assert p["format"] == "train.py checkpoint" and p["generators"] == "g + g_ema" and p["ada_aug_p"] == 0.25
    assert p["train_args"]["size"] == 16 and p["stored_noise"] == "from the file" and p["has_discriminator"]
    assert source.latent_avg is None

    G, G_ema, D = source.build_generator(), source.build_generator(ema=True), source.build_discriminator()
    reference = StyleGAN2Generator(TINY)
    reference.load_state_dict(checkpoint["g"])
    z = torch.randn(2, 16)
    noise = G.make_noise(2)
    with torch.no_grad():
        torch.testing.assert_close(G(z, noise=noise), reference(z, noise=noise), rtol=0, atol=0)
    # Fine-tuning starts from g; the harness's moving average starts from g_ema.
    key = "convs.0.conv.weight"
    assert torch.equal(dict(G.named_parameters())[key], checkpoint["g"][key])
    assert torch.equal(getattr(dict(G.named_parameters())[key], EMA_START), checkpoint["g_ema"][key])
    assert torch.equal(G_ema.state_dict()[key], checkpoint["g_ema"][key])
    assert D(torch.randn(4, 3, 16, 16)).shape == (4,)


def test_conditional_networks_and_reinitialised_parts(files):
    source = load_source(KIND, files[1]["train"], resolution=16)
    G, D = source.build_generator(n_classes=3), source.build_discriminator(n_classes=3)
    assert G.n_classes == 3 and D.n_classes == 3
    before = {k: v.clone() for k, v in G.state_dict().items()}
    reinitialize_parts(G, ["block16"])
    after = G.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("convs.2.", "convs.3.", "to_rgbs.1.")) for k in changed)


def test_convert_weight_file_holds_g_ema_only(files, caplog):
    checkpoint, paths = files
    with caplog.at_level("INFO", logger="benchmark.sources.rosinality2"):
        source = load_source(KIND, paths["convert"], resolution=16)
    assert "holds only g_ema" in caplog.text and "holds no discriminator" in caplog.text
    assert source.g_ema_state is None and source.d_state is None
    assert all(torch.equal(v, checkpoint["g_ema"][k]) for k, v in source.g_state.items())
    assert source.provenance["format"] == "convert_weight.py file" and source.provenance["generators"] == "g_ema only"
    torch.testing.assert_close(source.latent_avg, torch.linspace(-1, 1, 16))
    with pytest.raises(BenchmarkError) as info:
        source.build_discriminator()
    message = str(info.value)
    assert "ffhq-config-f.pt holds no discriminator ('d'), which this method needs" in message and "\n" not in message
    assert isinstance(source.build_discriminator(pretrained=False), StyleGAN2Discriminator)


def test_file_without_stored_noise_loads_with_seeded_noise(files):
    checkpoint, paths = files
    first, second = (load_source(KIND, paths["no_noise"], resolution=16) for _ in range(2))
    generator = torch.Generator().manual_seed(NOISE_SEED)
    expected = torch.randn(1, 1, 4, 4, generator=generator)
    assert torch.equal(first.g_state["noises.noise_0"], expected)
    assert all(torch.equal(first.g_state[k], second.g_state[k]) for k in first.g_state)  # the same on every load
    assert "seed" in first.provenance["stored_noise"]
    assert torch.equal(first.g_state["convs.1.conv.weight"], checkpoint["g_ema"]["convs.1.conv.weight"])
    first.build_generator()


def test_file_without_d_and_bare_state_dict(files, tmp_path):
    checkpoint, paths = files
    source = load_source(KIND, paths["no_d"], resolution=16)
    assert source.d_state is None and source.g_ema_state is not None
    with pytest.raises(BenchmarkError, match="gen.pt holds no discriminator"):
        source.build_discriminator()
    bare = load_source(KIND, _save(checkpoint["g_ema"], tmp_path / "g_ema.pt"), resolution=16)
    assert bare.provenance["format"] == "generator state dict"
    dp = {"module." + k: v for k, v in checkpoint["g_ema"].items()}  # saved from a DataParallel wrapper
    stripped = load_source(KIND, _save({"g_ema": dp}, tmp_path / "dp.pt"), resolution=16)
    assert stripped.g_state.keys() == bare.g_state.keys()


@pytest.mark.parametrize("channel_multiplier, resolution", [(2, 256), (1, 256), (2, 1024), (2, 32)])
def test_shape_is_read_from_the_tensors(channel_multiplier, resolution):
    config = StyleGAN2Config(resolution=resolution, channel_multiplier=channel_multiplier)
    with torch.device("meta"):
        state = config.generator().state_dict()
    inferred = infer_config(state, "x.pt")
    assert inferred == config
    assert infer_config(StyleGAN2Generator(TINY).state_dict(), "x.pt") == TINY


# --------------------------------------------------------------------------------------------
# Safe loading


class Payload:
    """Stands for any class a file might pickle (a whole model, a custom config object)."""


def test_torch_load_is_always_weights_only(files, tmp_path, monkeypatch):
    checkpoint, paths = files
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_source(KIND, paths["train"], resolution=16)  # its args are an argparse.Namespace: allow-listed
    path = _save({"g_ema": checkpoint["g_ema"], "extra": Payload()}, tmp_path / "pickled.pt")
    message = _error(path)
    assert "pickled Python object that imports tests.sources.test_rosinality2.Payload" in message
    assert "safe (weights-only) load refuses it" in message
    assert calls and all(flag is True for flag in calls)


# --------------------------------------------------------------------------------------------
# Errors


def test_resolution_must_be_the_checkpoints(files):
    paths = files[1]
    assert "the generator is 16 px, lower than the requested 32 px" in _error(paths["train"], resolution=32)
    message = _error(paths["train"], resolution=8)
    assert "not the requested 8 px" in message and "set resolution 16" in message


def test_stylegan1_checkpoint_is_named(tmp_path):
    from tests.sources.checkpoints import generator_state

    v1 = {"g_running": {k: v for k, v in generator_state().items() if ".progression.0." in k}}
    path = _save(v1, tmp_path / "stylegan-256px-new.model")
    message = _error(path)
    assert "StyleGAN v1 (style-based-gan-pytorch) checkpoint; use source kind 'rosinality-stylegan1'" in message
    with pytest.raises(BenchmarkError, match="rosinality-stylegan1"):
        preflight(path)


def test_nvidia_pickle_is_refused_unloaded(tmp_path):
    # How a stylegan2-ada-pytorch network pickle opens: {'G': torch_utils.persistence._reconstruct_persistent_obj(
    head = b"\x80\x03}q\x00(X\x01\x00\x00\x00Gq\x01ctorch_utils.persistence\n_reconstruct_persistent_obj\nq\x02"
    path = tmp_path / "network-snapshot-025000.pkl"
    path.write_bytes(head + bytes(256))
    assert "NVIDIA StyleGAN network pickle" in _error(path)
    with pytest.raises(BenchmarkError, match="NVIDIA StyleGAN network pickle"):
        preflight(path)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda c: [1, 2], "holds a list"),
        (lambda c: {"model": {"a": 1}, "epoch": 3}, "neither a checkpoint nor a state dict"),
        (lambda c: {"g": c["g"], "d": c["d"]}, "without 'g_ema'"),
        (lambda c: {"g_ema": [1, 2]}, "'g_ema' is a list"),
        (lambda c: c | {"args": argparse.Namespace(arch="swagan")}, "of arch 'swagan'"),
        (lambda c: {"g_ema": c["d"]}, "the generator is not a rosinality StyleGAN2"),
        (lambda c: {"g_ema": {k: v for k, v in c["g_ema"].items() if not k.startswith("convs.1.")}},
         "generator (g_ema) lacks 5 keys: convs.1.conv.weight"),
        (lambda c: {"g_ema": c["g_ema"] | {"extra.weight": torch.zeros(1)}}, "1 unexpected keys: extra.weight"),
        (lambda c: {"g_ema": c["g_ema"], "d": c["d"] | {"final_linear.1.weight": torch.zeros(2, 16)}},
         "final_linear.1.weight (2, 16) != (1, 16)"),
    ],
)  # fmt: skip
def test_wrong_contents(files, tmp_path, make, expected):
    message = _error(_save(make(files[0]), tmp_path / "bad.pt"))
    assert expected in message, message


def test_missing_and_foreign_files(tmp_path):
    message = _error(tmp_path / "missing.pt")
    assert "no such checkpoint file" in message and "rosinality/stylegan2-pytorch" in message
    assert "is a folder" in _error(tmp_path)
    page = tmp_path / "ffhq.pt"
    page.write_text("<!DOCTYPE html><html><head><title>Google Drive</title></head></html>")
    assert "an HTML page ('Google Drive')" in _error(page)
    with pytest.raises(BenchmarkError, match="needs a checkpoint path"):
        load_source(KIND, None, resolution=16)


# --------------------------------------------------------------------------------------------
# --dry-run


def test_preflight_names_the_format_without_loading(files, tmp_path, monkeypatch):
    paths = files[1]
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("preflight loaded the file"))
    assert SOURCES.get(KIND).preflight is preflight
    train = preflight(paths["train"])
    assert train.endswith("a rosinality StyleGAN2 train.py checkpoint holding g, d, g_ema, 16 px"), train
    assert preflight(paths["convert"]).endswith("a rosinality StyleGAN2 convert_weight.py file holding g_ema, 16 px")
    empty = _save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(BenchmarkError, match="without StyleGAN2 generator keys"):
        preflight(empty)


def test_stylegan1_source_refuses_stylegan2_files(files):
    for path in files[1].values():
        for check in (SOURCES.get("rosinality-stylegan1").preflight, lambda p: load_source("rosinality-stylegan1", p)):
            with pytest.raises(BenchmarkError) as info:
                check(path)
            message = str(info.value)
            assert "StyleGAN2 (stylegan2-pytorch) checkpoint; use source kind 'rosinality-stylegan2'" in message
