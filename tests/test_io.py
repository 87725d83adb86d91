"""File helpers: a full disk is one line naming the folder, and a damaged line of a JSONL file loses only itself."""

import errno
import json

import pytest

import benchmark.io
from benchmark.errors import BenchmarkError
from benchmark.io import append_jsonl, read_jsonl, write_json


def test_a_full_disk_or_quota_is_one_line_naming_the_folder_and_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    write_json({"state": "running"}, target)
    for code in (errno.ENOSPC, errno.EDQUOT):

        def full(fd, code=code):
            raise OSError(code, "No space left on device")

        monkeypatch.setattr(benchmark.io.os, "fsync", full)
        with pytest.raises(BenchmarkError, match=f"no space left .* writing status.json in {tmp_path} .*free"):
            write_json({"state": "finished"}, target)
        assert json.loads(target.read_text()) == {"state": "running"} and not list(tmp_path.glob(".*.tmp"))
    monkeypatch.setattr(benchmark.io, "open", lambda *a, **k: full(None), raising=False)
    with pytest.raises(BenchmarkError, match=f"writing metrics.jsonl in {tmp_path}"):
        append_jsonl({"step": 2}, tmp_path / "metrics.jsonl")


def test_other_write_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    def denied(fd):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(benchmark.io.os, "fsync", denied)
    with pytest.raises(PermissionError):
        write_json({}, tmp_path / "x.json")


def test_a_damaged_jsonl_line_loses_only_itself(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 0}\n\x00\x00\x00\x00\n{"step": 1\x00\x00\n{"step": 2}\n{"step": 4}\n{"ste')
    assert read_jsonl(path) == [{"step": 0}, {"step": 2}, {"step": 4}]
    assert f"{path}: left out 1 damaged line(s)" in caplog.text
