"""The audit log: hash-chained, append-only, and `cbt audit verify` finds tampering."""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from server.audit import record, verify_audit
from server.cli import main as cbt
from server.protocol.audit_chain import (
    CHAIN_FORMAT,
    GENESIS,
    LEGACY_VENUE_FORMAT,
    AuditBroken,
    legacy_venue_event_hash,
)
from server.store import migrate, transaction
from server.venue import schema
from server.venue.workspace import Venue, open_venue_db

T = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def write_events(db: Database, n: int) -> None:
    with transaction(db):
        for i in range(n):
            record(
                db,
                "chief1",
                "seat.moved",
                f"session:S1/ticket:T{i}",
                {"n": i},
                now=T + timedelta(seconds=i),
            )


def test_events_form_a_chain_that_verifies(venue_db: Database) -> None:
    """Recorded events are numbered 1..n, each linked to the one before, and verify."""
    write_events(venue_db, 5)
    assert verify_audit(venue_db) == 5
    rows = list(venue_db.query("SELECT event_id, prev_hash, hash FROM audit_events"))
    assert [r["event_id"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(rows))


def test_an_edited_event_is_named(venue_db: Database) -> None:
    """Editing one event's details (triggers dropped) is reported at that event."""
    write_events(venue_db, 5)
    venue_db.execute("DROP TRIGGER audit_events_no_update")
    venue_db.execute("""UPDATE audit_events SET details = '{"n":99}' WHERE event_id = 3""")
    with pytest.raises(AuditBroken, match="audit event 3 does not match its hash") as err:
        verify_audit(venue_db)
    assert err.value.event_id == 3


def test_a_deleted_event_is_named(venue_db: Database) -> None:
    """Deleting a middle event is reported as missing at its position."""
    write_events(venue_db, 5)
    venue_db.execute("DROP TRIGGER audit_events_no_delete")
    venue_db.execute("DELETE FROM audit_events WHERE event_id = 2")
    with pytest.raises(AuditBroken, match="audit event 2 is missing"):
        verify_audit(venue_db)


def test_reordered_events_are_named(venue_db: Database) -> None:
    """Swapping two events' contents (keeping ids and hashes in place) is caught."""
    write_events(venue_db, 4)
    venue_db.execute("DROP TRIGGER audit_events_no_update")
    venue_db.execute("UPDATE audit_events SET event_id = -2 WHERE event_id = 2")
    venue_db.execute("UPDATE audit_events SET event_id = 2 WHERE event_id = 3")
    venue_db.execute("UPDATE audit_events SET event_id = 3 WHERE event_id = -2")
    with pytest.raises(AuditBroken, match="audit event 2 does not follow"):
        verify_audit(venue_db)


def test_the_audit_table_refuses_updates_and_deletes(venue_db: Database) -> None:
    """Rows cannot be changed or removed through SQL while the triggers stand."""
    write_events(venue_db, 1)
    with pytest.raises(Exception, match="append-only"):
        venue_db.execute("UPDATE audit_events SET actor = 'x'")
    with pytest.raises(Exception, match="append-only"):
        venue_db.execute("DELETE FROM audit_events")


def test_secrets_are_refused_as_details(venue_db: Database) -> None:
    """Details keyed like a secret or personal data are refused before anything is written."""
    for key in ("password", "share", "token", "id_number", "answers"):
        with pytest.raises(ValueError, match="must not carry"):
            record(venue_db, "a", "b", "c", {key: "x"})
    assert verify_audit(venue_db) == 0


def test_an_event_rolls_back_with_its_transaction(venue_db: Database) -> None:
    """An event written in a transaction that fails is not in the log."""
    with pytest.raises(RuntimeError), transaction(venue_db):
        record(venue_db, "admin", "staff.added", "staff:x", {})
        raise RuntimeError("the change failed")
    assert verify_audit(venue_db) == 0


def test_cbt_audit_verify_reports_intact_and_broken_logs(
    venue: Venue, venue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cbt audit verify DIR` exits 0 on an intact log and 1 naming the edited event."""
    write_events(venue_db, 3)
    assert cbt(["audit", "verify", str(venue.directory)]) == 0
    assert "3 events verified" in capsys.readouterr().out
    venue_db.execute("DROP TRIGGER audit_events_no_update")
    venue_db.execute("UPDATE audit_events SET actor = 'someone-else' WHERE event_id = 2")
    assert cbt(["audit", "verify", str(venue.db_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cbt: error: audit event 2 does not match its hash")
    assert err.count("\n") == 1


def test_cbt_audit_verify_names_a_missing_target(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A path that is not there gives a one-line error and exit 1."""
    assert cbt(["audit", "verify", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err


async def test_cbt_audit_verify_reads_a_central_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A central.db (keyed by seq; the same chain format) verifies, and an edited event is named."""
    from server.central.sqlite_store import SqliteStorage

    storage = SqliteStorage(tmp_path / "central.db")
    await storage.open()
    for i in range(3):
        await storage.audit("operator", "venue.added", f"venue:V{i}", {"n": i}, f"2026-06-0{i + 1}")
    await storage.close()
    assert cbt(["audit", "verify", str(tmp_path)]) == 0
    assert "3 events verified" in capsys.readouterr().out
    conn = sqlite3.connect(tmp_path / "central.db")
    conn.execute("UPDATE audit_events SET actor = 'intruder' WHERE seq = 2")
    conn.commit()
    conn.close()
    assert cbt(["audit", "verify", str(tmp_path / "central.db")]) == 1
    assert "audit event 2 does not match its hash" in capsys.readouterr().err


def make_pre_format_venue_db(path: Path, n: int) -> None:
    """A venue database as the code before issue 12 left it: the migrations of that time
    (m001, m002) and `n` audit events hashed in the venue's legacy format, no chain_format."""
    from sqlite_utils.migrations import Migrations

    old = Migrations("venue")
    old()(schema.m001_initial)
    old()(schema.m002_variants)
    db = Database(path)
    old.apply(db)
    prev = GENESIS
    for i in range(1, n + 1):
        at, obj = f"2026-06-01T08:00:0{i}.000Z", f"session:S1/ticket:T{i}"
        digest = legacy_venue_event_hash(i, at, "chief1", "seat.moved", obj, {"n": i}, prev)
        db.execute(
            "INSERT INTO audit_events (event_id, at, actor, action, object, details, prev_hash,"
            " hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (i, at, "chief1", "seat.moved", obj, f'{{"n":{i}}}', prev, digest),
        )
        prev = digest
    db.conn.commit()
    db.close()
    venue_json = path.parent / "venue.json"
    if venue_json.exists():  # the venue directory is as old: no database identity (F5) either
        data = json.loads(venue_json.read_text())
        data.pop("database", None)
        venue_json.write_text(json.dumps(data))


def test_a_venue_database_from_before_the_chain_format_still_verifies(
    venue: Venue, capsys: pytest.CaptureFixture[str]
) -> None:
    """Events written in the venue's legacy format verify read-only as they are, and after
    the migration the new events (in the one current format) continue the same chain."""
    venue.db_path.unlink()
    make_pre_format_venue_db(venue.db_path, 3)
    assert cbt(["audit", "verify", str(venue.db_path)]) == 0  # not migrated: read-only
    assert "3 events verified" in capsys.readouterr().out
    db = open_venue_db(venue.directory)  # migrates: m003 adds chain_format
    try:
        write_events(db, 2)
        formats = [r[0] for r in db.execute("SELECT chain_format FROM audit_events")]
        assert formats == [LEGACY_VENUE_FORMAT] * 3 + [CHAIN_FORMAT] * 2
        assert verify_audit(db) == 5
    finally:
        db.close()
    assert cbt(["audit", "verify", str(venue.directory)]) == 0
    assert "5 events verified" in capsys.readouterr().out


@pytest.mark.parametrize("tampered", [2, 5])
def test_a_tampered_event_is_named_in_an_upgraded_venue_chain(venue: Venue, tampered: int) -> None:
    """Editing an old (legacy) or a new event of an upgraded chain is reported at that event."""
    venue.db_path.unlink()
    make_pre_format_venue_db(venue.db_path, 3)
    db = open_venue_db(venue.directory)
    try:
        write_events(db, 2)
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET object = 'x' WHERE event_id = ?", (tampered,))
        with pytest.raises(AuditBroken, match=f"audit event {tampered} does not match its hash"):
            verify_audit(db)
    finally:
        db.close()


def test_the_audit_chain_format_migration_is_all_or_nothing(tmp_path: Path) -> None:
    """If the rebuild of audit_events fails half-way (here a view on the old table stops the
    rename), the old table and its events are as they were and the migration stays pending."""
    path = tmp_path / "venue.db"
    make_pre_format_venue_db(path, 3)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIEW recent_events AS SELECT * FROM audit_events")
    conn.close()
    db = Database(path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="recent_events"):
            migrate(db, schema.migrations)
        assert "chain_format" not in db["audit_events"].columns_dict
        assert "audit_events_v2" not in db.table_names()
        assert verify_audit(db) == 3
        assert "m003_audit_chain_format" not in {m.name for m in schema.migrations.applied(db)}
    finally:
        db.close()
