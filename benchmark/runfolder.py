"""A cell's run folder: the one record of the cell. Every file is written atomically.

    config.yaml     the resolved config (identity: a pure function of the cell, never changes)
    cell.json       what the index needs to know about the cell before it runs (identity too)
    status.json     written only by the lease holder: running, finished, failed or interrupted,
                    with times, the owner (host, pid, SLURM job) and, on failure, the reason
    lease/NNNNNN.json   who owns the cell (benchmark.lease)
    metrics.jsonl   one row per evaluation step, appended by the owner
    result.json     the final outcome (cost, final metrics)
    slurm.json      written by the submitting process: the SLURM job id and log paths
    manifest.json, checkpoints/last.pt (and previous.pt, its fallback), samples/, log.txt

Identity files may be written by whoever creates the folder (a suite command registering its
cells, or the job itself): their content is the same every time. Everything else is written by
one process: status, metrics and results by the lease holder, slurm.json by the submitter before
the job can start. No file here is ever written by two processes at once, which is what lets
many jobs share an output folder over NFS; the SQLite index is derived from these files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmark.io import read_jsonl, write_json, write_yaml

CELL_FILE = "cell.json"
STATUS_FILE = "status.json"
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"
SLURM_FILE = "slurm.json"
CONFIG_FILE = "config.yaml"
LOG_FILE = "log.txt"
STATES = ("running", "finished", "failed", "interrupted")


def read_json(path: Path) -> dict | None:
    """A JSON file's object, or None when it is missing or unreadable (a torn write on a non-POSIX file system)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


class RunFolder:
    """Reads and writes one cell's files.

    Args:
        path: the run folder (``ResultsStore.run_dir(key)``).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- identity --------------------------------------------------------------------------------
    def register(self, identity: dict, resolved: dict | None = None) -> None:
        """Write the identity files if they are not there yet (same content for every writer)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if resolved is not None and not (self.path / CONFIG_FILE).exists():
            write_yaml(resolved, self.path / CONFIG_FILE)
        if not (self.path / CELL_FILE).exists():
            write_json(identity, self.path / CELL_FILE)

    def identity(self) -> dict | None:
        return read_json(self.path / CELL_FILE)

    # -- status (the lease holder only) ----------------------------------------------------------
    def status(self) -> dict | None:
        return read_json(self.path / STATUS_FILE)

    def write_status(self, state: str, **fields) -> dict:
        """Replace status.json, keeping the first start time across resumes."""
        if state not in STATES:
            raise ValueError(state)
        previous = self.status() or {}
        record = {
            "state": state,
            "started": previous.get("started") or fields.pop("started", None) or time.time(),
            "updated": time.time(),
            "attempts": previous.get("attempts", 0) + (1 if state == "running" else 0),
            **{k: v for k, v in fields.items() if k != "started"},
        }
        write_json(record, self.path / STATUS_FILE)
        return record

    # -- results ---------------------------------------------------------------------------------
    def metrics(self) -> list[dict]:
        return read_jsonl(self.path / METRICS_FILE)

    def result(self) -> dict | None:
        return read_json(self.path / RESULT_FILE)

    # -- SLURM (the submitting process only) -----------------------------------------------------
    def slurm(self) -> dict | None:
        return read_json(self.path / SLURM_FILE)

    def write_slurm(self, record: dict) -> None:
        write_json(record, self.path / SLURM_FILE)


def run_folders(out: str | Path, suite: str | None = None) -> list[RunFolder]:
    """Every run folder under ``out/runs`` (of one suite), in a stable order."""
    runs = Path(out) / "runs"
    suites = [runs / suite] if suite else sorted(p for p in runs.glob("*") if p.is_dir())
    return [RunFolder(p) for s in suites if s.is_dir() for p in sorted(s.iterdir()) if (p / CELL_FILE).exists()]
