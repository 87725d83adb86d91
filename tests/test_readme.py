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
def test_the_cdc_example_honours_the_contract(conditional, monkeypatch, tiny_source, tmp_path):
    example = _example(monkeypatch)
    cdc = example["CDC"]
    assert benchmark.method.METHODS.get("cdc") is cdc
    terms = []
    g_regularizers = cdc.g_regularizers

    def recording(self, batch, fakes, ctx):
        out = g_regularizers(self, batch, fakes, ctx)
        terms.append(out["cdc"].item())
        return out

    monkeypatch.setattr(cdc, "g_regularizers", recording)
    assert_trains_what_it_declares_and_restores(cdc, conditional, tiny_source, tmp_path / "restore")
    assert terms and all(t > -1e-3 for t in terms)  # a KL divergence (>= 0 up to rounding), in every G step
    assert not any(k.startswith("G_source") for k in cdc(tiny_source, toy_target()).state_dict())  # not checkpointed
    assert_resumes_bit_identically(cdc, conditional, tiny_source, tmp_path / "resume")
