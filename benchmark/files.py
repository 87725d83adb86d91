"""What a downloaded weights file really is, told from its first bytes, before anything loads it.

Pretrained files come from links that fail in ways the file name hides: Google Drive (FreezeD's
and rosinality's checkpoints) answers a large or rate-limited download with an HTML page, an
interrupted transfer leaves a truncated archive, Git LFS checkouts leave a pointer, and a model
saved with ``torch.save(model)`` pickles its classes instead of plain tensors. ``torch.load`` and
``torch.jit.load`` report all of these as unpickling or zip errors, with advice that does not
apply (or that is unsafe: load the file with ``weights_only=False``). Here a file is identified
by its signature and, for torch files, by the names its pickle imports, without reading tensor
data, so ``--dry-run`` can afford to check every pretrained file and say what it actually is.
"""

from __future__ import annotations

import _compat_pickle
import hashlib
import io
import pickletools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import BenchmarkError, abbreviate

# torch.save's format before torch 1.6 (rosinality's 2019 checkpoints, torchvision's VGG16):
# a pickled magic number, then the pickled protocol version, system info and object.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PICKLES = 4
_HEAD = 1024  # bytes read to recognise a signature


@dataclass(frozen=True)
class FileKind:
    """What a file is.

    Args:
        kind: "checkpoint" (torch.save), "torchscript" (torch.jit.save), or the name of something else
            ("html", "empty", "truncated", "lfs-pointer", "archive", "text", "unknown").
        what: the kind in words, for messages ("an HTML page").
        fix: what to do about it when it is not the file wanted ("" for torch files).
        unsafe_globals: for checkpoints, the classes and functions its pickle imports that a
            weights-only load refuses (a pickled model rather than tensors).
    """

    kind: str
    what: str
    fix: str = ""
    unsafe_globals: tuple[str, ...] = ()


def identify(path: str | Path) -> FileKind:
    """What ``path`` holds, from its signature (and, for torch files, the names its pickle imports)."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return FileKind("empty", "an empty file (0 bytes)", "the download did not finish; download it again")
    with open(path, "rb") as f:
        head = f.read(_HEAD)
    try:
        if head.startswith(b"PK\x03\x04"):
            return _identify_zip(path)
        if head.startswith(b"\x80") and _legacy_magic(head):
            return FileKind("checkpoint", "a torch checkpoint (torch.save, pre-1.6 format)", "", _legacy_unsafe(path))
    except Exception:  # zipfile, zlib and pickletools raise several kinds on a cut or damaged file
        return FileKind(
            "truncated", "a damaged or incomplete torch file", "the download did not finish; download it again"
        )
    return _identify_other(head)


def _identify_other(head: bytes) -> FileKind:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text[:200]:
        title = re.search(rb"<title>(.*?)</title>", head, re.I | re.S)
        named = f" ({' '.join(title.group(1).decode('utf-8', 'replace').split())!r})" if title else ""
        return FileKind(
            "html",
            f"an HTML page{named}, not the file",
            "the download failed (Google Drive and similar hosts answer large or rate-limited downloads with a "
            "web page); download it again",
        )
    if text.startswith(b"version https://git-lfs"):
        return FileKind("lfs-pointer", "a Git LFS pointer, not the file", "fetch the real file (git lfs pull)")
    for signature, name in ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ", "xz"), (b"7z\xbc\xaf", "7z")):
        if head.startswith(signature):
            return FileKind("archive", f"a {name} archive", "extract it and pass the file inside")
    if len(head) > 262 and head[257:262] == b"ustar":
        return FileKind("archive", "a tar archive", "extract it and pass the file inside")
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle's PROTO opcode, not torch's magic number
        return FileKind(
            "pickle",
            "a plain Python pickle (pickle.dump), not a torch file",
            "save the tensors with torch.save, or use the original file",
        )
    if head.startswith(b"\x89HDF"):
        return FileKind("unknown", "an HDF5 file (Keras or TensorFlow weights?)", "use the PyTorch file")
    if _looks_like_text(head):
        return FileKind("text", "a text file", "download the file again")
    return FileKind("unknown", "not a torch file (no zip or pickle signature)", "download the file again")


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(b >= 32 or b in b"\t\r\n" for b in head)


def _identify_zip(path: Path) -> FileKind:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
            # TorchScript archives hold the module's code (model.json in the 1.0-1.3 format); checkpoints do not.
            scripted = any("/code/" in n or n.endswith("/model.json") for n in names)
            if scripted:
                return FileKind("torchscript", "a TorchScript archive (torch.jit.save)")
            if not pickles:
                return FileKind(
                    "archive", "a zip archive that torch did not write", "extract it and pass the file inside"
                )
            data = archive.read(pickles[0])
    except zipfile.BadZipFile:
        return FileKind(
            "truncated",
            "an incomplete zip archive (its directory is missing)",
            "the download did not finish; download it again",
        )
    return FileKind("checkpoint", "a torch checkpoint (torch.save)", "", _unsafe(_pickle_globals(io.BytesIO(data))))


def _legacy_magic(head: bytes) -> bool:
    """Whether ``head`` starts with the pickled magic number of torch's legacy format (read, not unpickled)."""
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(head)):
            if opcode.name in ("LONG1", "LONG4"):
                return arg == _LEGACY_MAGIC
            if opcode.name not in ("PROTO", "FRAME"):
                return False
    except Exception:  # not a pickle after all
        return False
    return False


