"""Compile report LaTeX with pdflatex and fail on what a paper cannot use: a float taller than
the page, a box wider than the text by more than 1pt, or any error.

pdflatex comes from texlive (``.ci/run`` installs it with apt). Without it a test skips on a
developer's machine, but fails under CI (``CI`` set), where a skip would hide a missing install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark.report import standalone_latex

OVERFULL = re.compile(r"Overfull \\[hv]box \(([\d.]+)pt too (?:wide|high)\)")


def compile_tables(tex: str, folder: Path, name: str = "tables") -> str:
    """Compile ``tex`` (table floats) in an article; returns pdflatex's log after checking it."""
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is not installed; .ci/run installs texlive-latex-base and texlive-latex-recommended")
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.tex").write_text(standalone_latex(tex))
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = (folder / f"{name}.log").read_text(errors="replace")
    assert run.returncode == 0, run.stdout[-3000:]
    assert (folder / f"{name}.pdf").stat().st_size > 1000
    assert "Float too large" not in log, _context(log, "Float too large")
    too_big = [float(pt) for pt in OVERFULL.findall(log) if float(pt) > 1.0]
    assert not too_big, f"overfull boxes of {too_big} pt:\n{_context(log, 'Overfull')}"
    return log


def _context(log: str, needle: str) -> str:
    at = log.find(needle)
    return log[max(at - 200, 0) : at + 800]
