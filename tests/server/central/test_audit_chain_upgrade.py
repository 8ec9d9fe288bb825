"""A central audit log written by the code before the one chain format (a real database made
by commit 546a924, `legacy/`) verifies as it is and after the migration, on both stores; new
events continue it in the current format, and a tampered old or new event is named."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest

from server.audit import verify_audit_file
from server.central.app import open_storage
from server.cli import main as cbt
from server.protocol.audit_chain import (
    CHAIN_FORMAT,
    LEGACY_CENTRAL_FORMAT,
    AuditBroken,
    verify_audit_records,
)
from tests.server.central.test_migrations import LEGACY, restore_dump

OLD_EVENTS = 17  # the audit events the 546a924 database holds (legacy/expected.json)


async def test_an_old_central_chain_continues_in_the_current_format(database: str) -> None:
    """Migrated, the old events keep their legacy format and new ones are written in the
    current one, linked to the last old hash; the whole chain verifies, and an edit to an
    old or a new event is named at that event."""
    if database.startswith("postgresql"):
        await restore_dump(database)
    else:
        shutil.copy(LEGACY / "central" / "central.db", database)
        shutil.copytree(LEGACY / "central" / "central.db-packages", database + "-packages")
    storage = open_storage(database, pg_pool_size=2)
    await storage.open()
    try:
        await storage.audit("operator", "venue.added", "venue:V9", {"n": 1}, "2026-06-20T01:00Z")
        await storage.audit("operator", "venue.added", "venue:V10", {"n": 2}, "2026-06-20T01:01Z")
        events = await storage.audit_events()
    finally:
        await storage.close()
    formats = [e["chain_format"] for e in events]
    assert formats == [LEGACY_CENTRAL_FORMAT] * OLD_EVENTS + [CHAIN_FORMAT] * 2
    assert events[OLD_EVENTS]["prev_hash"] == events[OLD_EVENTS - 1]["hash"]
    assert verify_audit_records(events, "seq", LEGACY_CENTRAL_FORMAT) == OLD_EVENTS + 2
    for tampered in (3, OLD_EVENTS + 2):
        edited = [dict(e) for e in events]
        edited[tampered - 1]["object"] = "venue:intruder"
        with pytest.raises(AuditBroken, match=f"audit event {tampered} does not match its hash"):
            verify_audit_records(edited, "seq", LEGACY_CENTRAL_FORMAT)


def test_cbt_audit_verify_reads_an_old_central_db_before_and_after_the_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cbt audit verify` checks the 546a924 central.db read-only as it is (no chain_format
    column yet), then again once migrated and continued, and names a tampered event."""
    database = tmp_path / "central.db"
    shutil.copy(LEGACY / "central" / "central.db", database)
    shutil.copytree(LEGACY / "central" / "central.db-packages", tmp_path / "central.db-packages")
    assert cbt(["audit", "verify", str(tmp_path)]) == 0
    assert f"{OLD_EVENTS} events verified" in capsys.readouterr().out

    async def continue_chain() -> None:
        storage = open_storage(str(database))
        await storage.open()
        try:
            await storage.audit("operator", "venue.added", "venue:V9", {}, "2026-06-20T01:00Z")
        finally:
            await storage.close()

    asyncio.run(continue_chain())
    assert verify_audit_file(database) == OLD_EVENTS + 1
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE audit_events SET actor = 'intruder' WHERE seq = 2")
    conn.close()
    assert cbt(["audit", "verify", str(database)]) == 1
    assert "audit event 2 does not match its hash" in capsys.readouterr().err
