"""Restoring the venue database from its backups (issue 16, F5): `cbt venue restore DIR`.

What the backup directory (DIR/backup/, another disk in practice) holds:
- `base.db.enc`: a complete copy of the database (the roster, packages, seats, staff and
  every attempt so far), taken when the server starts (in the background) and again every five
  minutes if anything but saves, submissions and logins changed; written atomically and
  encrypted (server.venue.backup_crypto, F12);
- `continuous.db`: every row of the append-only tables (`journal`, `audit_events`,
  `submissions`) from the first, copied about once a second (server.venue.backup), the
  answers encrypted. The last row it holds of each table is the *backup position*.

The restore builds a new database from the base, appends every journal row, audit event and
submission of the continuous backup the base does not hold, recreates the attempts logged in
since the base (from their `attempt.login` audit events), brings each attempt's state
(last seq, status, submission) and its current answers (`responses`, replayed from the
journal) up to date, records a `database.restored` audit event, and checks the result
(`integrity_check`, the audit chain, every journal chain touched) before it replaces anything.
The refused database is kept, moved to DIR/damaged-<time>/. Nothing acknowledged before the
backup position is lost. What came after it is said, not guessed: when the refused database
can still be read, the saves, events and submissions it held past the position are counted
and named per ticket; when it cannot, the time of the last save the backup holds is the line
after which answers were lost. Changes after the base snapshot that live outside those three
tables (seat moves, time grants, pauses, absences, identity checks) are listed by the audit
events that record them, to be done again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from paperpack import crypto
from paperpack.canonical import canonical_json
from server.audit import record, verify_audit
from server.dbcheck import DatabaseDamaged, check_sqlite_file
from server.errors import CbtError
from server.private import private_file
from server.store import connect, migrate, transaction
from server.venue.backup import BACKUP_TABLES, CONTINUOUS_FILE
from server.venue.backup_crypto import (
    SEALED_COLUMNS,
    BackupCryptoError,
    is_sealed_file,
    open_file,
    row_opener,
)
from server.venue.base_snapshot import BASE_FILE, LEGACY_BASE_FILE, REBUILT_ACTIONS, fsync_dir
from server.venue.integrity import (
    DatabaseRefused,
    check_database,
    forget_checks,
    read_identity,
)
from server.venue.journal import verify_chain
from server.venue.schema import migrations

log = logging.getLogger(__name__)


class RestoreError(CbtError):
    """The database cannot be restored from these backups; the message says why."""


# --- the restore ------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    """What `restore_database` did, and what it could not bring back."""

    database: Path
    base: Path
    kept_at: Path | None
    positions: dict[str, int]  # the continuous backup's last row of each table
    added: dict[str, int]  # rows appended to the base from the continuous backup
    attempts_recreated: int
    last_backed_up_save: str | None  # saved_at of the last journal row in the backup
    lost: list[str] = field(default_factory=list)  # one line each
    not_restored: dict[str, int] = field(default_factory=dict)  # audit action -> count


def restore_database(
    directory: Path,
    db_path: Path,
    database_id: str | None,
    backup_dir: Path,
    *,
    venue_id: str,
    private_key: crypto.X25519PrivateKey,
    base: Path | None = None,
    force: bool = False,
    now: datetime | None = None,
    actor: str = "system",
) -> RestoreReport:
    """Rebuild `db_path` from `base` (default backup_dir/base.db.enc) and the continuous
    backup, opening what is encrypted with the venue's `private_key`."""
    now = now or datetime.now(UTC)
    if base is None:
        base = backup_dir / BASE_FILE
        if not base.exists() and (backup_dir / LEGACY_BASE_FILE).exists():
            base = backup_dir / LEGACY_BASE_FILE
    continuous = backup_dir / CONTINUOUS_FILE
    if not force:
        try:
            check_database(directory, db_path, database_id)
        except DatabaseRefused:
            pass
        else:
            raise RestoreError(
                f"{db_path} is intact and this venue's: there is nothing to restore "
                "(stop the server and pass --force to replace it from the backup anyway)"
            )
    if not base.is_file():
        raise RestoreError(f"the base snapshot {base} is missing: pass --base FILE")
    plain_base = db_path.with_name(db_path.name + ".base-restore")
    try:
        if is_sealed_file(base):
            try:
                open_file(base, plain_base, private_key)
            except BackupCryptoError as exc:
                raise RestoreError(f"the base snapshot cannot be used: {exc}") from None
            base_db = plain_base
        else:
            base_db = base
        return _restore(
            directory, db_path, database_id, base, base_db, continuous,
            venue_id=venue_id, private_key=private_key, now=now, actor=actor,
        )  # fmt: skip
    finally:
        plain_base.unlink(missing_ok=True)


