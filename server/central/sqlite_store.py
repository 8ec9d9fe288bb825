"""The central store on SQLite: the default back-end, a file and a folder, nothing to set up.

All statements run on one dedicated thread with one connection (WAL, synchronous=FULL), so
every write is serialised and each method is one `BEGIN IMMEDIATE` transaction. Suits one
central process; for several processes behind a load balancer use `server.central.pg_store`.

The packages' bytes live beside the database, one file per upload in `<database>-packages/`
named by the package's SHA-256: a chunk is written there and fdatasync'd (on a worker thread,
so several uploads' writes and syncs overlap) before the transaction that moves the upload's
offset commits. A chunk therefore counts only once it is on disk, and a cut between the two
leaves bytes past the offset that the next chunk overwrites. Stored in the database instead,
every byte went through the single writer thread twice (WAL, then checkpoint). Chunks of one
upload are written one at a time (a lock per upload), so a retried chunk cannot race the
original. Databases written before this keep their accepted packages' bytes in
`upload_chunks`, which is still read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from server.central.storage import (
    LOG_GENESIS,
    LoginState,
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
    chunk_size,
    next_log_root,
)
from server.staffauth import StaffError

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS venues (
    venue_id TEXT PRIMARY KEY,          -- the venue's id as in the session file
    name TEXT NOT NULL,                 -- human name, for the status page
    signing_public TEXT NOT NULL,       -- base64 Ed25519 public key (packages, release requests)
    wrap_public TEXT NOT NULL,          -- base64 X25519 public key (releases are wrapped to it)
    registered_at TEXT NOT NULL         -- ISO-8601 UTC
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,         -- = the package's SHA-256, hex
    venue_id TEXT NOT NULL,             -- who said it is sending it
    size INTEGER NOT NULL,              -- total bytes announced
    received INTEGER NOT NULL,          -- bytes stored so far (the resume offset)
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Only in databases written before the packages' bytes moved to files beside the database
-- (`<database>-packages/`): their accepted packages' bytes, in chunks, until deleted after
-- the retention date. Nothing new is written here.
CREATE TABLE IF NOT EXISTS upload_chunks (
    upload_id TEXT NOT NULL,            -- = the package's SHA-256, hex
    chunk_offset INTEGER NOT NULL,      -- byte offset of this chunk in the package
    data BLOB NOT NULL,
    PRIMARY KEY (upload_id, chunk_offset)
);
CREATE TABLE IF NOT EXISTS packages (
    package_sha256 TEXT PRIMARY KEY,    -- hex SHA-256 of the package file
    session_id TEXT NOT NULL,
    venue_id TEXT NOT NULL,
    export_seq INTEGER NOT NULL,        -- the venue's export number (replays are refused)
    size INTEGER NOT NULL,              -- bytes
    received_at TEXT NOT NULL,
    log_position INTEGER NOT NULL UNIQUE,  -- 1-based position in the append-only log
    log_root TEXT NOT NULL,             -- the log's hash-chain root after this package
    receipt TEXT NOT NULL,              -- the signed receipt, JSON
    serious_violation INTEGER NOT NULL, -- 1: 5-year retention
    summary TEXT NOT NULL,              -- counts for the status page, JSON
    deleted_at TEXT                     -- when the bytes were deleted after retention
);
CREATE TABLE IF NOT EXISTS releases (
    release_id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    seq INTEGER PRIMARY KEY,            -- 1, 2, 3, ... no gaps
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    details TEXT NOT NULL,              -- JSON; never secrets or answers
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- Central staff: the people who use the console (status, reports). Added after the first
-- release: IF NOT EXISTS makes opening an older database add these tables (the migration).
CREATE TABLE IF NOT EXISTS staff (
    staff_id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL UNIQUE,         -- letters, digits, '-', '_', '.'
    name TEXT NOT NULL,                 -- the person's name
    role TEXT NOT NULL,                 -- operator | auditor
    password_hash TEXT NOT NULL,        -- argon2id PHC string; never the password
    active INTEGER NOT NULL DEFAULT 1,  -- 0 once disabled
    created_at TEXT NOT NULL,           -- ISO-8601 UTC
    disabled_at TEXT                    -- ISO-8601 UTC, when disabled
);
CREATE TABLE IF NOT EXISTS staff_sessions (
    token_hash TEXT PRIMARY KEY,        -- SHA-256 of the session cookie's token; never the token
    csrf_hash TEXT NOT NULL,            -- SHA-256 of the CSRF token
    staff_id INTEGER NOT NULL REFERENCES staff (staff_id),
    remote TEXT NOT NULL,               -- the client address at login
    created_at TEXT NOT NULL,           -- ISO-8601 UTC
    expires_at TEXT NOT NULL,           -- ISO-8601 UTC, created_at + the session TTL
    ended_at TEXT                       -- ISO-8601 UTC, at logout or when the account is disabled
);
CREATE TABLE IF NOT EXISTS staff_login_failures (
    failure_id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL,                -- the login name tried (it may not exist)
    remote TEXT NOT NULL,               -- the client address
    failed_at TEXT NOT NULL             -- ISO-8601 UTC; rows older than the window are dropped
);
CREATE INDEX IF NOT EXISTS staff_login_failures_by_login ON staff_login_failures (login, failed_at);
CREATE INDEX IF NOT EXISTS staff_login_failures_by_remote
    ON staff_login_failures (remote, failed_at);
"""