def _legacy_unsafe(path: Path) -> tuple[str, ...]:
    with open(path, "rb") as f:
        names: list[str] = []
        for _ in range(_LEGACY_PICKLES):  # the object's pickle is the fourth; tensor data follows it
            names += _pickle_globals(f)
    return _unsafe(names)


def _pickle_globals(stream) -> list[str]:
    """``module.name`` of every class or function one pickle imports, reading only its opcodes.

    Protocol 2 pickles (torch.save's default) name them with GLOBAL; protocol 4 and later push
    the two strings first and use STACK_GLOBAL, so recent strings are tracked, memo included.
    """
    found, strings, memo = [], [], {}
    for opcode, arg, _ in pickletools.genops(stream):
        name = opcode.name
        if name == "GLOBAL":
            found.append(_python3_name(*arg.split(" ", 1)))
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(arg)
        elif name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
            memo[arg] = strings[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
            strings.append(memo[arg])
        elif name == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif name == "STACK_GLOBAL" and len(strings) >= 2:
            found.append(_python3_name(strings[-2], strings[-1]))
    return found


def _python3_name(module: str, name: str) -> str:
    """Protocol 2 pickles name Python 2 modules (``__builtin__.set``); the unpickler maps them, as here."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"


def _unsafe(names: list[str]) -> tuple[str, ...]:
    allowed = _weights_only_allowed()
    return tuple(dict.fromkeys(n for n in names if n not in allowed))


def _weights_only_allowed() -> set[str]:
    """The names ``torch.load(weights_only=True)`` accepts: its built-in list plus any the user added."""
    import torch

    names = set(_FALLBACK_ALLOWED)
    try:  # both lists are recent torch API (the built-in one private); the fallback covers what torch.save writes
        from torch._weights_only_unpickler import _get_allowed_globals

        names |= set(_get_allowed_globals())
        names |= {
            f"{g.__module__}.{g.__name__}" for g in torch.serialization.get_safe_globals() if hasattr(g, "__name__")
        }
    except (ImportError, AttributeError):
        pass
    return names


_FALLBACK_ALLOWED = (
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    *(
        f"torch.{t}Storage"
        for t in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
    ),
)


_DOWNLOAD_AGAIN = ("download it again", "download the file again")


def check_file(path: str | Path, want: str, problem: str, where_to_get: str) -> FileKind:
    """Raise a one-line error unless ``path`` is a ``want`` file ("checkpoint" or "torchscript").

    A checkpoint must also hold only tensors and plain containers: a pickled model cannot be read
    by a weights-only load, and loading it otherwise would run code from the file, so the advice is
    to save a state dict or fetch the original, never to load it unsafely.

    Args:
        path: the file.
        want: the kind expected.
        problem: the start of the message ("x.model: cannot be read as a torch checkpoint").
        where_to_get: where the right file comes from, ending the message.
    """
    found = identify(path)
    if found.kind != want:
        fix = found.fix
        if where_to_get.startswith("download ") and fix.endswith(_DOWNLOAD_AGAIN):
            # say it once: "...; download it again: the FFHQ checkpoint from ...", not "download it again; download ..."
            fix = fix.rpartition(";")[0]
            where_to_get = "download it again: " + where_to_get.removeprefix("download ")
        fix = f": {fix}" if fix else ""
        raise BenchmarkError(f"{problem}: it is {found.what}{fix}; {where_to_get}")
    if found.unsafe_globals:
        raise BenchmarkError(
            f"{problem}: it is a pickled Python object that imports {abbreviate(list(found.unsafe_globals), 3)}, "
            f"not plain tensors, so a safe (weights-only) load refuses it: save the model's state_dict() instead "
            f"of the model, or use the original file; {where_to_get}"
        )
    return found


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 4 MiB chunks: a source's provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()
