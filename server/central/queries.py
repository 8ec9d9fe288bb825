"""Every central query, written once: one step per store operation, named parameters.

Each function here returns a step (`server.central.statements.Step`): it yields the statements
of one operation and returns its result, without touching a connection. The SQLite store runs
a step on its writer thread, the PostgreSQL store on a pooled connection, each inside one
transaction when it writes. Every INSERT lists its columns. Row locks (`FOR UPDATE`) matter on
PostgreSQL, where several processes share the database; SQLite drops them (its writer holds the
whole database for a transaction).

The rules both back-ends share (retention, the chunk checks) live in `server.central.storage`,
the chains' formats (the package log's root, the audit chain) in `server.protocol`; this
module only says how they meet the tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from server.central.statements import (
    Step,
    execute,
    fetch_all,
    fetch_one,
    fetch_value,
)
from server.central.storage import (
    LoginState,
    OffsetConflict,
    PackageEntry,
    PackageReplayed,
    ReceiptSigner,
    StaffAccount,
    StorageError,
    StoredPackage,
    UnknownUpload,
    UploadQuota,
    UploadQuotaExceeded,
    UploadState,
    VenueRecord,
    check_chunk,
    check_deletable,
)
from server.protocol.audit_chain import new_event
from server.protocol.receipts import next_log_root
from server.staffauth import StaffError

Row = Sequence[Any]

VENUE_COLUMNS = "venue_id, name, signing_public, wrap_public, registered_at"
PACKAGE_COLUMNS = (
    "package_sha256, session_id, venue_id, export_seq, size, received_at, log_position, "
    "log_root, receipt, serious_violation, summary, deleted_at"
)
STAFF_COLUMNS = "staff_id, login, name, role, active, created_at"
AUDIT_COLUMNS = ("seq", "at", "actor", "action", "object", "details", "prev_hash", "hash",
                 "chain_format")  # fmt: skip


def _package(row: Row) -> StoredPackage:
    return StoredPackage(
        package_sha256=row[0],
        session_id=row[1],
        venue_id=row[2],
        export_seq=int(row[3]),
        size=int(row[4]),
        received_at=row[5],
        log_position=int(row[6]),
        log_root=row[7],
        receipt=json.loads(row[8]),
        serious_violation=bool(row[9]),
        summary=json.loads(row[10]),
        deleted_at=row[11],
    )


def _staff(row: Row) -> StaffAccount:
    return StaffAccount(int(row[0]), row[1], row[2], row[3], bool(row[4]), row[5])


# --- venue registry ---------------------------------------------------------------------------


def add_venue(venue: VenueRecord) -> Step[None]:
    yield execute(
        f"INSERT INTO venues ({VENUE_COLUMNS}) "  # noqa: S608 (constant columns)
        "VALUES (:venue_id, :name, :signing_public, :wrap_public, :registered_at) "
        "ON CONFLICT (venue_id) DO UPDATE SET name = excluded.name, "
        "signing_public = excluded.signing_public, wrap_public = excluded.wrap_public, "
        "registered_at = excluded.registered_at",
        venue_id=venue.venue_id, name=venue.name, signing_public=venue.signing_public,
        wrap_public=venue.wrap_public, registered_at=venue.registered_at,
    )  # fmt: skip


def get_venue(venue_id: str) -> Step[VenueRecord | None]:
    row = yield fetch_one(
        f"SELECT {VENUE_COLUMNS} FROM venues WHERE venue_id = :venue_id",  # noqa: S608 (constant columns)
        venue_id=venue_id,
    )
    return VenueRecord(*row) if row else None


def list_venues() -> Step[list[VenueRecord]]:
    rows = yield fetch_all(f"SELECT {VENUE_COLUMNS} FROM venues ORDER BY venue_id")  # noqa: S608 (constant columns)
    return [VenueRecord(*row) for row in rows]


# --- uploads ----------------------------------------------------------------------------------


def upload_state(upload_id: str) -> Step[UploadState]:
    """Where an upload stands. Each statement may see its own snapshot (PostgreSQL), and
    another process may accept the package between two of them (deleting the upload row in
    the transaction that adds the package): so the package is looked for again when the
    upload row has gone."""
    for look_again in (False, True):
        done = yield fetch_one(
            "SELECT venue_id, size, receipt FROM packages WHERE package_sha256 = :upload_id",
            upload_id=upload_id,
        )
        if done is not None:
            size = int(done[1])
            return UploadState(upload_id, done[0], size, size, json.loads(done[2]))
        if look_again:
            break
        row = yield fetch_one(
            "SELECT venue_id, size, received FROM uploads WHERE upload_id = :upload_id",
            upload_id=upload_id,
        )
        if row is not None:
            return UploadState(upload_id, row[0], int(row[1]), int(row[2]), None)
    raise UnknownUpload(f"no upload {upload_id}: create it first with POST /api/v1/uploads")


def create_upload(
    upload_id: str, venue_id: str, size: int, now: str, quota: UploadQuota | None = None
) -> Step[UploadState]:
    accepted = yield fetch_value(
        "SELECT 1 FROM packages WHERE package_sha256 = :upload_id", upload_id=upload_id
    )
    if not accepted:
        if quota is not None:
            yield from _check_quota(upload_id, venue_id, size, quota)
        yield execute(
            "INSERT INTO uploads (upload_id, venue_id, size, received, created_at, updated_at) "
            "VALUES (:upload_id, :venue_id, :size, 0, :now, :now) "
            "ON CONFLICT (upload_id) DO NOTHING",
            upload_id=upload_id, venue_id=venue_id, size=size, now=now,
        )  # fmt: skip
    return (yield from upload_state(upload_id))


def _check_quota(upload_id: str, venue_id: str, size: int, quota: UploadQuota) -> Step[None]:
    """Raise `UploadQuotaExceeded` if a new upload would take the venue past its quota. The
    venue's row lock orders two processes creating uploads for one venue (PostgreSQL)."""
    yield fetch_value("SELECT 1 FROM venues WHERE venue_id = :venue_id FOR UPDATE",
                      venue_id=venue_id)  # fmt: skip
    if (yield fetch_value("SELECT 1 FROM uploads WHERE upload_id = :upload_id",
                          upload_id=upload_id)):  # fmt: skip
        return  # it exists already: creating it again claims nothing new
    row = yield fetch_one(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM uploads WHERE venue_id = :venue_id",
        venue_id=venue_id,
    )
    count, held = int(row[0]), int(row[1])
    if count >= quota.max_open:
        raise UploadQuotaExceeded(
            f"venue {venue_id} has {count} unfinished uploads, as many as it may hold open "
            f"at once ({quota.max_open}): finish them first (unfinished uploads are dropped "
            "after a time without chunks)"
        )
    if held + size > quota.max_bytes:
        raise UploadQuotaExceeded(
            f"venue {venue_id}'s unfinished uploads announce {held} bytes; {size} more would "
            f"pass its quota of {quota.max_bytes} bytes: finish them first"
        )


