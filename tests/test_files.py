"""Files that are not what they claim: each kind a failed download leaves is named, from its first bytes."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile

import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.features import build_extractor
from benchmark.files import check_file, identify
from benchmark.sources import load_source
from tests.features.standin import save_standin
from tests.test_errors import GOOGLE_DRIVE_PAGE

ROSINALITY = "rosinality-stylegan1"


class Generator(torch.nn.Module):
    """Stands for a whole model saved with torch.save(model) instead of its state_dict()."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)


def _tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("256_ObjectCategories/001.ak47/001_0001.jpg")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    return buffer.getvalue()


def _write(path, content):
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    return path


CASES = {
    "google-drive.model": (
        GOOGLE_DRIVE_PAGE,
        "html",
        "an HTML page ('Google Drive - Virus scan warning'), not the file",
    ),
    "empty.model": (b"", "empty", "an empty file (0 bytes)"),
    "lfs.model": (b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 1\n", "lfs-pointer", "Git LFS"),
    "notes.model": (b"see the README\n", "text", "a text file"),
    "packed.model.gz": (gzip.compress(b"x" * 100), "archive", "a gzip archive"),
    "packed.tar": (_tar_bytes(), "archive", "a tar archive"),
    "state.pt": (lambda p: torch.save({"w": torch.zeros(2)}, p), "checkpoint", "a torch checkpoint (torch.save)"),
    "legacy.pt": (
        lambda p: torch.save({"w": torch.zeros(2)}, p, _use_new_zipfile_serialization=False),
        "checkpoint",
        "a torch checkpoint (torch.save, pre-1.6 format)",
    ),
    "script.pt": (lambda p: save_standin(p.parent).rename(p), "torchscript", "a TorchScript archive"),
    "plain.pkl": (pickle.dumps({"w": [0.0, 1.0]}, protocol=4), "pickle", "a plain Python pickle (pickle.dump)"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_identify_names_what_a_file_is(tmp_path, name):
    content, kind, what = CASES[name]
    found = identify(_write(tmp_path / name, content))
    assert found.kind == kind and what in found.what and not found.unsafe_globals


def test_a_truncated_checkpoint_is_an_incomplete_download(tmp_path):
    whole = _write(tmp_path / "whole.pt", CASES["state.pt"][0])
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole.read_bytes()[:200])
    found = identify(cut)
    assert found.kind == "truncated" and "download it again" in found.fix
    legacy = _write(tmp_path / "legacy.pt", CASES["legacy.pt"][0])
    cut.write_bytes(legacy.read_bytes()[:60])  # inside the pickles, before any tensor data
    assert identify(cut).kind == "truncated"


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("zipped", [True, False])
def test_a_pickled_model_is_found_by_the_names_its_pickle_imports(tmp_path, protocol, zipped):
    path = tmp_path / "model.pt"
    torch.save(Generator(), path, pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
    found = identify(path)
    assert found.kind == "checkpoint"
    assert set(found.unsafe_globals) == {"tests.test_files.Generator", "torch.nn.modules.linear.Linear"}
    if zipped and protocol == 2:  # torch's own list agrees (it reads only the zip format, protocol 2)
        assert set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path))) == set(found.unsafe_globals)
    state = tmp_path / "state.pt"
    torch.save(Generator().state_dict(), state, pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
    assert identify(state).unsafe_globals == ()


def test_check_file_messages(tmp_path):
    page = _write(tmp_path / "page.model", GOOGLE_DRIVE_PAGE)
    with pytest.raises(BenchmarkError) as info:
        check_file(page, "checkpoint", f"{page}: cannot be read as a torch checkpoint", "get it from X")
    assert str(info.value) == (
        f"{page}: cannot be read as a torch checkpoint: it is an HTML page ('Google Drive - Virus scan warning'), "
        "not the file: the download failed (Google Drive and similar hosts answer large or rate-limited downloads "
        "with a web page); download it again; get it from X"
    )
    script = _write(tmp_path / "script.pt", CASES["script.pt"][0])
    with pytest.raises(BenchmarkError, match=r"it is a TorchScript archive \(torch.jit.save\); get it from X"):
        check_file(script, "checkpoint", "wrong", "get it from X")
    assert check_file(script, "torchscript", "wrong", "X").kind == "torchscript"
    # where the advice itself is a download, "download it again" is said once, naming what to download
    for name in ("google-drive.model", "notes.model"):
        wrong = _write(tmp_path / name, CASES[name][0])
        with pytest.raises(BenchmarkError) as info:
            check_file(wrong, "checkpoint", "bad", "download the X checkpoint from Y")
        message = str(info.value)
        assert message.count("download it again") == 1 and "again; download" not in message
        assert message.endswith("download it again: the X checkpoint from Y"), message


def test_the_source_loader_names_an_html_page_and_a_pickled_model(tmp_path):
    page = _write(tmp_path / "stylegan-256px-new.model", GOOGLE_DRIVE_PAGE)
    with pytest.raises(BenchmarkError) as info:
        load_source(ROSINALITY, page, resolution=256)
    message = str(info.value)
    assert "it is an HTML page" in message and "the download failed" in message and "download it again" in message
    assert "weights_only" not in message and "rosinality/style-based-gan-pytorch" in message
    model = tmp_path / "model.model"
    torch.save({"g_running": Generator()}, model)
    with pytest.raises(BenchmarkError) as info:
        load_source(ROSINALITY, model, resolution=256)
    message = str(info.value)
    assert "it is a pickled Python object that imports tests.test_files.Generator" in message
    assert "save the model's state_dict() instead" in message
    assert "\x1b" not in message and "weights_only=False" not in message and "trust" not in message
    with pytest.raises(BenchmarkError, match="is a folder, not a checkpoint file: pass the file inside it"):
        load_source(ROSINALITY, tmp_path, resolution=256)


def test_feature_networks_name_what_their_file_is(tmp_path):
    page = _write(tmp_path / "inception-2015-12-05.pt", GOOGLE_DRIVE_PAGE)
    with pytest.raises(BenchmarkError, match=r"inception: .* is not a TorchScript file: it is an HTML page"):
        build_extractor("inception", path=str(page))
    vgg = _write(tmp_path / "vgg16-397923af.pth", b"")
    with pytest.raises(BenchmarkError, match=r"vgg16: .* cannot be read as a torch state dict: it is an empty file"):
        build_extractor("vgg16", path=str(vgg))
    torch.save(Generator(), vgg)
    with pytest.raises(BenchmarkError, match="it is a pickled Python object that imports tests.test_files.Generator"):
        build_extractor("vgg16", path=str(vgg))
