"""The append-only, hash-chained audit log (venue and SQLite central): writing and verifying.

`record()` appends one event to the `audit_events` table **in the caller's transaction**, so
an event exists exactly when the change it records was committed. Each row stores the hash
of the previous row and its own hash over the canonical JSON of its fields (position, time,
actor, action, object, details, previous hash). `verify_audit()` walks the chain and raises
`AuditBroken` naming the first row that was edited, deleted or moved.

A chain alone cannot show that its newest rows were cut off; the continuous backup
(`server.venue.backup`) and the copy uploaded to the centre hold the head to compare with.
Details are for hashes, counts and ids: never passwords, shares, tokens, answers or ID numbers
(`record` refuses detail keys that name such things).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from paperpack.canonical import canonical_hash, canonical_json
from server.clock import iso
from server.errors import CbtError

GENESIS = "0" * 64
# Detail keys that would put a secret or personal data into the log.
FORBIDDEN_DETAIL_KEYS = frozenset(
    {"password", "share", "shares", "token", "secret", "answer", "answers", "id_number", "key"}
)


class AuditBroken(CbtError):
    """The audit chain does not verify; `event_id` is the first bad row."""

    def __init__(self, event_id: int, why: str) -> None:
        self.event_id = event_id
        super().__init__(
            f"audit event {event_id} {why}: the audit log has been tampered with; keep this "
            "database as evidence and compare it with the backup copy"
        )


def event_hash(
    event_id: int,
    at: str,
    actor: str,
    action: str,
    obj: str,
    details: Any,
    prev_hash: str,
) -> str:
    """Hex SHA-256 of the canonical JSON of one event's fields (the chain's link)."""
    return canonical_hash(
        {
            "event_id": event_id,
            "at": at,
            "actor": actor,
            "action": action,
            "object": obj,
            "details": details,
            "prev_hash": prev_hash,
        }
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
    digest = event_hash(event_id, at, actor, action, object, details, prev_hash)
    db.execute(
        "INSERT INTO audit_events (event_id, at, actor, action, object, details, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event_id,
            at,
            actor,
            action,
            object,
            canonical_json(details).decode(),
            prev_hash,
            digest,
        ),
    )
    return int(event_id)


def verify_audit(db: Database) -> int:
    """Check the whole chain; return the number of events, or raise AuditBroken."""
    expected_prev = GENESIS
    expected_id = 1
    rows = db.execute(
        "SELECT event_id, at, actor, action, object, details, prev_hash, hash"
        " FROM audit_events ORDER BY event_id"
    )
    for event_id, at, actor, action, obj, details, prev_hash, digest in rows:
        if event_id != expected_id:
            raise AuditBroken(expected_id, f"is missing (the next row is {event_id}): deleted")
        if prev_hash != expected_prev:
            raise AuditBroken(
                event_id, "does not follow the previous event: a row before it was changed"
            )
        try:
            parsed = json.loads(details)
        except ValueError:
            raise AuditBroken(event_id, "has details that are not JSON: edited") from None
        if event_hash(event_id, at, actor, action, obj, parsed, prev_hash) != digest:
            raise AuditBroken(event_id, "does not match its hash: edited or moved")
        expected_prev = digest
        expected_id += 1
    return expected_id - 1


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
        if "seq" in db["audit_events"].columns_dict:
            return _verify_central_chain(db)
        return verify_audit(db)
    finally:
        conn.close()


def _verify_central_chain(db: Database) -> int:
    """The central SQLite store keeps its own chain format (server.central.storage)."""
    from server.central.storage import StorageError, verify_audit_chain

    keys = ("seq", "at", "actor", "action", "object", "details", "prev_hash", "hash")
    rows = db.execute(
        "SELECT seq, at, actor, action, object, details, prev_hash, hash"
        " FROM audit_events ORDER BY seq"
    ).fetchall()
    events = [dict(zip(keys, row, strict=True)) for row in rows]
    for event in events:
        event["details"] = json.loads(event["details"])
    try:
        return verify_audit_chain(events)
    except StorageError as exc:
        raise CbtError(f"{exc}: the audit log has been tampered with") from None