def stale_uploads(before: str) -> Step[list[str]]:
    rows = yield fetch_all(
        "SELECT upload_id FROM uploads WHERE updated_at < :before ORDER BY updated_at",
        before=before,
    )
    return [row[0] for row in rows]


def move_offset(upload_id: str, offset: int, size: int, now: str, chunk: bytes | None) -> Step[int]:
    """Move the upload's offset from `offset` past a chunk of `size` bytes, and store the
    chunk's bytes as a row if given (PostgreSQL; SQLite has written them to the upload's file
    already). Only the UPDATE from the expected offset stores anything, so two processes can
    never both write at one offset."""
    moved = yield fetch_value(
        "UPDATE uploads SET received = received + :size, updated_at = :now "
        "WHERE upload_id = :upload_id AND received = :offset AND received + :size <= size "
        "AND NOT EXISTS (SELECT 1 FROM packages WHERE package_sha256 = :upload_id) "
        "RETURNING received",
        upload_id=upload_id, offset=offset, size=size, now=now,
    )  # fmt: skip
    if moved is None:
        check_chunk((yield from upload_state(upload_id)), offset, size)
        raise OffsetConflict(upload_id, offset, offset)  # it moved meanwhile: ask again
    if chunk is not None:
        yield execute(
            "INSERT INTO upload_chunks (upload_id, chunk_offset, data) "
            "VALUES (:upload_id, :chunk_offset, :data)",
            upload_id=upload_id, chunk_offset=offset, data=chunk,
        )  # fmt: skip
    return int(moved)


def discard_upload(upload_id: str) -> Step[bool]:
    """Drop an unaccepted upload; False if it was accepted meanwhile (its bytes are the
    package's now). The log head's lock orders this against an accept in another process."""
    yield fetch_one("SELECT position FROM log_head WHERE id = 1 FOR UPDATE")
    accepted = yield fetch_value(
        "SELECT 1 FROM packages WHERE package_sha256 = :upload_id", upload_id=upload_id
    )
    if accepted:
        return False
    yield execute("DELETE FROM upload_chunks WHERE upload_id = :upload_id", upload_id=upload_id)
    yield execute("DELETE FROM uploads WHERE upload_id = :upload_id", upload_id=upload_id)
    return True


