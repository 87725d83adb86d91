"""The results store: one run folder per cell and a SQLite index derived from all of them.

Layout under the output folder::

    results.sqlite                      index: cells (state, timings, cost) and metrics per step
    runs/<suite>/<cell>-<hash>/         one cell: config.yaml, cell.json, status.json, lease/,
                                        manifest.json, metrics.jsonl, samples/*.png,
                                        checkpoints/last.pt, log.txt, result.json (runfolder.py)
    tables/<suite>/                     written by ``report``

The run folder is the record, written only by the process that holds the cell's lease; the
SQLite file is an index rebuilt from the run folders by ``rebuild_index`` (run by ``status``,
``report`` and at the end of a suite command), never written by the jobs themselves, so many jobs
on a shared file system never write one database (SQLite's locking is unreliable over NFS). A
rebuild writes a new file and renames it over the old one, so readers never see half an index
and two rebuilds at once cannot corrupt it. A cell's folder name carries a hash of its resolved
config: changing the recipe makes a new cell rather than resuming an old one under a different
config.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import BenchmarkError
from benchmark.runfolder import CELL_FILE, RunFolder

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    suite TEXT NOT NULL,
    cell_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    target TEXT, dataset TEXT, shots INTEGER, method TEXT, method_label TEXT, seed INTEGER,
    target_position INTEGER, method_position INTEGER,  -- order in the suite file, for tables
    status TEXT NOT NULL,           -- pending | queued | running | finished | failed (benchmark.status)
    run_dir TEXT,
    started REAL, finished REAL,
    wall_seconds REAL, train_seconds REAL, images_per_second REAL,
    trainable_params INTEGER, steps INTEGER,
    extractor TEXT, n_fake INTEGER, n_real INTEGER,
    error TEXT,
    job_id TEXT, step INTEGER, total_steps INTEGER, log TEXT,
    method_state TEXT,              -- JSON: what the method reports of its run (bsa/glo: the perceptual network)
    PRIMARY KEY (suite, cell_id, config_hash)
);
CREATE TABLE IF NOT EXISTS metrics (
    suite TEXT NOT NULL, cell_id TEXT NOT NULL, config_hash TEXT NOT NULL,
    step INTEGER NOT NULL, name TEXT NOT NULL, value REAL,
    PRIMARY KEY (suite, cell_id, config_hash, step, name)
);
"""

CELL_COLUMNS = (
    "suite", "cell_id", "config_hash", "target", "dataset", "shots", "method", "method_label", "seed",
    "target_position", "method_position", "status", "run_dir", "started", "finished", "wall_seconds",
    "train_seconds", "images_per_second", "trainable_params", "steps", "extractor", "n_fake", "n_real",
    "error", "job_id", "step", "total_steps", "log", "method_state",
)  # fmt: skip


@dataclass(frozen=True)
class CellKey:
    suite: str
    cell_id: str
    config_hash: str


class ResultsStore:
    """The output folder: run folders and the SQLite index derived from them.

    Args:
        out: the output folder; created if missing (an unwritable one is a one-line error).
        create: False to only read (a dry run): nothing is created or checked.
    """

    def __init__(self, out: str | Path, create: bool = True):
        self.out = Path(out)
        self.db_path = self.out / "results.sqlite"
        if not create:
            return
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.out, prefix=".write-test.")
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise BenchmarkError(
                f"output folder {self.out} is not writable ({err.strerror}); choose another with --out"
            ) from None

    @contextmanager
    def _connect(self, path: Path | None = None):
        db = sqlite3.connect(path or self.db_path, timeout=60)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    # -- run folders -----------------------------------------------------------------------------
    def run_dir(self, key: CellKey) -> Path:
        return self.out / "runs" / key.suite / f"{key.cell_id}-{key.config_hash}"

    def folder(self, key: CellKey) -> RunFolder:
        return RunFolder(self.run_dir(key))

    def tables_dir(self, suite: str) -> Path:
        return self.out / "tables" / suite

    # -- the index -------------------------------------------------------------------------------
    def rebuild_index(self, states: list | None = None) -> Path:
        """Write results.sqlite anew from the run folders (or from ``states`` already read); returns its path."""
        from benchmark.status import cell_states

        states = cell_states(self.out) if states is None else states
        cells, metrics = [], []
        for state in states:
            rows = state.folder.metrics()
            cells.append(_cell_row(state, rows))
            key = (state.identity["suite"], state.identity["cell_id"], state.identity["config_hash"])
            for row in rows:
                for name, value in (row.get("metrics") or {}).items():
                    metrics.append((*key, int(row["step"]), name, None if value is None else float(value)))
        fd, tmp = tempfile.mkstemp(dir=self.out, prefix=".results.", suffix=".sqlite.tmp")
        os.close(fd)
        try:
            with self._connect(Path(tmp)) as db:
                db.executescript(SCHEMA)
                db.executemany(
                    f"INSERT OR REPLACE INTO cells ({', '.join(CELL_COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in CELL_COLUMNS)})",
                    [tuple(row.get(c) for c in CELL_COLUMNS) for row in cells],
                )
                db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?)", metrics)
            os.replace(tmp, self.db_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.db_path

    # -- reading the index -----------------------------------------------------------------------
    def cells(self, suite: str | None = None):
        """All cell rows (as dicts), optionally of one suite."""
        if not self.db_path.exists():
            return []
        query, args = "SELECT * FROM cells", ()
        if suite:
            query, args = query + " WHERE suite=?", (suite,)
        with self._connect() as db:
            return [dict(r) for r in db.execute(query + " ORDER BY suite, cell_id", args)]

    def metrics(self, suite: str | None = None):
        """All metric rows (suite, cell_id, config_hash, step, name, value) as dicts."""
        if not self.db_path.exists():
            return []
        query, args = "SELECT * FROM metrics", ()
        if suite:
            query, args = query + " WHERE suite=?", (suite,)
        with self._connect() as db:
            return [dict(r) for r in db.execute(query, args)]

    def suites(self) -> list[str]:
        if not self.db_path.exists():
            return []
        with self._connect() as db:
            return [r["suite"] for r in db.execute("SELECT DISTINCT suite FROM cells ORDER BY suite")]


def _cell_row(state, metrics: list[dict]) -> dict:
    """One index row from a cell's derived state, its files and its metrics.jsonl rows."""
    identity, status, folder = state.identity, state.status or {}, state.folder
    result = (folder.result() or {}) if state.state in ("finished", "failed") else {}
    registered = (folder.path / CELL_FILE).stat().st_mtime if (folder.path / CELL_FILE).exists() else None
    return {
        **{k: identity.get(k) for k in CELL_COLUMNS if k in identity},
        "status": state.state,
        "run_dir": str(folder.path),
        "started": status.get("started") or registered,
        "finished": status.get("finished") if state.state in ("finished", "failed") else None,
        "wall_seconds": result.get("wall_seconds"),
        "train_seconds": result.get("train_seconds"),
        "images_per_second": result.get("images_per_second"),
        "trainable_params": result.get("trainable_parameters"),
        "steps": result.get("steps"),
        "n_real": metrics[-1].get("n_real") if metrics else None,
        "error": state.reason if state.state == "failed" else None,
        "job_id": state.job,
        "step": state.step,
        "total_steps": state.total,
        "log": state.log,
        "method_state": json.dumps(result["method_state"], sort_keys=True) if result.get("method_state") else None,
    }
