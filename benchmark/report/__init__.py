"""Tables (CSV, LaTeX, Markdown) and plots of a suite's results, rebuilt from the results store.

``write_report(store)`` is what ``run_benchmark.py report`` calls; ``summary_frame`` gives the
same aggregated numbers to tests and notebooks. Which rows count (newest attempt per cell,
finished cells only, "final" vs "best") is decided in :mod:`benchmark.report.data`.
"""

from benchmark.report.data import SELECTS, direction
from benchmark.report.latex import standalone_latex, tex_escape
from benchmark.report.write import summary_frame, write_report

__all__ = ["SELECTS", "direction", "standalone_latex", "summary_frame", "tex_escape", "write_report"]
