"""The recovery store: checkpoints of a run in SQLite, kept by the coordinator.

One file, `recovery.sqlite`, in the recovery directory (`--recovery-dir`, default
`out/<plan>-recovery` beside the plan). Tables:

- `runs`: one row per run: id, the plan as deployed (JSON), where it came from, the stateful
  operator instances a checkpoint must hold, the checkpoint interval, status (running,
  completed, failed) and the seconds the sources had run when the last generation started.
- `snapshots`: one row per (run, generation, checkpoint epoch, operator, instance): the
  instance's state packed with the record codec (never pickle) and the notifications it had
  requested after the epoch.
- `checkpoints`: (run, generation, epoch, committed_at): written in the same transaction as the
  snapshot that completes the set, so a checkpoint is either wholly there or absent.
- `failures`: what the report lists about each recovery (JSON).

Retention: the newest `keep` (3) committed checkpoints of a run; older snapshots, and snapshots
of epochs before the oldest kept checkpoint that never completed, are deleted as a new
checkpoint commits.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, created_at REAL, plan_json TEXT, source_path TEXT, base_dir TEXT,
    speed REAL, every_epochs INTEGER, stateful TEXT, status TEXT, elapsed_s REAL);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT, generation INTEGER, epoch INTEGER, operator TEXT, instance INTEGER,
    state BLOB, notify TEXT, PRIMARY KEY (run_id, generation, epoch, operator, instance));
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT, generation INTEGER, epoch INTEGER, committed_at REAL,
    PRIMARY KEY (run_id, generation, epoch));
CREATE TABLE IF NOT EXISTS failures (run_id TEXT, at REAL, info TEXT);
"""


@dataclass
class Checkpoint:
    """A committed checkpoint: per operator and instance, the state and restored notifications."""

    epoch: int
    states: dict[str, dict[int, bytes]]  # operator -> instance -> state packed by the record codec
    notify: dict[str, dict[int, list[int]]]  # operator -> instance -> epochs


@dataclass
class StoredRun:
    run_id: str
    plan: dict[str, Any]
    source_path: str
    base_dir: str
    speed: float | None
    every_epochs: int | None
    status: str
    elapsed_s: float


class RecoveryStore:
    """Checkpoints of runs in one SQLite file."""

    FILE = "recovery.sqlite"

    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / self.FILE
        self.keep = keep
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.stateful: dict[str, set[tuple[str, int]]] = {}

    def close(self) -> None:
        self.db.close()

    # runs ----------------------------------------------------------------------------------------
    def begin_run(self, run_id: str, plan: dict[str, Any], source_path: str, base_dir: str,
                  speed: float | None, every_epochs: int | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (run_id, time.time(), json.dumps(plan), source_path, base_dir, speed,
                         every_epochs, "[]", "running", 0.0))

    def set_stateful(self, run_id: str, instances: set[tuple[str, int]]) -> None:
        """The instances whose snapshots make a checkpoint complete (the same every generation)."""
        self.stateful[run_id] = set(instances)
        self.db.execute("UPDATE runs SET stateful=? WHERE run_id=?", (json.dumps(sorted(instances)), run_id))

    def set_status(self, run_id: str, status: str, elapsed_s: float | None = None) -> None:
        if elapsed_s is None:
            self.db.execute("UPDATE runs SET status=? WHERE run_id=?", (status, run_id))
        else:
            self.db.execute("UPDATE runs SET status=?, elapsed_s=? WHERE run_id=?", (status, elapsed_s, run_id))

    def latest_run(self) -> StoredRun | None:
        row = self.db.execute("SELECT run_id, plan_json, source_path, base_dir, speed, every_epochs, status, "
                              "elapsed_s, stateful FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
        if row is None:
            return None
        self.stateful[row[0]] = {(op, int(i)) for op, i in json.loads(row[8] or "[]")}
        return StoredRun(row[0], json.loads(row[1]), row[2], row[3], row[4], row[5], row[6], row[7] or 0.0)

    # checkpoints ---------------------------------------------------------------------------------
    def add_snapshot(self, run_id: str, generation: int, epoch: int, operator: str, instance: int,
                     state: bytes, notify: list[int]) -> bool:
        """Keep one instance's snapshot; returns True when it completes checkpoint `epoch`."""
        db = self.db
        db.execute("BEGIN")
        try:
            db.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?,?,?,?)",
                       (run_id, generation, epoch, operator, instance, state, json.dumps(notify)))
            have = {(op, i) for op, i in db.execute(
                "SELECT operator, instance FROM snapshots WHERE run_id=? AND generation=? AND epoch=?",
                (run_id, generation, epoch))}
            complete = have >= self.stateful.get(run_id, set())
            if complete:
                db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)",
                           (run_id, generation, epoch, time.time()))
                self._retain(run_id)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return complete

    def commit_empty(self, run_id: str, generation: int, epoch: int) -> None:
        """A run without stateful instances: every complete epoch is a checkpoint."""
        self.db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)", (run_id, generation, epoch, time.time()))

    def _retain(self, run_id: str) -> None:
        kept = self.db.execute("SELECT generation, epoch FROM checkpoints WHERE run_id=? "
                               "ORDER BY epoch DESC, generation DESC LIMIT ?", (run_id, self.keep)).fetchall()
        if len(kept) < self.keep:
            return
        oldest = kept[-1][1]
        self.db.execute("DELETE FROM checkpoints WHERE run_id=? AND epoch<?", (run_id, oldest))
        self.db.execute("DELETE FROM snapshots WHERE run_id=? AND epoch<?", (run_id, oldest))

    def latest_checkpoint(self, run_id: str) -> Checkpoint | None:
        row = self.db.execute("SELECT generation, epoch FROM checkpoints WHERE run_id=? "
                              "ORDER BY epoch DESC, generation DESC LIMIT 1", (run_id,)).fetchone()
        if row is None:
            return None
        generation, epoch = row
        states: dict[str, dict[int, bytes]] = {}
        notify: dict[str, dict[int, list[int]]] = {}
        for op, inst, blob, nt in self.db.execute(
                "SELECT operator, instance, state, notify FROM snapshots WHERE run_id=? AND generation=? "
                "AND epoch=?", (run_id, generation, epoch)):
            states.setdefault(op, {})[inst] = bytes(blob)
            notify.setdefault(op, {})[inst] = json.loads(nt)
        return Checkpoint(epoch, states, notify)

    def next_generation(self, run_id: str) -> int:
        """A generation number no earlier coordinator of the run has used."""
        row = self.db.execute("SELECT MAX(generation) FROM snapshots WHERE run_id=?", (run_id,)).fetchone()
        row2 = self.db.execute("SELECT MAX(generation) FROM checkpoints WHERE run_id=?", (run_id,)).fetchone()
        used = [g for g in (row[0], row2[0]) if g is not None]
        return max(used) + 1 if used else 1

    def checkpoints(self, run_id: str) -> list[int]:
        return [e for (e,) in self.db.execute("SELECT epoch FROM checkpoints WHERE run_id=? ORDER BY epoch",
                                              (run_id,))]

    def add_failure(self, run_id: str, info: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO failures VALUES (?,?,?)", (run_id, time.time(), json.dumps(info)))