def chunk_rows(upload_id: str) -> Step[list[bytes]]:
    """An upload's or a package's bytes kept as rows, in order."""
    rows = yield fetch_all(
        "SELECT data FROM upload_chunks WHERE upload_id = :upload_id ORDER BY chunk_offset",
        upload_id=upload_id,
    )
    return [row[0] for row in rows]


def record_package_file(upload_id: str, directory: str, now: str) -> Step[str]:
    """Say which folder holds the upload's file (PostgreSQL with package files), before its
    first byte is written; the folder already recorded wins. Returns it."""
    yield execute(
        "INSERT INTO package_files (upload_id, directory, created_at) "
        "VALUES (:upload_id, :directory, :now) ON CONFLICT (upload_id) DO NOTHING",
        upload_id=upload_id, directory=directory, now=now,
    )  # fmt: skip
    return str((yield from package_file(upload_id)))


def package_file(upload_id: str) -> Step[str | None]:
    """The folder holding the upload's (or package's) file, or None: its bytes are rows."""
    found = yield fetch_value(
        "SELECT directory FROM package_files WHERE upload_id = :upload_id", upload_id=upload_id
    )
    return None if found is None else str(found)


def forget_package_file(upload_id: str) -> Step[None]:
    yield execute("DELETE FROM package_files WHERE upload_id = :upload_id", upload_id=upload_id)


# --- the package log --------------------------------------------------------------------------


def accept_package(entry: PackageEntry, sign: ReceiptSigner, now: str) -> Step[dict[str, Any]]:
    head = yield fetch_one("SELECT position, root FROM log_head WHERE id = 1 FOR UPDATE")
    done = yield fetch_value(
        "SELECT receipt FROM packages WHERE package_sha256 = :sha", sha=entry.package_sha256
    )
    if done is not None:
        return dict(json.loads(done))
    newest = yield fetch_value(
        "SELECT MAX(export_seq) FROM packages WHERE session_id = :session_id "
        "AND venue_id = :venue_id",
        session_id=entry.session_id, venue_id=entry.venue_id,
    )  # fmt: skip
    if newest is not None and entry.export_seq <= newest:
        raise PackageReplayed(entry.session_id, entry.venue_id, entry.export_seq, int(newest))
    position, previous = int(head[0]) + 1, head[1]
    root = next_log_root(previous, position, entry.package_sha256, now)
    receipt = sign(entry, now, position, previous, root)
    yield execute(
        f"INSERT INTO packages ({PACKAGE_COLUMNS}) VALUES (:sha, :session_id, :venue_id, "  # noqa: S608 (constant columns)
        ":export_seq, :size, :now, :position, :root, :receipt, :serious, :summary, NULL)",
        sha=entry.package_sha256, session_id=entry.session_id, venue_id=entry.venue_id,
        export_seq=entry.export_seq, size=entry.size, now=now, position=position, root=root,
        receipt=json.dumps(receipt), serious=entry.serious_violation,
        summary=json.dumps(entry.summary),
    )  # fmt: skip
    yield execute(
        "UPDATE log_head SET position = :position, root = :root WHERE id = 1",
        position=position, root=root,
    )  # fmt: skip
    yield execute("DELETE FROM uploads WHERE upload_id = :sha", sha=entry.package_sha256)
    details = {
        "session_id": entry.session_id,
        "export_seq": entry.export_seq,
        "log_position": position,
        "log_root": root,
    }
    actor = f"venue:{entry.venue_id}"
    yield from append_audit(actor, "package.accepted", entry.package_sha256, details, now)
    return receipt


def get_package(package_sha256: str) -> Step[StoredPackage | None]:
    row = yield fetch_one(
        f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE package_sha256 = :sha",  # noqa: S608 (constant columns)
        sha=package_sha256,
    )
    return _package(row) if row else None


def held_size(package_sha256: str) -> Step[int]:
    """The size of a package whose bytes are held; `StorageError` if none are."""
    row = yield fetch_one(
        "SELECT deleted_at, size FROM packages WHERE package_sha256 = :sha", sha=package_sha256
    )
    if row is None or row[0] is not None:
        raise StorageError(
            f"package {package_sha256[:16]} is not held (never accepted, or deleted)"
        )
    return int(row[1])


def list_packages(session_id: str | None) -> Step[list[StoredPackage]]:
    rows = yield fetch_all(
        f"SELECT {PACKAGE_COLUMNS} FROM packages "  # noqa: S608 (constant columns)
        "WHERE CAST(:session_id AS TEXT) IS NULL OR session_id = :session_id ORDER BY log_position",
        session_id=session_id,
    )
    return [_package(row) for row in rows]


