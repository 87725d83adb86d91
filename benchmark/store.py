"""The results store: one run folder per cell and a SQLite index over all of them.

Layout under the output folder::

    results.sqlite                      index: cells (status, timings, cost) and metrics per step
    runs/<suite>/<cell>-<hash>/         one cell: config.yaml, manifest.json, metrics.jsonl,
                                        samples/*.png, checkpoints/last.pt, log.txt, result.json
    tables/<suite>/                     written by ``report``

The run folder is the record; SQLite is an index rebuilt from what the runs write, so tables
never come from a terminal. A cell's folder name carries a hash of its resolved config: changing
the recipe makes a new cell rather than resuming an old one under a different config.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import BenchmarkError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    suite TEXT NOT NULL,
    cell_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    target TEXT, dataset TEXT, shots INTEGER, method TEXT, method_label TEXT, seed INTEGER,
    target_position INTEGER, method_position INTEGER,  -- order in the suite file, for tables
    status TEXT NOT NULL,           -- running | finished | failed
    run_dir TEXT,
    started REAL, finished REAL,
    wall_seconds REAL, train_seconds REAL, images_per_second REAL,
    trainable_params INTEGER, steps INTEGER,
    extractor TEXT, n_fake INTEGER, n_real INTEGER,
    error TEXT,
    PRIMARY KEY (suite, cell_id, config_hash)
);
CREATE TABLE IF NOT EXISTS metrics (
    suite TEXT NOT NULL, cell_id TEXT NOT NULL, config_hash TEXT NOT NULL,
    step INTEGER NOT NULL, name TEXT NOT NULL, value REAL,
    PRIMARY KEY (suite, cell_id, config_hash, step, name)
);
"""

STATUSES = ("running", "finished", "failed")


@dataclass(frozen=True)
class CellKey:
    suite: str
    cell_id: str
    config_hash: str


class ResultsStore:
    """The output folder: run folders and the SQLite index.

    Args:
        out: the output folder; created if missing (an unwritable one is a one-line error).
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise BenchmarkError(
                f"output folder {self.out} is not writable ({err.strerror}); choose another with --out"
            ) from None
        self.db_path = self.out / "results.sqlite"
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self):
        db = sqlite3.connect(self.db_path, timeout=60)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    # -- run folders -----------------------------------------------------------------------------
    def run_dir(self, key: CellKey) -> Path:
        return self.out / "runs" / key.suite / f"{key.cell_id}-{key.config_hash}"

    def tables_dir(self, suite: str) -> Path:
        return self.out / "tables" / suite

    # -- cells -----------------------------------------------------------------------------------
    def status(self, key: CellKey) -> str | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT status FROM cells WHERE suite=? AND cell_id=? AND config_hash=?",
                (key.suite, key.cell_id, key.config_hash),
            ).fetchone()
        return row["status"] if row else None

    def start(self, key: CellKey, **fields) -> None:
        """Mark a cell running (keeps the first start time when a cell resumes)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO cells (suite, cell_id, config_hash, status, started) VALUES (?, ?, ?, 'running', ?) "
                "ON CONFLICT (suite, cell_id, config_hash) DO UPDATE SET status='running', error=NULL, finished=NULL",
                (key.suite, key.cell_id, key.config_hash, time.time()),
            )
            self._update(db, key, fields)

    def finish(self, key: CellKey, status: str, **fields) -> None:
        if status not in STATUSES:
            raise ValueError(status)
        with self._connect() as db:
            self._update(db, key, {**fields, "status": status, "finished": time.time()})

    @staticmethod
    def _update(db, key: CellKey, fields: dict) -> None:
        if not fields:
            return
        columns = ", ".join(f"{k}=?" for k in fields)
        db.execute(
            f"UPDATE cells SET {columns} WHERE suite=? AND cell_id=? AND config_hash=?",
            (*fields.values(), key.suite, key.cell_id, key.config_hash),
        )

    def record_metrics(self, key: CellKey, step: int, metrics: dict[str, float]) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO metrics (suite, cell_id, config_hash, step, name, value) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(key.suite, key.cell_id, key.config_hash, step, k, float(v)) for k, v in metrics.items()],
            )

    def forget_metrics_after(self, key: CellKey, step: int) -> None:
        """Drop rows a killed run wrote after its last checkpoint; the resumed run writes them again."""
        with self._connect() as db:
            db.execute(
                "DELETE FROM metrics WHERE suite=? AND cell_id=? AND config_hash=? AND step>?",
                (key.suite, key.cell_id, key.config_hash, step),
            )

    # -- reading -----------------------------------------------------------------------------------
    def cells(self, suite: str | None = None):
        """All cell rows (as dicts), optionally of one suite."""
        query, args = "SELECT * FROM cells", ()
        if suite:
            query, args = query + " WHERE suite=?", (suite,)
        with self._connect() as db:
            return [dict(r) for r in db.execute(query + " ORDER BY suite, cell_id", args)]

    def metrics(self, suite: str | None = None):
        """All metric rows (suite, cell_id, config_hash, step, name, value) as dicts."""
        query, args = "SELECT * FROM metrics", ()
        if suite:
            query, args = query + " WHERE suite=?", (suite,)
        with self._connect() as db:
            return [dict(r) for r in db.execute(query, args)]

    def suites(self) -> list[str]:
        with self._connect() as db:
            return [r["suite"] for r in db.execute("SELECT DISTINCT suite FROM cells ORDER BY suite")]
