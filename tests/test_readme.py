"""The README's worked example of a new method runs as written and honours the contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import benchmark.method
from benchmark.registry import Registry
from tests.methods.helpers import toy_target
from tests.methods.test_contract import assert_resumes_bit_identically, assert_trains_what_it_declares_and_restores

README = Path(__file__).resolve().parent.parent / "README.md"


def _example(monkeypatch) -> dict:
    """Run the Python block of "Adding a method", registering into a registry of its own (not the package's)."""
    section = README.read_text().split("## Adding a method", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setattr(benchmark.method, "METHODS", Registry("method"))
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("conditional", [False, True], ids=["uncond", "cond"])
def test_the_worked_example_honours_the_contract(conditional, monkeypatch, tiny_source, tmp_path):
    example = _example(monkeypatch)
    method = example["SourcePull"]
    assert benchmark.method.METHODS.get("source-pull") is method
    terms = []
    g_regularizers = method.g_regularizers

    def recording(self, batch, fakes, ctx):
        out = g_regularizers(self, batch, fakes, ctx)
        terms.append(out["pull"].item())
        return out

    monkeypatch.setattr(method, "g_regularizers", recording)
    assert_trains_what_it_declares_and_restores(method, conditional, tiny_source, tmp_path / "restore")
    assert terms and terms[0] == 0 and terms[-1] > 0  # no drift at the source, then a pull
    assert not any(k.startswith("G_source") for k in method(tiny_source, toy_target()).state_dict())
    assert_resumes_bit_identically(method, conditional, tiny_source, tmp_path / "resume")


def test_the_readme_points_to_the_real_cdc():
    assert "`methods/cdc.py`" in README.read_text() and (README.parent / "methods" / "cdc.py").exists()