def delete_package(package_sha256: str, now: datetime) -> Step[None]:
    row = yield fetch_one(
        "SELECT p.serious_violation, r.results_at FROM packages p "
        "LEFT JOIN results r ON r.session_id = p.session_id "
        "WHERE p.package_sha256 = :sha FOR UPDATE OF p",
        sha=package_sha256,
    )
    if row is None:
        raise StorageError(f"no package {package_sha256[:16]} to delete")
    results_at = datetime.fromisoformat(row[1]) if row[1] else None
    check_deletable(package_sha256, results_at, bool(row[0]), now)
    yield execute(
        "UPDATE packages SET deleted_at = :now WHERE package_sha256 = :sha",
        now=now.isoformat(), sha=package_sha256,
    )  # fmt: skip
    yield execute("DELETE FROM upload_chunks WHERE upload_id = :sha", sha=package_sha256)


def set_results_published(session_id: str, results_at: str) -> Step[None]:
    yield execute(
        "INSERT INTO results (session_id, results_at) VALUES (:session_id, :results_at) "
        "ON CONFLICT (session_id) DO UPDATE SET results_at = excluded.results_at",
        session_id=session_id, results_at=results_at,
    )  # fmt: skip


def results_published(session_id: str) -> Step[str | None]:
    value = yield fetch_value(
        "SELECT results_at FROM results WHERE session_id = :session_id", session_id=session_id
    )
    return str(value) if value is not None else None


# --- releases ---------------------------------------------------------------------------------


def record_release(session_id: str, venue_id: str, requested_at: str, now: str) -> Step[None]:
    yield execute(
        "INSERT INTO releases (session_id, venue_id, requested_at, released_at) "
        "VALUES (:session_id, :venue_id, :requested_at, :now)",
        session_id=session_id, venue_id=venue_id, requested_at=requested_at, now=now,
    )  # fmt: skip
    details = {"session_id": session_id, "requested_at": requested_at}
    yield from append_audit(f"venue:{venue_id}", "release.served", session_id, details, now)


def release_counts() -> Step[dict[tuple[str, str], int]]:
    rows = yield fetch_all(
        "SELECT session_id, venue_id, COUNT(*) FROM releases GROUP BY session_id, venue_id"
    )
    return {(row[0], row[1]): int(row[2]) for row in rows}


# --- the audit chain --------------------------------------------------------------------------


