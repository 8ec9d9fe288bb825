"""A database the venue can trust (issue 16, F5): its identity and its integrity, at every open.

`cbt venue init` gives the database an identity: a random id with the venue id and the time,
stored in the database (`settings` row `database.identity`) and in `venue.json` beside it.
Every command that opens the database, and the server at start, first runs
`check_venue_database`: it refuses a missing, empty (0-byte), unreadable or damaged file
(`PRAGMA quick_check`, or `integrity_check` on demand) and a database whose identity is not
the one `venue.json` records (another venue directory's, or a fresh one created by mistake),
each with ONE line naming the restore procedure (`cbt venue restore DIR`, server.venue.restore).

A venue directory made before identities existed is adopted once: its database, if it passes
the integrity check and carries no identity, gets a new one in both places (a warning line).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from paperpack.canonical import canonical_json
from server.clock import iso
from server.dbcheck import DatabaseDamaged, check_sqlite_file
from server.errors import CbtError

log = logging.getLogger(__name__)

IDENTITY_KEY = "database.identity"
RESTORE_DOC = "docs/venue-runbook.md, 'The venue database is refused'"


class DatabaseRefused(CbtError):
    """The venue database is empty, damaged or not this venue directory's: restore it."""


def new_identity(venue_id: str, now: datetime) -> dict[str, str]:
    """A fresh identity for a venue database: a random id, the venue and the creation time."""
    return {"database_id": secrets.token_hex(16), "venue_id": venue_id, "created_at": iso(now)}


def write_identity(db: Database, identity: dict[str, str], now: datetime) -> None:
    """Record `identity` in the database (the `settings` row `database.identity`)."""
    db.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (IDENTITY_KEY, canonical_json(identity).decode(), iso(now)),
    )


def read_identity(path: Path) -> dict[str, Any] | None:
    """The identity recorded in the database at `path`, or None (none, or no settings table)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        row = conn.execute("SELECT value FROM settings WHERE key = ?", (IDENTITY_KEY,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if row is None:
        return None
    try:
        value = json.loads(row[0])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def refusal(directory: Path, reason: str) -> DatabaseRefused:
    """The one line a refused database gets: what is wrong and how to restore."""
    return DatabaseRefused(
        f"{reason}: the venue will not use it. Restore the database from the continuous "
        f"backup with `cbt venue restore {directory}` ({RESTORE_DOC})"
    )


# Databases checked by this process, by file signature: the server checks before it starts
# and again when its store opens; the second check of an unchanged file is skipped.
_checked: dict[Path, tuple[int, ...]] = {}


def _signature(path: Path) -> tuple[int, ...]:
    """The main file's inode, size and time: opening the database creates its -wal/-shm, so
    they are left out (a check right after another of the same file is the case skipped)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


# Databases this process serves (path -> inode), checked when the store opened: the server's
# own later opens (the outbox worker's export every few seconds) do not check them again.
_serving: dict[Path, int] = {}


def mark_serving(db_path: Path) -> None:
    """This process has checked `db_path` and now serves it (server.venue.workspace)."""
    _serving[db_path] = db_path.stat().st_ino


def unmark_serving(db_path: Path) -> None:
    _serving.pop(db_path, None)


def _served_here(db_path: Path) -> bool:
    try:
        return _serving.get(db_path) == db_path.stat().st_ino
    except FileNotFoundError:
        return False


def check_database(
    directory: Path, db_path: Path, database_id: str | None, *, full: bool = False
) -> None:
    """Refuse (DatabaseRefused, one line) the venue database unless it is intact and its
    identity is `database_id` (the one venue.json records)."""
    if not full and _served_here(db_path):
        return
    signature = _signature(db_path)
    if not full and _checked.get(db_path) == signature:
        return
    try:
        check_sqlite_file(db_path, full=full)
    except DatabaseDamaged as exc:
        raise refusal(directory, str(exc)) from None
    found = read_identity(db_path)
    if database_id is not None:
        if found is None:
            raise refusal(
                directory,
                f"{db_path} carries no venue identity: it is not the database this venue "
                f"directory was created with (database {database_id[:12]})",
            )
        if found.get("database_id") != database_id:
            raise refusal(
                directory,
                f"{db_path} belongs to another venue directory (database "
                f"{str(found.get('database_id', ''))[:12]} of venue {found.get('venue_id')!r}, "
                f"created {found.get('created_at')}), not this one (database {database_id[:12]})",
            )
    elif found is not None:
        raise refusal(
            directory,
            f"{db_path} carries the identity of database {str(found.get('database_id'))[:12]} "
            f"(venue {found.get('venue_id')!r}) but venue.json records none",
        )
    _checked[db_path] = signature


def forget_checks() -> None:
    """Forget earlier checks (after a restore replaced the file)."""
    _checked.clear()


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` as indented JSON, atomically (temporary file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
