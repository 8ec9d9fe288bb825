"""Backups: the continuous copy stays seconds behind and complete; full copies are consistent."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.audit import record
from server.cli import main as cbt
from server.store import Store
from server.venue.backup import BackupError, ContinuousBackup, backup_status, full_backup
from server.venue.journal import append_save
from server.venue.workspace import Venue, open_venue_store

NOW = datetime(2026, 6, 1, 9, 10, tzinfo=UTC)


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def save_and_audit(db, attempt_id: str, seq: int) -> int:  # type: ignore[no-untyped-def]
    append_save(db, attempt_id, seq, {"i1": f"{attempt_id}/{seq}"}, NOW)
    record(db, "system", "test.saved", f"attempt:{attempt_id}", {"seq": seq}, now=NOW)
    return seq


async def test_the_continuous_backup_is_complete_and_seconds_behind(
    store: Store, venue: Venue, make_attempts: Callable[[int], list[str]]
) -> None:
    """While saves stream in, every acknowledged save reaches the backup within 3 s."""
    attempts = make_attempts(5)
    target = venue.backup_dir / "continuous.db"
    backup = ContinuousBackup(store, target, interval_s=0.5)
    await backup.open()
    task = asyncio.create_task(backup.run())
    lags = []
    try:
        for seq in range(1, 9):
            await asyncio.gather(*(store.write(save_and_audit, a, seq) for a in attempts))
            acked_at = time.monotonic()
            want = seq * len(attempts)
            while rows(target, "SELECT count(*) FROM journal")[0][0] < want:
                assert time.monotonic() - acked_at < 3.0, "backup more than 3 s behind"
                await asyncio.sleep(0.05)
            lags.append(time.monotonic() - acked_at)
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await backup.close()
    assert max(lags) < 3.0
    source = rows(venue.db_path, "SELECT * FROM journal ORDER BY rowid")
    copied = [row[1:] for row in rows(target, "SELECT * FROM journal ORDER BY src_rowid")]
    assert len(source) == 40 and copied == source
    audit_sql = "SELECT event_id, hash FROM audit_events ORDER BY event_id"
    assert rows(target, audit_sql) == rows(venue.db_path, audit_sql)


async def test_a_reopened_backup_copies_only_new_rows(
    store: Store, venue: Venue, make_attempts: Callable[[int], list[str]]
) -> None:
    """After a restart the backup resumes where it stopped: no row twice, none missing."""
    (attempt,) = make_attempts(1)
    target = venue.backup_dir / "continuous.db"
    first = ContinuousBackup(store, target)
    await first.open()
    for seq in range(1, 6):
        await store.write(save_and_audit, attempt, seq)
    assert await first.sync_once() == 10  # 5 journal rows + 5 audit events
    await first.close()
    for seq in range(6, 9):
        await store.write(save_and_audit, attempt, seq)
    second = ContinuousBackup(store, target)
    await second.open()
    assert await second.sync_once() == 6
    await second.close()
    assert rows(target, "SELECT seq FROM journal ORDER BY src_rowid") == [(s,) for s in range(1, 9)]


async def test_a_backup_made_before_a_column_was_added_gets_the_column(
    store: Store, venue: Venue, make_attempts: Callable[[int], list[str]]
) -> None:
    """A continuous backup whose audit table predates `chain_format` (migration m003) gains
    the column and keeps copying: the new events arrive with their format."""
    (attempt,) = make_attempts(1)
    target = venue.backup_dir / "continuous.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(target) as conn:  # the audit table as a backup made before m003
        conn.execute(
            "CREATE TABLE audit_events (src_rowid INTEGER PRIMARY KEY, event_id, at, actor,"
            " action, object, details, prev_hash, hash)"
        )
    conn.close()
    for seq in (1, 2):
        await store.write(save_and_audit, attempt, seq)
    backup = ContinuousBackup(store, target)
    await backup.open()
    assert await backup.sync_once() == 4
    await backup.close()
    copied = rows(target, "SELECT event_id, chain_format FROM audit_events ORDER BY src_rowid")
    source = rows(venue.db_path, "SELECT event_id, chain_format FROM audit_events ORDER BY rowid")
    assert copied == source and {f for _, f in copied} == {"cbt-audit-v2"}


async def test_a_full_backup_taken_under_writes_is_consistent(
    store: Store, venue: Venue, make_attempts: Callable[[int], list[str]]
) -> None:
    """A copy made while saves are being committed passes integrity and audit checks."""
    attempts = make_attempts(4)
    writes = asyncio.gather(
        *(store.write(save_and_audit, a, seq) for seq in range(1, 31) for a in attempts)
    )
    report = await asyncio.to_thread(full_backup, venue.db_path, venue.backup_dir / "copy.db")
    await writes
    assert report.journal_rows == report.audit_events  # each save had its event, atomically
    with pytest.raises(BackupError, match="exists already"):
        full_backup(venue.db_path, venue.backup_dir / "copy.db")


def test_cbt_venue_backup_writes_a_checked_copy(
    venue: Venue, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cbt venue backup DIR` writes DIR/backup/venue-<time>.db.enc (encrypted, F12) and
    reports what it checked; no plaintext copy is left anywhere."""
    assert cbt(["venue", "backup", str(venue.directory)]) == 0
    out = capsys.readouterr().out
    assert "backup written to" in out and "audit events verified" in out
    assert "encrypted to the venue's key" in out
    assert len(list(venue.backup_dir.glob("venue-*.db.enc"))) == 1
    assert list(venue.directory.rglob("*.full-backup")) == []


async def test_the_venue_store_runs_the_backup_and_passes_once_more_on_close(
    venue: Venue, make_attempts: Callable[[int], list[str]]
) -> None:
    """open_venue_store starts the continuous backup; a save just before close is copied too."""
    (attempt,) = make_attempts(1)
    store = await open_venue_store(venue.directory)
    await store.write(save_and_audit, attempt, 1)
    await store.close()
    target = venue.backup_dir / "continuous.db"
    assert rows(target, "SELECT seq FROM journal") == [(1,)]


async def test_backup_status_counts_rows_behind(
    store: Store, venue: Venue, make_attempts: Callable[[int], list[str]]
) -> None:
    """The status says how many rows the backup lacks, and complete once a pass has run."""
    (attempt,) = make_attempts(1)
    target = venue.backup_dir / "continuous.db"
    backup = ContinuousBackup(store, target)
    await backup.open()
    for seq in range(1, 4):
        await store.write(save_and_audit, attempt, seq)
    before = await backup_status(store, target)
    assert before["tables"]["journal"]["behind"] == 3 and not before["complete"]
    await backup.sync_once()
    after = await backup_status(store, target)
    assert after["complete"] and after["tables"]["audit_events"]["copied"] == 3
    await backup.close()