def append_audit(
    actor: str, action: str, obj: str, details: dict[str, Any], now: str
) -> Step[None]:
    """Append one event inside the caller's transaction (the head row is the lock)."""
    head = yield fetch_one("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
    seq, prev = int(head[0]) + 1, head[1]
    event = new_event(seq, now, actor, action, obj, details, prev)  # the one audit-chain format
    yield execute(
        f"INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) "  # noqa: S608 (constant columns)
        "VALUES (:seq, :at, :actor, :action, :object, :details, :prev_hash, :hash,"
        " :chain_format)",
        seq=seq, at=now, actor=actor, action=action, object=obj, details=json.dumps(details),
        prev_hash=prev, hash=event.hash, chain_format=event.chain_format,
    )  # fmt: skip
    yield execute("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1",
                  seq=seq, hash=event.hash)  # fmt: skip


def audit_events() -> Step[list[dict[str, Any]]]:
    rows = yield fetch_all(
        f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_events ORDER BY seq"  # noqa: S608 (constant columns)
    )
    events = [dict(zip(AUDIT_COLUMNS, tuple(row), strict=True)) for row in rows]
    for event in events:
        event["seq"] = int(event["seq"])
        event["details"] = json.loads(event["details"])
    return events


# --- central staff and their logins -----------------------------------------------------------


def add_staff(
    login: str, name: str, role: str, password_hash: str, actor: str, now: str
) -> Step[StaffAccount]:
    staff_id = yield fetch_value(
        "INSERT INTO staff (login, name, role, password_hash, active, created_at) "
        "VALUES (:login, :name, :role, :password_hash, TRUE, :now) "
        "ON CONFLICT (login) DO NOTHING RETURNING staff_id",
        login=login, name=name, role=role, password_hash=password_hash, now=now,
    )  # fmt: skip
    if staff_id is None:
        raise StaffError(f"login {login!r} already exists: choose another login")
    yield from append_audit(actor, "staff.added", f"staff:{login}", {"role": role}, now)
    return StaffAccount(int(staff_id), login, name, role, True, now)


def disable_staff(login: str, reason: str, actor: str, now: str) -> Step[None]:
    found = yield fetch_one(
        "SELECT staff_id, active FROM staff WHERE login = :login FOR UPDATE", login=login
    )
    if found is None:
        raise StaffError(f"no staff account {login!r}: see `cbt central staff list`")
    if not found[1]:
        raise StaffError(f"the account {login!r} is already disabled")
    yield execute(
        "UPDATE staff SET active = FALSE, disabled_at = :now WHERE staff_id = :staff_id",
        now=now, staff_id=found[0],
    )  # fmt: skip
    yield execute(
        "UPDATE staff_sessions SET ended_at = :now "
        "WHERE staff_id = :staff_id AND ended_at IS NULL",
        now=now, staff_id=found[0],
    )  # fmt: skip
    yield from append_audit(actor, "staff.disabled", f"staff:{login}", {"reason": reason}, now)


def list_staff() -> Step[list[StaffAccount]]:
    rows = yield fetch_all(f"SELECT {STAFF_COLUMNS} FROM staff ORDER BY login")  # noqa: S608 (constant columns)
    return [_staff(row) for row in rows]


def login_state(login: str, remote: str, since: str, limit: int) -> Step[LoginState]:
    row = yield fetch_one(
        f"SELECT {STAFF_COLUMNS}, password_hash FROM staff "  # noqa: S608 (constant columns)
        "WHERE login = :login AND active",
        login=login,
    )
    by_login = yield fetch_all(
        "SELECT failed_at FROM staff_login_failures WHERE login = :login "
        "AND failed_at > :since ORDER BY failed_at DESC LIMIT :limit",
        login=login, since=since, limit=limit,
    )  # fmt: skip
    by_remote = yield fetch_all(
        "SELECT failed_at FROM staff_login_failures WHERE remote = :remote "
        "AND failed_at > :since ORDER BY failed_at DESC LIMIT :limit",
        remote=remote, since=since, limit=limit,
    )  # fmt: skip
    account = _staff(row) if row else None
    return LoginState(
        account,
        row[6] if row else None,
        [str(r[0]) for r in by_login],
        [str(r[0]) for r in by_remote],
    )


def record_login_failure(login: str, remote: str, now: str, forget_before: str) -> Step[None]:
    yield execute(
        "DELETE FROM staff_login_failures WHERE failed_at < :forget_before",
        forget_before=forget_before,
    )
    yield execute(
        "INSERT INTO staff_login_failures (login, remote, failed_at) "
        "VALUES (:login, :remote, :now)",
        login=login, remote=remote, now=now,
    )  # fmt: skip
    yield from append_audit(f"anonymous@{remote}", "staff.login_failed", f"staff:{login}", {}, now)


def open_staff_session(
    account: StaffAccount, token_hash: str, csrf_hash: str, remote: str, now: str,
    expires_at: str,
) -> Step[None]:  # fmt: skip
    yield execute(
        "INSERT INTO staff_sessions (token_hash, csrf_hash, staff_id, remote, created_at, "
        "expires_at) VALUES (:token_hash, :csrf_hash, :staff_id, :remote, :now, :expires_at)",
        token_hash=token_hash, csrf_hash=csrf_hash, staff_id=account.staff_id, remote=remote,
        now=now, expires_at=expires_at,
    )  # fmt: skip
    # Only this address's failures for this login: an attacker's from elsewhere stay counted.
    yield execute(
        "DELETE FROM staff_login_failures WHERE login = :login AND remote = :remote",
        login=account.login, remote=remote,
    )  # fmt: skip
    details = {"remote": remote, "role": account.role}
    yield from append_audit(account.login, "staff.login", f"staff:{account.login}", details, now)


def find_staff_session(token_hash: str, now: str) -> Step[tuple[StaffAccount, str] | None]:
    row = yield fetch_one(
        "SELECT s.staff_id, s.login, s.name, s.role, s.active, s.created_at, ss.csrf_hash "
        "FROM staff_sessions ss JOIN staff s ON s.staff_id = ss.staff_id "
        "WHERE ss.token_hash = :token_hash AND ss.ended_at IS NULL AND ss.expires_at > :now "
        "AND s.active",
        token_hash=token_hash, now=now,
    )  # fmt: skip
    return (_staff(row), str(row[6])) if row else None


def end_staff_session(token_hash: str, account: StaffAccount, now: str) -> Step[None]:
    yield execute(
        "UPDATE staff_sessions SET ended_at = :now "
        "WHERE token_hash = :token_hash AND ended_at IS NULL",
        now=now, token_hash=token_hash,
    )  # fmt: skip
    yield from append_audit(account.login, "staff.logout", f"staff:{account.login}", {}, now)