def _restore(
    directory: Path,
    db_path: Path,
    database_id: str | None,
    base: Path,
    base_db: Path,
    continuous: Path,
    *,
    venue_id: str,
    private_key: crypto.X25519PrivateKey,
    now: datetime,
    actor: str,
) -> RestoreReport:
    for what, path in (("base snapshot", base_db), ("continuous backup", continuous)):
        try:
            check_sqlite_file(path, full=True)
        except DatabaseDamaged as exc:
            raise RestoreError(f"the {what} cannot be used: {exc}") from None
    found = read_identity(base_db)
    if database_id is not None and (found is None or found.get("database_id") != database_id):
        raise RestoreError(
            f"{base} is not a copy of this venue's database (its identity is "
            f"{(found or {}).get('database_id', 'none')!s:.12}, this venue's {database_id:.12})"
        )
    work = db_path.with_name(db_path.name + ".restoring")
    for stale in _files(work):
        stale.unlink(missing_ok=True)
    with (
        closing(sqlite3.connect(f"file:{base_db}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(private_file(work))) as dst,
    ):
        src.backup(dst)
    db = connect(work)
    try:
        migrate(db, migrations)
        with _reader(continuous) as bk:
            try:
                opener = row_opener(bk, venue_id, private_key)
            except BackupCryptoError as exc:
                raise RestoreError(f"the continuous backup cannot be used: {exc}") from None
        report = _rebuild(db, continuous, base, db_path, opener)
        report.not_restored = _not_restored(db, base_db)
        with transaction(db):
            record(
                db,
                actor,
                "database.restored",
                "venue:database",
                {
                    "positions": report.positions,
                    "added": report.added,
                    "attempts_recreated": report.attempts_recreated,
                    "last_backed_up_save": report.last_backed_up_save,
                },
                now=now,
            )
        _verify(db)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    report.lost = _lost(db_path, report)
    report.kept_at = _keep_aside(db_path, now)
    os.replace(work, db_path)
    for leftover in _files(work)[1:]:
        leftover.unlink(missing_ok=True)
    fsync_dir(db_path.parent)
    forget_checks()
    check_database(directory, db_path, database_id, full=True)
    return report


def _files(db_path: Path) -> list[Path]:
    return [db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm"))]


@contextmanager
def _reader(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def _max_rowid(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])  # noqa: S608 - fixed names


def _columns(conn: Any, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _rebuild(
    db: Database,
    continuous: Path,
    base: Path,
    db_path: Path,
    opener: Callable[[str, str, int, Any], Any],
) -> RestoreReport:
    conn = db.conn
    have = {t: _max_rowid(conn, t) for t in BACKUP_TABLES}
    added: dict[str, int] = {}
    positions: dict[str, int] = {}
    with _reader(continuous) as bk, transaction(db):
        for table in BACKUP_TABLES:
            positions[table] = int(
                bk.execute(f"SELECT coalesce(max(src_rowid), 0) FROM {table}").fetchone()[0]  # noqa: S608
            )
        recreated = _recreate_attempts(conn, bk)
        touched: set[str] = set()
        # audit first, then submissions and journal (both need their attempt)
        for table in ("audit_events", "submissions", "journal"):
            columns = [c for c in _columns(bk, table) if c != "src_rowid"]
            columns = [c for c in columns if c in _columns(conn, table)]
            rows = bk.execute(
                f"SELECT src_rowid, {', '.join(columns)} FROM {table}"  # noqa: S608 - fixed names
                " WHERE src_rowid > ? ORDER BY src_rowid",
                (have[table],),
            ).fetchall()
            rows = _opened(table, columns, rows, opener)  # the answers decrypted (F12)
            marks = ", ".join("?" * (len(columns) + 1))
            before = conn.total_changes
            conn.executemany(
                f"INSERT OR IGNORE INTO {table} (rowid, {', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                rows,
            )
            added[table] = conn.total_changes - before
            if table != "audit_events":
                at = columns.index("attempt_id") + 1
                touched.update(str(r[at]) for r in rows)
        for attempt_id in sorted(touched):
            _bring_up_to_date(conn, attempt_id)
        last = bk.execute("SELECT max(saved_at) FROM journal").fetchone()[0]
    return RestoreReport(
        database=db_path,
        base=base,
        kept_at=None,
        positions=positions,
        added=added,
        attempts_recreated=recreated,
        last_backed_up_save=last,
    )


def _opened(
    table: str,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    opener: Callable[[str, str, int, Any], Any],
) -> list[tuple[Any, ...]]:
    at = [(columns.index(c) + 1, c) for c in SEALED_COLUMNS.get(table, ()) if c in columns]
    if not at:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i, column in at:
            values[i] = opener(table, column, int(row[0]), values[i])
        out.append(tuple(values))
    return out


def _recreate_attempts(conn: sqlite3.Connection, bk: sqlite3.Connection) -> int:
    """Attempts logged in after the base snapshot, from their `attempt.login` events."""
    known = {r[0] for r in conn.execute("SELECT attempt_id FROM attempts")}
    count = 0
    for at, obj, details in bk.execute(
        "SELECT at, object, details FROM audit_events WHERE action = 'attempt.login'"
        " ORDER BY src_rowid"
    ):
        info = json.loads(details)
        attempt_id = str(info.get("attempt_id", ""))
        parts = dict(p.split(":", 1) for p in obj.split("/") if ":" in p)
        if not attempt_id or attempt_id in known or "session" not in parts:
            continue
        conn.execute(
            "INSERT INTO attempts (attempt_id, session_id, ticket, token_hash, client, status,"
            " logged_in_at, last_seen_at) VALUES (?, ?, ?, NULL, ?, 'logged_in', ?, ?)",
            (attempt_id, parts["session"], parts.get("ticket", ""), info.get("client", ""), at, at),
        )
        known.add(attempt_id)
        count += 1
    return count


def _bring_up_to_date(conn: sqlite3.Connection, attempt_id: str) -> None:
    """The attempt's last seq, start, status and current answers, from its journal and
    submission as restored."""
    last_seq, first_at, last_at = conn.execute(
        "SELECT max(seq), min(saved_at), max(saved_at) FROM journal WHERE attempt_id = ?",
        (attempt_id,),
    ).fetchone()
    if last_seq is not None:
        conn.execute(
            "UPDATE attempts SET last_seq = MAX(last_seq, ?), started_at = COALESCE(started_at, ?),"
            " last_seen_at = MAX(COALESCE(last_seen_at, ''), ?),"
            " status = CASE WHEN status = 'logged_in' THEN 'answering' ELSE status END"
            " WHERE attempt_id = ?",
            (last_seq, first_at, last_at, attempt_id),
        )
    submitted = conn.execute(
        "SELECT submitted_at, how FROM submissions WHERE attempt_id = ?", (attempt_id,)
    ).fetchone()
    if submitted is not None:
        conn.execute(
            "UPDATE attempts SET status = ?, submitted_at = ? WHERE attempt_id = ?",
            ("submitted" if submitted[1] == "candidate" else "closed", submitted[0], attempt_id),
        )
    answers: dict[str, tuple[str, int, str]] = {}
    for seq, saved_at, body in conn.execute(
        "SELECT seq, saved_at, responses FROM journal WHERE attempt_id = ? ORDER BY seq",
        (attempt_id,),
    ):
        for item_id, answer in json.loads(body).items():
            answers[item_id] = (canonical_json(answer).decode(), seq, saved_at)
    conn.execute("DELETE FROM responses WHERE attempt_id = ?", (attempt_id,))
    conn.executemany(
        "INSERT INTO responses (attempt_id, item_id, answer, seq, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(attempt_id, item, *value) for item, value in sorted(answers.items())],
    )


def _not_restored(db: Database, base_db: Path) -> dict[str, int]:
    """Audit actions after the base snapshot whose effect lives outside the restored tables."""
    with _reader(base_db) as base:
        base_events = _max_rowid(base, "audit_events")
    marks = ", ".join("?" * len(REBUILT_ACTIONS))
    rows = db.execute(
        f"SELECT action FROM audit_events WHERE event_id > ? AND action NOT IN ({marks})",  # noqa: S608
        (base_events, *REBUILT_ACTIONS),
    )
    return dict(sorted(Counter(r[0] for r in rows).items()))


def _verify(db: Database) -> None:
    check = db.execute("PRAGMA integrity_check").fetchone()[0]
    if check != "ok":
        raise RestoreError(f"the restored database fails integrity_check: {check}")
    verify_audit(db)
    for (attempt_id,) in db.execute("SELECT DISTINCT attempt_id FROM journal").fetchall():
        verify_chain(db, attempt_id)


def _lost(db_path: Path, report: RestoreReport) -> list[str]:
    """What the refused database held past the backup position, if it can still be read."""
    if not db_path.exists() or db_path.stat().st_size == 0:
        return _unreadable(report, "it is missing or empty")
    try:
        with _reader(db_path) as old:
            beyond: dict[str, int] = {}
            for table in BACKUP_TABLES:
                beyond[table] = int(
                    old.execute(
                        f"SELECT count(*) FROM {table} WHERE rowid > ?",  # noqa: S608
                        (report.positions[table],),
                    ).fetchone()[0]
                )
            per_ticket = old.execute(
                "SELECT a.ticket, count(*), min(j.seq), max(j.seq) FROM journal j"
                " JOIN attempts a ON a.attempt_id = j.attempt_id WHERE j.rowid > ?"
                " GROUP BY a.ticket ORDER BY a.ticket",
                (report.positions["journal"],),
            ).fetchall()
    except sqlite3.Error as exc:
        return _unreadable(report, " ".join(str(exc).split()))
    if not any(beyond.values()):
        return ["the refused database holds nothing past the backup position: nothing was lost"]
    lines = [
        f"the refused database held {beyond['journal']} save(s), {beyond['submissions']} "
        f"submission(s) and {beyond['audit_events']} audit event(s) past the backup position: "
        "they are lost"
    ]
    lines += [
        f"ticket {ticket}: {n} save(s) lost (seq {lo}-{hi}); the candidate's page re-sends "
        "what it still shows"
        for ticket, n, lo, hi in per_ticket
    ]
    return lines


def _unreadable(report: RestoreReport, why: str) -> list[str]:
    when = report.last_backed_up_save or "the start (the backup holds no save)"
    return [
        f"the refused database cannot be read ({why}): saves acknowledged after {when} "
        "(the last save in the backup) are lost; the candidates' pages re-send what they "
        "still show"
    ]


def _keep_aside(db_path: Path, now: datetime) -> Path | None:
    """Move the refused database (and its -wal/-shm) to DIR/damaged-<time>/."""
    present = [p for p in _files(db_path) if p.exists()]
    if not present:
        return None
    folder = db_path.parent / ("damaged-" + now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    folder.mkdir(mode=0o700, exist_ok=True)
    for p in present:
        shutil.move(str(p), folder / p.name)
    return folder
