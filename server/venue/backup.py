"""Backups of the venue's answer data (art. 27, 35(1)): continuous and on demand.

Continuous: `ContinuousBackup` copies every new row of the append-only tables (`journal`,
`audit_events`, `submissions`) into a second SQLite database, `DIR/backup/continuous.db`
(another disk in practice: mount one there), every `interval_s` seconds. Rows are found by
rowid, so a pass copies only what is new; the backup runs WAL + synchronous=FULL too, so a
copied row survives a power cut. Each backup table has the source's columns plus `src_rowid`.
With a `RowSealer` (as every server runs it) the answers it copies are encrypted to the
venue's and the centre's keys (server.venue.backup_crypto, F12).
`server.venue.workspace.open_venue_store` starts it with the store and stops it (after a last
pass) when the store closes, so every venue server runs one.

On demand: `full_backup()` (`cbt venue backup DIR`) uses SQLite's online backup API for a
complete, consistent copy while the server keeps running, then checks the copy
(`PRAGMA integrity_check` and the audit chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from server.audit import verify_audit
from server.errors import CbtError, is_storage_full
from server.private import private_file
from server.store import Store, connect
from server.venue.background import stop_task
from server.venue.backup_crypto import RowSealer

log = logging.getLogger(__name__)

BACKUP_TABLES = ("journal", "audit_events", "submissions")
CONTINUOUS_FILE = "continuous.db"
BATCH_ROWS = 5000


class BackupError(CbtError):
    """A backup could not be made or does not match its source."""


def _columns(db: Database, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def read_new_rows(
    db: Database, positions: dict[str, int], limit: int = BATCH_ROWS
) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Rows of each backup table with rowid above `positions[table]` (at most `limit` each)."""
    found: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    for table in BACKUP_TABLES:
        columns = _columns(db, table)
        rows = db.execute(
            f"SELECT rowid, {', '.join(columns)} FROM {table} WHERE rowid > ?"  # noqa: S608 - fixed table names
            " ORDER BY rowid LIMIT ?",
            (positions.get(table, 0), limit),
        ).fetchall()
        found[table] = (columns, rows)
    return found


