"""The venue's append-only, hash-chained audit log: writing it, verifying it, and
`cbt audit verify` for a venue or central database.

`record()` appends one event to the `audit_events` table **in the caller's transaction**, so
an event exists exactly when the change it records was committed. Each row stores the hash
of the previous row, its own hash and the format of that hash (`chain_format`): the one
audit-chain format both sides write, `server.protocol.audit_chain`. `verify_audit()` walks
the chain and raises `AuditBroken` naming the first row that was edited, deleted or moved;
rows written before the format was recorded are in the venue's legacy format and still
verify.

A chain alone cannot show that its newest rows were cut off; the continuous backup
(`server.venue.backup`) and the copy uploaded to the centre hold the head to compare with.
Details are for hashes, counts and ids: never passwords, shares, tokens, answers or ID numbers
(`record` refuses detail keys that name such things).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from paperpack.canonical import canonical_json
from server.clock import iso
from server.errors import CbtError
from server.protocol.audit_chain import (
    GENESIS,
    LEGACY_CENTRAL_FORMAT,
    LEGACY_VENUE_FORMAT,
    AuditBroken,
    verify_audit_records,
)
from server.protocol.audit_chain import new_event as new_audit_event

# Detail keys that would put a secret or personal data into the log.
FORBIDDEN_DETAIL_KEYS = frozenset(
    {"password", "share", "shares", "token", "secret", "answer", "answers", "id_number", "key"}
)


def record(
    db: Database,
    actor: str,
    action: str,
    object: str,  # the audit vocabulary is actor, action, object
    details: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> int:
    """Append one event in the caller's transaction; return its position in the chain.

    Pass `now=clock.now()` from the app's injected clock; without it the system time is used
    (command-line tools).
    """
    details = dict(details or {})
    bad = FORBIDDEN_DETAIL_KEYS.intersection(k.lower() for k in details)
    if bad:
        raise ValueError(f"audit details must not carry {sorted(bad)}: record a hash instead")
    at = iso(now or datetime.now(UTC))
    last = db.execute(
        "SELECT event_id, hash FROM audit_events ORDER BY event_id DESC LIMIT 1"
    ).fetchone()
    event_id, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    event = new_audit_event(event_id, at, actor, action, object, details, prev_hash)
    db.execute(
        "INSERT INTO audit_events (event_id, at, actor, action, object, details, prev_hash, hash,"
        " chain_format) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event_id,
            at,
            actor,
            action,
            object,
            canonical_json(details).decode(),
            prev_hash,
            event.hash,
            event.chain_format,
        ),
    )
    return int(event_id)


def verify_audit(db: Database) -> int:
    """Check the venue database's whole chain; return the number of events, or raise
    `AuditBroken` (server.protocol.audit_chain) naming the first bad one."""
    return _verify_table(db, "event_id", LEGACY_VENUE_FORMAT)


def _verify_table(db: Database, position_key: str, unmarked_format: str) -> int:
    """Verify `audit_events` keyed by `position_key`; rows without a recorded chain format
    (a database or backup copy from before it was recorded) are in `unmarked_format`."""
    columns = db["audit_events"].columns_dict
    chain_format = "chain_format" if "chain_format" in columns else "NULL"
    rows = db.execute(
        f"SELECT {position_key}, at, actor, action, object, details, prev_hash, hash,"  # noqa: S608 (fixed names)
        f" {chain_format} FROM audit_events ORDER BY {position_key}"
    )
    keys = (position_key, "at", "actor", "action", "object", "details", "prev_hash", "hash",
            "chain_format")  # fmt: skip
    records = (dict(zip(keys, row, strict=True)) for row in rows)
    return verify_audit_records(_parsed(records, position_key), position_key, unmarked_format)


def _parsed(records: Iterator[dict[str, Any]], position_key: str) -> Iterator[dict[str, Any]]:
    """The rows with their details parsed; details that are not JSON break the chain."""
    for record in records:
        try:
            record["details"] = json.loads(record["details"])
        except ValueError:
            raise AuditBroken(
                record[position_key], "has details that are not JSON: edited"
            ) from None
        yield record


def audit_database_path(target: Path) -> Path:
    """The database file to verify: `target` itself, or `target/venue.db` for a venue folder."""
    if target.is_dir():
        for name in ("venue.db", "central.db"):
            if (target / name).is_file():
                return target / name
        raise CbtError(f"{target} holds no venue.db or central.db: pass the database file")
    if not target.is_file():
        raise CbtError(f"{target} does not exist: pass a venue folder or a database file")
    return target


def verify_audit_file(target: Path) -> int:
    """Open the database read-only and verify its audit chain; return the event count."""
    import sqlite3

    path = audit_database_path(target)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db = Database(conn)
        if "audit_events" not in db.table_names():
            raise CbtError(f"{path} has no audit_events table: is it a venue or central database?")
        # The two sides key their events differently; the chain format is the same.
        if "seq" in db["audit_events"].columns_dict:
            return _verify_table(db, "seq", LEGACY_CENTRAL_FORMAT)
        return verify_audit(db)
    finally:
        conn.close()
