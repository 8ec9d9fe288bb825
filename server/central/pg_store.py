"""The central store on PostgreSQL (asyncpg): several central processes, one database.

Same interface and rules as `server.central.sqlite_store`. What makes it safe with several
processes behind a load balancer: a chunk is stored only by the UPDATE that moves the upload's
offset from the expected value (so two processes cannot both write at one offset); accepting a
package locks the single `log_head` row, so log positions are gap-free and unique and the same
package accepted twice at once yields one entry and one receipt; schema creation holds an
advisory lock so processes starting together do not race.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from server.central.storage import (
    LOG_GENESIS,
    LoginState,
    OffsetConflict,
    PackageEntry,
    PackageReplayed,
    ReceiptSigner,
    StaffAccount,
    StorageError,
    StoredPackage,
    UnknownUpload,
    UploadState,
    VenueRecord,
    audit_event_hash,
    check_chunk,
    check_deletable,
    chunk_pieces,
    next_log_root,
)
from server.staffauth import StaffError

SCHEMA_LOCK = 7_260_601  # advisory lock key held while the schema is created

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS venues (
    venue_id TEXT PRIMARY KEY,          -- the venue's id as in the session file
    name TEXT NOT NULL,                 -- human name, for the status page
    signing_public TEXT NOT NULL,       -- base64 Ed25519 public key (packages, release requests)
    wrap_public TEXT NOT NULL,          -- base64 X25519 public key (releases are wrapped to it)
    registered_at TEXT NOT NULL         -- ISO-8601 UTC
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,         -- = the package's SHA-256, hex
    venue_id TEXT NOT NULL,
    size BIGINT NOT NULL,               -- total bytes announced
    received BIGINT NOT NULL,           -- bytes stored so far (the resume offset)
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- The bytes of every upload, in chunks; they stay as the accepted package's bytes (not
-- copied again) until the package is deleted after its retention date.
CREATE TABLE IF NOT EXISTS upload_chunks (
    upload_id TEXT NOT NULL,            -- = the package's SHA-256, hex
    chunk_offset BIGINT NOT NULL,       -- byte offset of this chunk in the package
    data BYTEA NOT NULL,
    PRIMARY KEY (upload_id, chunk_offset)
);
-- Chunks are ciphertext: TOAST's compression would burn CPU for nothing.
ALTER TABLE upload_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE IF NOT EXISTS packages (
    package_sha256 TEXT PRIMARY KEY,    -- hex SHA-256 of the package file
    session_id TEXT NOT NULL,
    venue_id TEXT NOT NULL,
    export_seq BIGINT NOT NULL,         -- the venue's export number (replays are refused)
    size BIGINT NOT NULL,               -- bytes
    received_at TEXT NOT NULL,
    log_position BIGINT NOT NULL UNIQUE,  -- 1-based position in the append-only log
    log_root TEXT NOT NULL,             -- the log's hash-chain root after this package
    receipt TEXT NOT NULL,              -- the signed receipt, JSON
    serious_violation BOOLEAN NOT NULL, -- true: 5-year retention
    summary TEXT NOT NULL,              -- counts for the status page, JSON
    deleted_at TEXT                     -- when the bytes were deleted after retention
);
CREATE TABLE IF NOT EXISTS log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),  -- one row: the lock that serialises appends
    position BIGINT NOT NULL,
    root TEXT NOT NULL
);
INSERT INTO log_head VALUES (1, 0, '"""
    + LOG_GENESIS
    + """') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS releases (
    release_id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL,
    venue_id TEXT NOT NULL,
    requested_at TEXT NOT NULL,         -- the venue's signed request time
    released_at TEXT NOT NULL           -- the centre's time when it answered
);
CREATE TABLE IF NOT EXISTS results (
    session_id TEXT PRIMARY KEY,
    results_at TEXT NOT NULL            -- when results were published: retention starts here
);
CREATE TABLE IF NOT EXISTS audit_events (
    seq BIGINT PRIMARY KEY,             -- 1, 2, 3, ... no gaps
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    details TEXT NOT NULL,              -- JSON; never secrets or answers
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),  -- one row: the lock that serialises audit appends
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head VALUES (1, 0, '"""
    + LOG_GENESIS
    + """') ON CONFLICT DO NOTHING;
-- Central staff: the people who use the console (status, reports). Added after the first
-- release: IF NOT EXISTS makes opening an older database add these tables (the migration).
CREATE TABLE IF NOT EXISTS staff (
    staff_id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,         -- letters, digits, '-', '_', '.'
    name TEXT NOT NULL,                 -- the person's name
    role TEXT NOT NULL,                 -- operator | auditor
    password_hash TEXT NOT NULL,        -- argon2id PHC string; never the password
    active BOOLEAN NOT NULL DEFAULT TRUE,  -- false once disabled
    created_at TEXT NOT NULL,           -- ISO-8601 UTC
    disabled_at TEXT                    -- ISO-8601 UTC, when disabled
);
CREATE TABLE IF NOT EXISTS staff_sessions (
    token_hash TEXT PRIMARY KEY,        -- SHA-256 of the session cookie's token; never the token
    csrf_hash TEXT NOT NULL,            -- SHA-256 of the CSRF token
    staff_id BIGINT NOT NULL REFERENCES staff (staff_id),
    remote TEXT NOT NULL,               -- the client address at login
    created_at TEXT NOT NULL,           -- ISO-8601 UTC
    expires_at TEXT NOT NULL,           -- ISO-8601 UTC, created_at + the session TTL
    ended_at TEXT                       -- ISO-8601 UTC, at logout or when the account is disabled
);
CREATE TABLE IF NOT EXISTS staff_login_failures (
    failure_id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL,                -- the login name tried (it may not exist)
    remote TEXT NOT NULL,               -- the client address
    failed_at TEXT NOT NULL             -- ISO-8601 UTC; rows older than the window are dropped
);
CREATE INDEX IF NOT EXISTS staff_login_failures_by_login ON staff_login_failures (login, failed_at);
CREATE INDEX IF NOT EXISTS staff_login_failures_by_remote
    ON staff_login_failures (remote, failed_at);
"""
)