class ContinuousBackup:
    """Copies new rows of the append-only tables into the backup database, a pass at a time."""

    def __init__(
        self,
        store: Store,
        target: Path,
        *,
        interval_s: float = 1.0,
        sealer: RowSealer | None = None,
    ) -> None:
        self.store = store
        self.target = target
        self.interval_s = interval_s
        self.sealer = sealer  # encrypts the answers it copies (F12, server.venue.backup_crypto)
        self.last_pass_at: datetime | None = None
        self.rows_copied = 0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup")
        self._db: Database | None = None
        self.positions: dict[str, int] = {}

    async def open(self) -> None:
        """Open (or create) the backup database and learn how far it has got."""
        columns = await self.store.read(
            lambda db: {table: _columns(db, table) for table in BACKUP_TABLES}
        )
        await self._in_thread(self._open, columns)

    def _open(self, columns: dict[str, list[str]]) -> None:
        self._db = connect(private_file(self.target))
        if self.sealer is not None:
            self.sealer.prepare(self._db.conn)
        for table in BACKUP_TABLES:
            self._ensure_table(self._db, table, columns[table])
            self.positions[table] = self._position(self._db, table)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def sync_once(self) -> int:
        """Copy everything new since the last pass; return the number of rows copied."""
        total = 0
        while True:
            found = await self.store.read(read_new_rows, dict(self.positions))
            copied = int(await self._in_thread(self._write, found))
            total += copied
            if copied == 0 or all(len(rows) < BATCH_ROWS for _, rows in found.values()):
                break
        self.rows_copied += total
        self.last_pass_at = datetime.now(UTC)
        return total

    def _write(self, found: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> int:
        db = self._db
        if db is None:
            raise BackupError("the continuous backup is not open")
        copied = 0
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            for table, (columns, rows) in found.items():
                self._ensure_table(db, table, columns)
                if not rows:
                    continue
                if self.sealer is not None:
                    rows = self.sealer.seal_rows(table, columns, rows)
                marks = ", ".join("?" * (len(columns) + 1))
                db.conn.executemany(
                    f"INSERT OR IGNORE INTO {table} (src_rowid, {', '.join(columns)})"  # noqa: S608 - fixed names
                    f" VALUES ({marks})",
                    rows,
                )
                copied += len(rows)
            db.conn.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back (a full disk does): a second ROLLBACK would
            # raise "no transaction is active" and hide the real error.
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        for table, (_, rows) in found.items():
            if rows:
                self.positions[table] = max(self.positions.get(table, 0), rows[-1][0])
        return copied

    @staticmethod
    def _ensure_table(db: Database, table: str, columns: list[str]) -> None:
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (src_rowid INTEGER PRIMARY KEY, "
            + ", ".join(columns)
            + ")"
        )
        # A column the source gained by a migration since this backup was made (such as the
        # audit events' chain_format): the rows copied before it have NULL there.
        for column in [c for c in columns if c not in _columns(db, table)]:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    @staticmethod
    def _position(db: Database, table: str) -> int:
        row = db.execute(f"SELECT max(src_rowid) FROM {table}").fetchone()  # noqa: S608 - fixed names
        return int(row[0] or 0)

    async def run(self) -> None:
        """Pass after pass until cancelled; a failing pass is logged and retried."""
        while True:
            try:
                await self.sync_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_storage_full(exc):  # the next pass copies the same rows once there is room
                    log.warning("backup.pass_failed target=%s error=disk full", self.target)
                else:
                    log.exception("backup.pass_failed target=%s", self.target)
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        """Make a last pass, then close the backup database."""
        with contextlib.suppress(Exception):
            await self.sync_once()
        if self._db is not None:
            await self._in_thread(self._db.close)
        self._thread.shutdown(wait=True)


async def start_continuous_backup(
    store: Store, target: Path, *, interval_s: float = 1.0, sealer: RowSealer | None = None
) -> ContinuousBackup:
    """Open the backup, run it in a task, and stop it (after a last pass) when `store` closes."""
    backup = ContinuousBackup(store, target, interval_s=interval_s, sealer=sealer)
    await backup.open()
    task = asyncio.create_task(backup.run(), name="venue-backup")

    async def stop() -> None:
        await stop_task(task)
        await backup.close()

    store.before_close(stop)
    return backup


def _source_heads(db: Database) -> dict[str, int]:
    return {
        table: int(db.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])  # noqa: S608 - fixed names
        for table in BACKUP_TABLES
    }


async def backup_status(store: Store, target: Path) -> dict[str, Any]:
    """How far the continuous backup at `target` is behind the store, table by table (for the
    admin console): {"tables": {table: {"source": rowid, "copied": rowid, "behind": rows}},
    "complete": bool, "backup_at": file time of the backup (ISO-8601 UTC) or None}."""
    source = await store.read(_source_heads)
    copied: dict[str, int] = dict.fromkeys(BACKUP_TABLES, 0)
    modified = None
    if target.exists():
        conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        try:
            for table in BACKUP_TABLES:
                with contextlib.suppress(sqlite3.OperationalError):  # not created yet
                    row = conn.execute(f"SELECT max(src_rowid) FROM {table}").fetchone()  # noqa: S608 - fixed names
                    copied[table] = int(row[0] or 0)
        finally:
            conn.close()
        modified = datetime.fromtimestamp(target.stat().st_mtime, UTC).isoformat()
    tables = {
        t: {"source": source[t], "copied": copied[t], "behind": max(0, source[t] - copied[t])}
        for t in BACKUP_TABLES
    }
    return {
        "tables": tables,
        "complete": all(v["behind"] == 0 for v in tables.values()),
        "backup_at": modified,
    }


# --- on demand -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupReport:
    """What `full_backup` wrote and checked."""

    path: Path
    size_bytes: int
    journal_rows: int
    audit_events: int


def full_backup(source: Path, destination: Path) -> BackupReport:
    """A consistent copy of `source` at `destination` (online backup API), then checked."""
    if destination.exists():
        raise BackupError(f"{destination} exists already: choose a new file name")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(private_file(destination))
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    copy = Database(sqlite3.connect(destination))
    try:
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy at {destination} fails integrity_check: {check}")
        events = verify_audit(copy)
        journal = int(copy.execute("SELECT count(*) FROM journal").fetchone()[0])
    finally:
        copy.close()
    return BackupReport(destination, destination.stat().st_size, journal, events)


def default_backup_name(now: datetime) -> str:
    return "venue-" + now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + ".db"