STAFF_COLUMNS = "staff_id, login, name, role, active, created_at"

PACKAGE_COLUMNS = (
    "package_sha256, session_id, venue_id, export_seq, size, received_at, log_position, "
    "log_root, receipt, serious_violation, summary, deleted_at"
)


def _package(row: sqlite3.Row | tuple[Any, ...]) -> StoredPackage:
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


def _append_audit(
    db: sqlite3.Connection, actor: str, action: str, obj: str, details: dict[str, Any], now: str
) -> None:
    """Append one audit event inside the caller's transaction."""
    head = db.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (int(head[0]) + 1, head[1]) if head else (1, LOG_GENESIS)
    event = {
        "seq": seq,
        "at": now,
        "actor": actor,
        "action": action,
        "object": obj,
        "details": details,
    }
    db.execute(
        "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, now, actor, action, obj, json.dumps(details), prev, audit_event_hash(prev, event)),
    )


def _sync_dir(path: Path) -> None:
    """fsync a directory, so the names created in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _staff(row: sqlite3.Row | tuple[Any, ...]) -> StaffAccount:
    return StaffAccount(int(row[0]), row[1], row[2], row[3], bool(row[4]), row[5])


class SqliteStorage:
    """`CentralStorage` on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.packages_dir = self.path.with_name(self.path.name + "-packages")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="central-sqlite")
        # Package files are written and synced here: enough threads that every upload of a
        # busy moment has its fdatasync in flight at once (the disk merges them), apart from
        # the default executor, where the package hashes run.
        self._files = ThreadPoolExecutor(max_workers=16, thread_name_prefix="central-files")
        self._db: sqlite3.Connection | None = None
        self._upload_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def _package_file(self, upload_id: str) -> Path:
        return self.packages_dir / upload_id  # upload ids are 64 hex characters: a safe name

    @contextlib.asynccontextmanager
    async def _upload_lock(self, upload_id: str) -> AsyncIterator[None]:
        """One writer per upload's file at a time (in this process); the entry goes with the
        last user, so the table holds only uploads being written now."""
        lock, users = self._upload_locks.setdefault(upload_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._upload_locks[upload_id]

    def _write_chunk_file(self, upload_id: str, offset: int, data: Sequence[bytes]) -> None:
        """Write the chunk at `offset`, cut the file there and fdatasync it (a worker thread)."""
        path = self._package_file(upload_id)
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            position = offset
            for piece in data:
                view = memoryview(piece)
                while view:
                    written = os.pwrite(fd, view, position)
                    position += written
                    view = view[written:]
            os.ftruncate(fd, position)  # bytes of an earlier, cut attempt past here are void
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if created:
            _sync_dir(self.packages_dir)  # the new name is durable too

    def _read_file(self, upload_id: str, size: int) -> bytes | None:
        """The first `size` bytes of the upload's file; None if there is no file."""
        try:
            with open(self._package_file(upload_id), "rb") as file:
                data = file.read(size)
        except FileNotFoundError:
            return None
        if len(data) != size:
            raise StorageError(
                f"package {upload_id[:16]} holds {len(data)} of its {size} bytes on disk: "
                f"the file in {self.packages_dir} was cut short; restore it from a backup"
            )
        return data

    def _remove_file(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._package_file(upload_id).unlink()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None, "storage not opened"
            return fn(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _in_files(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._files, fn, *args)

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, sync: bool = True) -> T:
        """Run `fn` in one transaction. `sync=False` commits without waiting for the disk
        (synchronous=NORMAL): only for steps whose loss in a crash is harmless because the
        client repeats them (creating an upload, moving its offset after the chunk's bytes
        are already fdatasync'd); the next synchronous commit, at the latest the accepting
        one, makes them durable too, since the WAL is synced in order."""

        def tx(db: sqlite3.Connection) -> T:
            if not sync:
                db.execute("PRAGMA synchronous=NORMAL")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                if not sync:
                    db.execute("PRAGMA synchronous=FULL")
            return result

        return await self._run(tx)

    async def open(self) -> None:
        def connect() -> None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA page_size=65536")  # large BLOB chunks: fewer overflow pages
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(SCHEMA)
            # An upload begun before the bytes moved to files has its chunks in rows: start
            # it again from 0 (the venue asks HEAD for the offset and resends; it keeps its
            # copy until it holds a receipt). Accepted packages' rows stay and are read.
            db.execute(
                "UPDATE uploads SET received = 0 WHERE upload_id IN "
                "(SELECT upload_id FROM upload_chunks)"
            )
            db.execute(
                "DELETE FROM upload_chunks WHERE upload_id IN (SELECT upload_id FROM uploads)"
            )
            self.packages_dir.mkdir(mode=0o700, exist_ok=True)
            _sync_dir(self.packages_dir.parent)
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)
        self._files.shutdown(wait=True)

    async def add_venue(self, venue: VenueRecord) -> None:
        await self._write(
            lambda db: db.execute(
                "INSERT INTO venues VALUES (?, ?, ?, ?, ?) ON CONFLICT(venue_id) DO UPDATE SET "
                "name=excluded.name, signing_public=excluded.signing_public, "
                "wrap_public=excluded.wrap_public, registered_at=excluded.registered_at",
                (
                    venue.venue_id,
                    venue.name,
                    venue.signing_public,
                    venue.wrap_public,
                    venue.registered_at,
                ),
            )
        )

    async def get_venue(self, venue_id: str) -> VenueRecord | None:
        row = await self._run(
            lambda db: db.execute("SELECT * FROM venues WHERE venue_id = ?", (venue_id,)).fetchone()
        )
        return VenueRecord(*row) if row else None

    async def list_venues(self) -> list[VenueRecord]:
        rows = await self._run(
            lambda db: db.execute("SELECT * FROM venues ORDER BY venue_id").fetchall()
        )
        return [VenueRecord(*row) for row in rows]

    @staticmethod
    def _upload_state(db: sqlite3.Connection, upload_id: str) -> UploadState:
        row = db.execute(
            "SELECT venue_id, size, received FROM uploads WHERE upload_id = ?", (upload_id,)
        ).fetchone()
        done = db.execute(
            "SELECT venue_id, size, receipt FROM packages WHERE package_sha256 = ?", (upload_id,)
        ).fetchone()
        if done is not None:
            return UploadState(upload_id, done[0], int(done[1]), int(done[1]), json.loads(done[2]))
        if row is None:
            raise UnknownUpload(f"no upload {upload_id}: create it first with POST /api/v1/uploads")
        return UploadState(upload_id, row[0], int(row[1]), int(row[2]), None)

    async def create_upload(
        self, upload_id: str, venue_id: str, size: int, now: str
    ) -> UploadState:
        def create(db: sqlite3.Connection) -> UploadState:
            if db.execute(
                "SELECT 1 FROM packages WHERE package_sha256 = ?", (upload_id,)
            ).fetchone():
                return self._upload_state(db, upload_id)
            db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT(upload_id) DO NOTHING",
                (upload_id, venue_id, size, now, now),
            )
            return self._upload_state(db, upload_id)

        return await self._write(create, sync=False)  # lost in a crash: the venue creates again

    async def get_upload(self, upload_id: str) -> UploadState:
        return await self._run(lambda db: self._upload_state(db, upload_id))

    async def append_chunk(
        self, upload_id: str, offset: int, data: bytes | Sequence[bytes], now: str
    ) -> int:
        data = chunk_pieces(data)
        size = chunk_size(data)

        def move(db: sqlite3.Connection) -> int:
            check_chunk(self._upload_state(db, upload_id), offset, size)
            db.execute(
                "UPDATE uploads SET received = ?, updated_at = ? WHERE upload_id = ?",
                (offset + size, now, upload_id),
            )
            return offset + size

        async with self._upload_lock(upload_id):
            check_chunk(await self.get_upload(upload_id), offset, size)  # before any byte
            await self._in_files(self._write_chunk_file, upload_id, offset, data)
            # Lost in a crash, the venue resends the chunk (HEAD gives the older offset).
            return await self._write(move, sync=False)

    async def discard_upload(self, upload_id: str) -> None:
        def discard(db: sqlite3.Connection) -> bool:
            if db.execute(
                "SELECT 1 FROM packages WHERE package_sha256 = ?", (upload_id,)
            ).fetchone():
                return False  # accepted meanwhile: its bytes are the package now
            db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
            return True

        async with self._upload_lock(upload_id):
            if await self._write(discard):
                await self._in_files(self._remove_file, upload_id)

    async def read_upload(self, upload_id: str) -> bytes:
        state = await self.get_upload(upload_id)
        data = await self._in_files(self._read_file, upload_id, state.offset)
        if data is None:
            if state.offset:
                raise StorageError(f"the bytes of upload {upload_id[:16]} are missing")
            return b""
        return data

    async def accept_package(
        self, entry: PackageEntry, sign: ReceiptSigner, now: str
    ) -> dict[str, Any]:
        def accept(db: sqlite3.Connection) -> dict[str, Any]:
            done = db.execute(
                "SELECT receipt FROM packages WHERE package_sha256 = ?", (entry.package_sha256,)
            ).fetchone()
            if done is not None:
                return dict(json.loads(done[0]))
            newest = db.execute(
                "SELECT MAX(export_seq) FROM packages WHERE session_id = ? AND venue_id = ?",
                (entry.session_id, entry.venue_id),
            ).fetchone()[0]
            if newest is not None and entry.export_seq <= newest:
                raise PackageReplayed(entry.session_id, entry.venue_id, entry.export_seq, newest)
            head = db.execute(
                "SELECT log_position, log_root FROM packages ORDER BY log_position DESC LIMIT 1"
            ).fetchone()
            position, previous = (int(head[0]) + 1, head[1]) if head else (1, LOG_GENESIS)
            root = next_log_root(previous, position, entry.package_sha256, now)
            receipt = sign(entry, now, position, previous, root)
            db.execute(
                "INSERT INTO packages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    entry.package_sha256,
                    entry.session_id,
                    entry.venue_id,
                    entry.export_seq,
                    entry.size,
                    now,
                    position,
                    root,
                    json.dumps(receipt),
                    int(entry.serious_violation),
                    json.dumps(entry.summary),
                ),
            )
            db.execute("DELETE FROM uploads WHERE upload_id = ?", (entry.package_sha256,))
            _append_audit(
                db,
                f"venue:{entry.venue_id}",
                "package.accepted",
                entry.package_sha256,
                {
                    "session_id": entry.session_id,
                    "export_seq": entry.export_seq,
                    "log_position": position,
                    "log_root": root,
                },
                now,
            )
            return receipt

        return await self._write(accept)

    async def get_package(self, package_sha256: str) -> StoredPackage | None:
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE package_sha256 = ?",  # noqa: S608 (constant columns)
                (package_sha256,),
            ).fetchone()
        )
        return _package(row) if row else None

    async def package_data(self, package_sha256: str) -> bytes:
        row = await self._run(
            lambda db: db.execute(
                "SELECT deleted_at, size FROM packages WHERE package_sha256 = ?",
                (package_sha256,),
            ).fetchone()
        )
        if row is None or row[0] is not None:
            raise StorageError(
                f"package {package_sha256[:16]} is not held (never accepted, or deleted)"
            )
        data = await self._in_files(self._read_file, package_sha256, int(row[1]))
        if data is not None:
            return data
        chunks = await self._run(  # a package accepted before the bytes moved to files
            lambda db: db.execute(
                "SELECT data FROM upload_chunks WHERE upload_id = ? ORDER BY chunk_offset",
                (package_sha256,),
            ).fetchall()
        )
        if not chunks:
            raise StorageError(
                f"the bytes of package {package_sha256[:16]} are missing from "
                f"{self.packages_dir}: restore the file from a backup"
            )
        return b"".join(chunk[0] for chunk in chunks)

    async def list_packages(self, session_id: str | None = None) -> list[StoredPackage]:
        where, params = ("WHERE session_id = ?", (session_id,)) if session_id else ("", ())
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {PACKAGE_COLUMNS} FROM packages {where} ORDER BY log_position",  # noqa: S608 (constant parts)
                params,
            ).fetchall()
        )
        return [_package(row) for row in rows]

    async def record_release(
        self, session_id: str, venue_id: str, requested_at: str, now: str
    ) -> None:
        def record(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO releases (session_id, venue_id, requested_at, released_at) "
                "VALUES (?, ?, ?, ?)",
                (session_id, venue_id, requested_at, now),
            )
            details = {"session_id": session_id, "requested_at": requested_at}
            _append_audit(db, f"venue:{venue_id}", "release.served", session_id, details, now)

        await self._write(record)

    async def release_counts(self) -> dict[tuple[str, str], int]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT session_id, venue_id, COUNT(*) FROM releases GROUP BY session_id, venue_id"
            ).fetchall()
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def set_results_published(self, session_id: str, results_at: str) -> None:
        await self._write(
            lambda db: db.execute(
                "INSERT INTO results VALUES (?, ?) ON CONFLICT(session_id) DO UPDATE SET "
                "results_at = excluded.results_at",
                (session_id, results_at),
            )
        )

    async def results_published(self, session_id: str) -> str | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT results_at FROM results WHERE session_id = ?", (session_id,)
            ).fetchone()
        )
        return row[0] if row else None

    async def delete_package(self, package_sha256: str, now: datetime) -> None:
        def delete(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT p.serious_violation, r.results_at FROM packages p "
                "LEFT JOIN results r ON r.session_id = p.session_id WHERE p.package_sha256 = ?",
                (package_sha256,),
            ).fetchone()
            if row is None:
                raise StorageError(f"no package {package_sha256[:16]} to delete")
            results_at = datetime.fromisoformat(row[1]) if row[1] else None
            check_deletable(package_sha256, results_at, bool(row[0]), now)
            db.execute(
                "UPDATE packages SET deleted_at = ? WHERE package_sha256 = ?",
                (now.isoformat(), package_sha256),
            )
            db.execute("DELETE FROM upload_chunks WHERE upload_id = ?", (package_sha256,))

        await self._write(delete)
        # After the commit: a crash in between leaves a file to delete again, never a
        # package the log says is held without its bytes.
        await self._in_files(self._remove_file, package_sha256)

    async def audit(
        self, actor: str, action: str, obj: str, details: dict[str, Any], now: str
    ) -> None:
        await self._write(lambda db: _append_audit(db, actor, action, obj, details, now))

    async def audit_events(self) -> list[dict[str, Any]]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT seq, at, actor, action, object, details, prev_hash, hash "
                "FROM audit_events ORDER BY seq"
            ).fetchall()
        )
        keys = ("seq", "at", "actor", "action", "object", "details", "prev_hash", "hash")
        events = [dict(zip(keys, row, strict=True)) for row in rows]
        for event in events:
            event["details"] = json.loads(event["details"])
        return events

    # --- central staff -----------------------------------------------------------------------

    async def add_staff(
        self, login: str, name: str, role: str, password_hash: str, actor: str, now: str
    ) -> StaffAccount:
        def add(db: sqlite3.Connection) -> StaffAccount:
            if db.execute("SELECT 1 FROM staff WHERE login = ?", (login,)).fetchone():
                raise StaffError(f"login {login!r} already exists: choose another login")
            cursor = db.execute(
                "INSERT INTO staff (login, name, role, password_hash, active, created_at) "
                "VALUES (?, ?, ?, ?, 1, ?)",
                (login, name, role, password_hash, now),
            )
            _append_audit(db, actor, "staff.added", f"staff:{login}", {"role": role}, now)
            return StaffAccount(int(cursor.lastrowid or 0), login, name, role, True, now)

        return await self._write(add)

    async def disable_staff(self, login: str, reason: str, actor: str, now: str) -> None:
        def disable(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT staff_id, active FROM staff WHERE login = ?", (login,))
            found = row.fetchone()
            if found is None:
                raise StaffError(f"no staff account {login!r}: see `cbt central staff list`")
            if not found[1]:
                raise StaffError(f"the account {login!r} is already disabled")
            db.execute(
                "UPDATE staff SET active = 0, disabled_at = ? WHERE staff_id = ?", (now, found[0])
            )
            db.execute(
                "UPDATE staff_sessions SET ended_at = ? WHERE staff_id = ? AND ended_at IS NULL",
                (now, found[0]),
            )
            _append_audit(db, actor, "staff.disabled", f"staff:{login}", {"reason": reason}, now)

        await self._write(disable)

    async def list_staff(self) -> list[StaffAccount]:
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {STAFF_COLUMNS} FROM staff ORDER BY login"  # noqa: S608 (constant columns)
            ).fetchall()
        )
        return [_staff(row) for row in rows]

    async def login_state(self, login: str, remote: str, since: str, limit: int) -> LoginState:
        def read(db: sqlite3.Connection) -> LoginState:
            row = db.execute(
                f"SELECT {STAFF_COLUMNS}, password_hash FROM staff "  # noqa: S608 (constant columns)
                "WHERE login = ? AND active = 1",
                (login,),
            ).fetchone()
            failures = [
                [
                    r[0]
                    for r in db.execute(
                        f"SELECT failed_at FROM staff_login_failures WHERE {column} = ? "  # noqa: S608 (column from the fixed tuple)
                        "AND failed_at > ? ORDER BY failed_at DESC LIMIT ?",
                        (value, since, limit),
                    ).fetchall()
                ]
                for column, value in (("login", login), ("remote", remote))
            ]
            account = _staff(row) if row else None
            return LoginState(account, row[6] if row else None, failures[0], failures[1])

        return await self._run(read)

    async def record_login_failure(
        self, login: str, remote: str, now: str, forget_before: str
    ) -> None:
        def record(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM staff_login_failures WHERE failed_at < ?", (forget_before,))
            db.execute(
                "INSERT INTO staff_login_failures (login, remote, failed_at) VALUES (?, ?, ?)",
                (login, remote, now),
            )
            actor = f"anonymous@{remote}"
            _append_audit(db, actor, "staff.login_failed", f"staff:{login}", {}, now)

        await self._write(record)

    async def open_staff_session(
        self,
        account: StaffAccount,
        token_hash: str,
        csrf_hash: str,
        remote: str,
        now: str,
        expires_at: str,
    ) -> None:
        def open_session(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO staff_sessions (token_hash, csrf_hash, staff_id, remote, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (token_hash, csrf_hash, account.staff_id, remote, now, expires_at),
            )
            db.execute("DELETE FROM staff_login_failures WHERE login = ?", (account.login,))
            details = {"remote": remote, "role": account.role}
            _append_audit(db, account.login, "staff.login", f"staff:{account.login}", details, now)

        await self._write(open_session)

    async def find_staff_session(
        self, token_hash: str, now: str
    ) -> tuple[StaffAccount, str] | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT s.staff_id, s.login, s.name, s.role, s.active, s.created_at, ss.csrf_hash "
                "FROM staff_sessions ss JOIN staff s ON s.staff_id = ss.staff_id "
                "WHERE ss.token_hash = ? AND ss.ended_at IS NULL AND ss.expires_at > ? "
                "AND s.active = 1",
                (token_hash, now),
            ).fetchone()
        )
        return (_staff(row), row[6]) if row else None

    async def end_staff_session(self, token_hash: str, account: StaffAccount, now: str) -> None:
        def end(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE staff_sessions SET ended_at = ? WHERE token_hash = ? AND ended_at IS NULL",
                (now, token_hash),
            )
            _append_audit(db, account.login, "staff.logout", f"staff:{account.login}", {}, now)

        await self._write(end)