STAFF_COLUMNS = "staff_id, login, name, role, active, created_at"

PACKAGE_COLUMNS = (
    "package_sha256, session_id, venue_id, export_seq, size, received_at, log_position, "
    "log_root, receipt, serious_violation, summary, deleted_at"
)


def _package(row: asyncpg.Record) -> StoredPackage:
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


async def _append_audit(
    conn: asyncpg.Connection, actor: str, action: str, obj: str, details: dict[str, Any], now: str
) -> None:
    """Append one audit event inside the caller's transaction (the head row is the lock)."""
    head = await conn.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
    seq, prev = int(head[0]) + 1, head[1]
    event = {
        "seq": seq,
        "at": now,
        "actor": actor,
        "action": action,
        "object": obj,
        "details": details,
    }
    digest = audit_event_hash(prev, event)
    await conn.execute(
        "INSERT INTO audit_events VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        seq, now, actor, action, obj, json.dumps(details), prev, digest,
    )  # fmt: skip
    await conn.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", seq, digest)


def _staff(row: asyncpg.Record) -> StaffAccount:
    return StaffAccount(int(row[0]), row[1], row[2], row[3], bool(row[4]), row[5])


class PgStorage:
    """`CentralStorage` on PostgreSQL; `dsn` is a postgresql:// URL."""

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "storage not opened"
        return self._pool

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StorageError(
                f"cannot connect to the central database: {exc}; "
                "check --database or CBT_CENTRAL_DATABASE"
            ) from exc
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await conn.execute(SCHEMA)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def add_venue(self, venue: VenueRecord) -> None:
        await self.pool.execute(
            "INSERT INTO venues VALUES ($1, $2, $3, $4, $5) ON CONFLICT (venue_id) DO UPDATE SET "
            "name = excluded.name, signing_public = excluded.signing_public, "
            "wrap_public = excluded.wrap_public, registered_at = excluded.registered_at",
            venue.venue_id, venue.name, venue.signing_public, venue.wrap_public,
            venue.registered_at,
        )  # fmt: skip

    async def get_venue(self, venue_id: str) -> VenueRecord | None:
        row = await self.pool.fetchrow("SELECT * FROM venues WHERE venue_id = $1", venue_id)
        return VenueRecord(*row) if row else None

    async def list_venues(self) -> list[VenueRecord]:
        rows = await self.pool.fetch("SELECT * FROM venues ORDER BY venue_id")
        return [VenueRecord(*row) for row in rows]

    @staticmethod
    async def _upload_state(conn: asyncpg.Connection, upload_id: str) -> UploadState:
        # Each statement sees its own snapshot, and another process may accept the package
        # between two of them (deleting the upload row in the same transaction that adds the
        # package): so the package is looked for again when the upload row has gone.
        for look_again in (False, True):
            done = await conn.fetchrow(
                "SELECT venue_id, size, receipt FROM packages WHERE package_sha256 = $1", upload_id
            )
            if done is not None:
                return UploadState(
                    upload_id, done[0], int(done[1]), int(done[1]), json.loads(done[2])
                )
            if look_again:
                break
            row = await conn.fetchrow(
                "SELECT venue_id, size, received FROM uploads WHERE upload_id = $1", upload_id
            )
            if row is not None:
                return UploadState(upload_id, row[0], int(row[1]), int(row[2]), None)
        raise UnknownUpload(f"no upload {upload_id}: create it first with POST /api/v1/uploads")

    async def create_upload(
        self, upload_id: str, venue_id: str, size: int, now: str
    ) -> UploadState:
        async with self.pool.acquire() as conn:
            if await conn.fetchval("SELECT 1 FROM packages WHERE package_sha256 = $1", upload_id):
                return await self._upload_state(conn, upload_id)
            await conn.execute(
                "INSERT INTO uploads VALUES ($1, $2, $3, 0, $4, $4) "
                "ON CONFLICT (upload_id) DO NOTHING",
                upload_id, venue_id, size, now,
            )  # fmt: skip
            return await self._upload_state(conn, upload_id)

    async def get_upload(self, upload_id: str) -> UploadState:
        async with self.pool.acquire() as conn:
            return await self._upload_state(conn, upload_id)

    async def append_chunk(
        self, upload_id: str, offset: int, data: bytes | Sequence[bytes], now: str
    ) -> int:
        data = chunk_pieces(data)
        chunk = data[0] if len(data) == 1 else b"".join(data)  # one copy: one bytea parameter
        async with self.pool.acquire() as conn, conn.transaction():
            moved = await conn.fetchval(
                "UPDATE uploads SET received = received + $3, updated_at = $4 "
                "WHERE upload_id = $1 AND received = $2 AND received + $3 <= size "
                "AND NOT EXISTS (SELECT 1 FROM packages WHERE package_sha256 = $1) "
                "RETURNING received",
                upload_id, offset, len(chunk), now,
            )  # fmt: skip
            if moved is None:
                check_chunk(await self._upload_state(conn, upload_id), offset, len(chunk))
                raise OffsetConflict(upload_id, offset, offset)  # it moved meanwhile: ask again
            await conn.execute(
                "INSERT INTO upload_chunks VALUES ($1, $2, $3)", upload_id, offset, chunk
            )
            return int(moved)

    async def discard_upload(self, upload_id: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.fetchrow("SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE")  # vs accept
            if await conn.fetchval("SELECT 1 FROM packages WHERE package_sha256 = $1", upload_id):
                return  # accepted meanwhile: its bytes are the package now
            await conn.execute("DELETE FROM upload_chunks WHERE upload_id = $1", upload_id)
            await conn.execute("DELETE FROM uploads WHERE upload_id = $1", upload_id)

    async def read_upload(self, upload_id: str) -> bytes:
        rows = await self.pool.fetch(
            "SELECT data FROM upload_chunks WHERE upload_id = $1 ORDER BY chunk_offset", upload_id
        )
        return b"".join(row[0] for row in rows)

    async def accept_package(
        self, entry: PackageEntry, sign: ReceiptSigner, now: str
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            head = await conn.fetchrow(
                "SELECT position, root FROM log_head WHERE id = 1 FOR UPDATE"
            )
            done = await conn.fetchval(
                "SELECT receipt FROM packages WHERE package_sha256 = $1", entry.package_sha256
            )
            if done is not None:
                return dict(json.loads(done))
            newest = await conn.fetchval(
                "SELECT MAX(export_seq) FROM packages WHERE session_id = $1 AND venue_id = $2",
                entry.session_id, entry.venue_id,
            )  # fmt: skip
            if newest is not None and entry.export_seq <= newest:
                raise PackageReplayed(
                    entry.session_id, entry.venue_id, entry.export_seq, int(newest)
                )
            position = int(head[0]) + 1
            root = next_log_root(head[1], position, entry.package_sha256, now)
            receipt = sign(entry, now, position, head[1], root)
            await conn.execute(
                "INSERT INTO packages "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)",
                entry.package_sha256, entry.session_id, entry.venue_id, entry.export_seq,
                entry.size,
                now, position, root, json.dumps(receipt), entry.serious_violation,
                json.dumps(entry.summary),
            )  # fmt: skip
            await conn.execute(
                "UPDATE log_head SET position = $1, root = $2 WHERE id = 1", position, root
            )
            await conn.execute("DELETE FROM uploads WHERE upload_id = $1", entry.package_sha256)
            details = {
                "session_id": entry.session_id,
                "export_seq": entry.export_seq,
                "log_position": position,
                "log_root": root,
            }
            actor = f"venue:{entry.venue_id}"
            await _append_audit(conn, actor, "package.accepted", entry.package_sha256, details, now)
            return receipt

    async def get_package(self, package_sha256: str) -> StoredPackage | None:
        row = await self.pool.fetchrow(
            f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE package_sha256 = $1",  # noqa: S608 (constant columns)
            package_sha256,
        )
        return _package(row) if row else None

    async def package_data(self, package_sha256: str) -> bytes:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT deleted_at FROM packages WHERE package_sha256 = $1", package_sha256
            )
            if row is None or row[0] is not None:
                raise StorageError(
                    f"package {package_sha256[:16]} is not held (never accepted, or deleted)"
                )
            chunks = await conn.fetch(
                "SELECT data FROM upload_chunks WHERE upload_id = $1 ORDER BY chunk_offset",
                package_sha256,
            )
            return b"".join(chunk[0] for chunk in chunks)

    async def list_packages(self, session_id: str | None = None) -> list[StoredPackage]:
        if session_id is None:
            rows = await self.pool.fetch(
                f"SELECT {PACKAGE_COLUMNS} FROM packages ORDER BY log_position"  # noqa: S608 (constant columns)
            )
        else:
            rows = await self.pool.fetch(
                f"SELECT {PACKAGE_COLUMNS} FROM packages "  # noqa: S608 (constant columns)
                "WHERE session_id = $1 ORDER BY log_position",
                session_id,
            )
        return [_package(row) for row in rows]

    async def record_release(
        self, session_id: str, venue_id: str, requested_at: str, now: str
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO releases (session_id, venue_id, requested_at, released_at) "
                "VALUES ($1, $2, $3, $4)",
                session_id, venue_id, requested_at, now,
            )  # fmt: skip
            details = {"session_id": session_id, "requested_at": requested_at}
            await _append_audit(
                conn, f"venue:{venue_id}", "release.served", session_id, details, now
            )

    async def release_counts(self) -> dict[tuple[str, str], int]:
        rows = await self.pool.fetch(
            "SELECT session_id, venue_id, COUNT(*) FROM releases GROUP BY session_id, venue_id"
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def set_results_published(self, session_id: str, results_at: str) -> None:
        await self.pool.execute(
            "INSERT INTO results VALUES ($1, $2) ON CONFLICT (session_id) DO UPDATE SET "
            "results_at = excluded.results_at",
            session_id, results_at,
        )  # fmt: skip

    async def results_published(self, session_id: str) -> str | None:
        value = await self.pool.fetchval(
            "SELECT results_at FROM results WHERE session_id = $1", session_id
        )
        return str(value) if value is not None else None

    async def delete_package(self, package_sha256: str, now: datetime) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT p.serious_violation, r.results_at FROM packages p "
                "LEFT JOIN results r ON r.session_id = p.session_id "
                "WHERE p.package_sha256 = $1 FOR UPDATE OF p",
                package_sha256,
            )
            if row is None:
                raise StorageError(f"no package {package_sha256[:16]} to delete")
            results_at = datetime.fromisoformat(row[1]) if row[1] else None
            check_deletable(package_sha256, results_at, bool(row[0]), now)
            await conn.execute(
                "UPDATE packages SET deleted_at = $1 WHERE package_sha256 = $2",
                now.isoformat(), package_sha256,
            )  # fmt: skip
            await conn.execute("DELETE FROM upload_chunks WHERE upload_id = $1", package_sha256)

    async def audit(
        self, actor: str, action: str, obj: str, details: dict[str, Any], now: str
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await _append_audit(conn, actor, action, obj, details, now)

    async def audit_events(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT seq, at, actor, action, object, details, prev_hash, hash "
            "FROM audit_events ORDER BY seq"
        )
        keys = ("seq", "at", "actor", "action", "object", "details", "prev_hash", "hash")
        events = [dict(zip(keys, tuple(row), strict=True)) for row in rows]
        for event in events:
            event["seq"] = int(event["seq"])
            event["details"] = json.loads(event["details"])
        return events

    # --- central staff -----------------------------------------------------------------------

    async def add_staff(
        self, login: str, name: str, role: str, password_hash: str, actor: str, now: str
    ) -> StaffAccount:
        async with self.pool.acquire() as conn, conn.transaction():
            staff_id = await conn.fetchval(
                "INSERT INTO staff (login, name, role, password_hash, active, created_at) "
                "VALUES ($1, $2, $3, $4, TRUE, $5) ON CONFLICT (login) DO NOTHING "
                "RETURNING staff_id",
                login, name, role, password_hash, now,
            )  # fmt: skip
            if staff_id is None:
                raise StaffError(f"login {login!r} already exists: choose another login")
            await _append_audit(conn, actor, "staff.added", f"staff:{login}", {"role": role}, now)
            return StaffAccount(int(staff_id), login, name, role, True, now)

    async def disable_staff(self, login: str, reason: str, actor: str, now: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchrow(
                "SELECT staff_id, active FROM staff WHERE login = $1 FOR UPDATE", login
            )
            if found is None:
                raise StaffError(f"no staff account {login!r}: see `cbt central staff list`")
            if not found[1]:
                raise StaffError(f"the account {login!r} is already disabled")
            await conn.execute(
                "UPDATE staff SET active = FALSE, disabled_at = $1 WHERE staff_id = $2",
                now, found[0],
            )  # fmt: skip
            await conn.execute(
                "UPDATE staff_sessions SET ended_at = $1 WHERE staff_id = $2 AND ended_at IS NULL",
                now, found[0],
            )  # fmt: skip
            details = {"reason": reason}
            await _append_audit(conn, actor, "staff.disabled", f"staff:{login}", details, now)

    async def list_staff(self) -> list[StaffAccount]:
        rows = await self.pool.fetch(
            f"SELECT {STAFF_COLUMNS} FROM staff ORDER BY login"  # noqa: S608 (constant columns)
        )
        return [_staff(row) for row in rows]

    async def login_state(self, login: str, remote: str, since: str, limit: int) -> LoginState:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {STAFF_COLUMNS}, password_hash FROM staff "  # noqa: S608 (constant columns)
                "WHERE login = $1 AND active",
                login,
            )
            failures = []
            for column, value in (("login", login), ("remote", remote)):
                rows = await conn.fetch(
                    f"SELECT failed_at FROM staff_login_failures WHERE {column} = $1 "  # noqa: S608 (column from the fixed tuple)
                    "AND failed_at > $2 ORDER BY failed_at DESC LIMIT $3",
                    value, since, limit,
                )  # fmt: skip
                failures.append([str(r[0]) for r in rows])
        account = _staff(row) if row else None
        return LoginState(account, row[6] if row else None, failures[0], failures[1])

    async def record_login_failure(
        self, login: str, remote: str, now: str, forget_before: str
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM staff_login_failures WHERE failed_at < $1", forget_before
            )
            await conn.execute(
                "INSERT INTO staff_login_failures (login, remote, failed_at) VALUES ($1, $2, $3)",
                login, remote, now,
            )  # fmt: skip
            actor = f"anonymous@{remote}"
            await _append_audit(conn, actor, "staff.login_failed", f"staff:{login}", {}, now)

    async def open_staff_session(
        self,
        account: StaffAccount,
        token_hash: str,
        csrf_hash: str,
        remote: str,
        now: str,
        expires_at: str,
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO staff_sessions (token_hash, csrf_hash, staff_id, remote, created_at,"
                " expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                token_hash, csrf_hash, account.staff_id, remote, now, expires_at,
            )  # fmt: skip
            await conn.execute("DELETE FROM staff_login_failures WHERE login = $1", account.login)
            details = {"remote": remote, "role": account.role}
            obj = f"staff:{account.login}"
            await _append_audit(conn, account.login, "staff.login", obj, details, now)

    async def find_staff_session(
        self, token_hash: str, now: str
    ) -> tuple[StaffAccount, str] | None:
        row = await self.pool.fetchrow(
            "SELECT s.staff_id, s.login, s.name, s.role, s.active, s.created_at, ss.csrf_hash "
            "FROM staff_sessions ss JOIN staff s ON s.staff_id = ss.staff_id "
            "WHERE ss.token_hash = $1 AND ss.ended_at IS NULL AND ss.expires_at > $2 "
            "AND s.active",
            token_hash, now,
        )  # fmt: skip
        return (_staff(row), str(row[6])) if row else None

    async def end_staff_session(self, token_hash: str, account: StaffAccount, now: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE staff_sessions SET ended_at = $1 WHERE token_hash = $2 "
                "AND ended_at IS NULL",
                now, token_hash,
            )  # fmt: skip
            obj = f"staff:{account.login}"
            await _append_audit(conn, account.login, "staff.logout", obj, {}, now)
