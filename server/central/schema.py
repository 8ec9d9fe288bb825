"""The central database's schema: numbered migrations, written once for both back-ends.

`schema_migrations` holds one row per migration applied, with its number, name and when. At
open, `migrate` applies the missing ones in order, inside one transaction (SQLite: the writer
thread's `BEGIN IMMEDIATE`; PostgreSQL: a transaction holding an advisory lock, so processes
starting together do not race): a failure anywhere leaves the database exactly as it was.

Databases made before migrations existed (commit 546a924 and earlier) have no
`schema_migrations`. They are adopted: each migration whose tables all exist is recorded as
`adopted`, the others run. That is how the two back-ends' old layouts meet: an old PostgreSQL
database already has the log and audit head rows (migration 3), an old SQLite one does not and
gets them, filled from its log and audit chain; a database from before the staff console gets
the staff tables; and migration 4, the once-only move of uploads left half-way in rows (it ran
on every open before), runs once on every old SQLite database.

Adding a change: append a `Migration` with the next number; never edit one that has shipped.
Columns use the type tokens of `server.central.statements.Dialect` (`{int}`, `{serial}`,
`{bool}`, `{true}`, `{bytes}`). Every column says what it holds (and its unit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.central.statements import Dialect, Step, execute, fetch_all
from server.central.storage import StorageError

GENESIS = "0" * 64  # the log's and the audit chain's root before their first entry


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    statements: Sequence[str | tuple[str, str]]  # DDL/DML with type tokens, no parameters;
    # (back-end name, text) for a statement only that back-end runs
    creates: frozenset[str] = frozenset()  # tables it makes: found all, an old database had it
    only: str | None = None  # a back-end's name when the step concerns only that one

    def sql(self, dialect: Dialect) -> list[str]:
        if self.only not in (None, dialect.name):
            return []
        return [
            dialect.ddl(text if isinstance(text, str) else text[1])
            for text in self.statements
            if isinstance(text, str) or text[0] == dialect.name
        ]


CENTRAL_TABLES = Migration(1, "central tables: venues, uploads, the package log, releases, audit", (
    """CREATE TABLE venues (
    venue_id TEXT PRIMARY KEY,          -- the venue's id as in the session file
    name TEXT NOT NULL,                 -- human name, for the status page
    signing_public TEXT NOT NULL,       -- base64 Ed25519 public key (packages, release requests)
    wrap_public TEXT NOT NULL,          -- base64 X25519 public key (releases are wrapped to it)
    registered_at TEXT NOT NULL         -- ISO-8601 UTC
)""",
    """CREATE TABLE uploads (
    upload_id TEXT PRIMARY KEY,         -- = the package's SHA-256, hex
    venue_id TEXT NOT NULL,             -- who said it is sending it
    size {int} NOT NULL,                -- total bytes announced
    received {int} NOT NULL,            -- bytes stored so far (the resume offset)
    created_at TEXT NOT NULL,           -- ISO-8601 UTC
    updated_at TEXT NOT NULL            -- ISO-8601 UTC, the last chunk stored
)""",
    # PostgreSQL: every upload's bytes, in chunks; they stay as the accepted package's bytes
    # until it is deleted after its retention date. SQLite keeps them in files beside the
    # database and has rows here only from before that layout (still read, never written).
    """CREATE TABLE upload_chunks (
    upload_id TEXT NOT NULL,            -- = the package's SHA-256, hex
    chunk_offset {int} NOT NULL,        -- byte offset of this chunk in the package
    data {bytes} NOT NULL,              -- the chunk's bytes (ciphertext)
    PRIMARY KEY (upload_id, chunk_offset)
)""",
    """CREATE TABLE packages (
    package_sha256 TEXT PRIMARY KEY,    -- hex SHA-256 of the package file
    session_id TEXT NOT NULL,
    venue_id TEXT NOT NULL,
    export_seq {int} NOT NULL,          -- the venue's export number (replays are refused)
    size {int} NOT NULL,                -- bytes
    received_at TEXT NOT NULL,          -- ISO-8601 UTC, when it was accepted
    log_position {int} NOT NULL UNIQUE, -- 1-based position in the append-only log
    log_root TEXT NOT NULL,             -- the log's hash-chain root after this package
    receipt TEXT NOT NULL,              -- the signed receipt, JSON
    serious_violation {bool} NOT NULL,  -- true: 5-year retention
    summary TEXT NOT NULL,              -- counts for the status page, JSON
    deleted_at TEXT                     -- ISO-8601 UTC, when the bytes were deleted (retention)
)""",
    """CREATE TABLE releases (
    release_id {serial},
    session_id TEXT NOT NULL,
    venue_id TEXT NOT NULL,
    requested_at TEXT NOT NULL,         -- the venue's signed request time
    released_at TEXT NOT NULL           -- the centre's time when it answered
)""",
    """CREATE TABLE results (
    session_id TEXT PRIMARY KEY,
    results_at TEXT NOT NULL            -- when results were published: retention starts here
)""",
    """CREATE TABLE audit_events (
    seq {int} PRIMARY KEY,              -- 1, 2, 3, ... no gaps
    at TEXT NOT NULL,                   -- ISO-8601 UTC
    actor TEXT NOT NULL,                -- who: a staff login, venue:<id>, cli:<user>
    action TEXT NOT NULL,               -- what, e.g. package.accepted
    object TEXT NOT NULL,               -- on what, e.g. a package's SHA-256
    details TEXT NOT NULL,              -- JSON; never secrets or answers
    prev_hash TEXT NOT NULL,            -- the previous event's hash (64 zeros for the first)
    hash TEXT NOT NULL                  -- this event's hash (server.protocol.audit_chain)
)""",
    # Chunks are ciphertext: TOAST's compression would burn CPU for nothing.
    ("postgres", "ALTER TABLE upload_chunks ALTER COLUMN data SET STORAGE EXTERNAL"),
), frozenset({"venues", "uploads", "upload_chunks", "packages", "releases", "results",
              "audit_events"}))  # fmt: skip

STAFF_TABLES = Migration(2, "central staff accounts, their logins and failed logins", (
    """CREATE TABLE staff (
    staff_id {serial},
    login TEXT NOT NULL UNIQUE,         -- letters, digits, '-', '_', '.'
    name TEXT NOT NULL,                 -- the person's name
    role TEXT NOT NULL,                 -- operator | auditor
    password_hash TEXT NOT NULL,        -- argon2id PHC string; never the password
    active {bool} NOT NULL DEFAULT {true},  -- false once disabled
    created_at TEXT NOT NULL,           -- ISO-8601 UTC
    disabled_at TEXT                    -- ISO-8601 UTC, when disabled
)""",
    """CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,        -- SHA-256 of the session cookie's token; never the token
    csrf_hash TEXT NOT NULL,            -- SHA-256 of the CSRF token
    staff_id {int} NOT NULL REFERENCES staff (staff_id),
    remote TEXT NOT NULL,               -- the client address at login
    created_at TEXT NOT NULL,           -- ISO-8601 UTC
    expires_at TEXT NOT NULL,           -- ISO-8601 UTC, created_at + the session TTL
    ended_at TEXT                       -- ISO-8601 UTC, at logout or when the account is disabled
)""",
    """CREATE TABLE staff_login_failures (
    failure_id {serial},
    login TEXT NOT NULL,                -- the login name tried (it may not exist)
    remote TEXT NOT NULL,               -- the client address
    failed_at TEXT NOT NULL             -- ISO-8601 UTC; rows older than the window are dropped
)""",
    "CREATE INDEX staff_login_failures_by_login ON staff_login_failures (login, failed_at)",
    "CREATE INDEX staff_login_failures_by_remote ON staff_login_failures (remote, failed_at)",
), frozenset({"staff", "staff_sessions", "staff_login_failures"}))  # fmt: skip

HEAD_ROWS = Migration(3, "one head row each for the package log and the audit chain", (
    # Appending locks the head row, so positions stay gap-free when several PostgreSQL
    # processes append at once (SQLite's one writer needs no lock, but reads the same row).
    """CREATE TABLE log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),  -- one row: the lock that serialises appends
    position {int} NOT NULL,            -- the last package's log_position (0: none yet)
    root TEXT NOT NULL                  -- the log's root after it
)""",
    f"""INSERT INTO log_head (id, position, root)
SELECT 1, COALESCE(MAX(log_position), 0),
       COALESCE((SELECT log_root FROM packages ORDER BY log_position DESC LIMIT 1), '{GENESIS}')
FROM packages""",  # noqa: S608 (a constant)
    """CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),  -- one row: the lock that serialises audit appends
    seq {int} NOT NULL,                 -- the last event's seq (0: none yet)
    hash TEXT NOT NULL                  -- its hash
)""",
    f"""INSERT INTO audit_head (id, seq, hash)
SELECT 1, COALESCE(MAX(seq), 0),
       COALESCE((SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1), '{GENESIS}')
FROM audit_events""",  # noqa: S608 (a constant)
), frozenset({"log_head", "audit_head"}))  # fmt: skip

UPLOADS_OUT_OF_ROWS = Migration(4, "uploads left half-way in rows start again at 0", (
    # Before a SQLite database kept the packages' bytes in files, an unfinished upload had its
    # chunks in rows: start it again from 0 (the venue asks HEAD for the offset and resends;
    # it keeps its copy until it holds a receipt). Accepted packages' rows stay and are read.
    "UPDATE uploads SET received = 0 WHERE upload_id IN (SELECT upload_id FROM upload_chunks)",
    "DELETE FROM upload_chunks WHERE upload_id IN (SELECT upload_id FROM uploads)",
), only="sqlite")  # fmt: skip

AUDIT_CHAIN_FORMAT = Migration(5, "each audit event records its chain format", (
    # The one audit-chain format the venue and the centre both write (server.protocol.
    # audit_chain, issue 12). Events written before it keep the centre's legacy format, which
    # the DEFAULT names; every new event names its format when it is written.
    """ALTER TABLE audit_events ADD COLUMN
    chain_format TEXT NOT NULL DEFAULT 'cbt-audit-central-v1'""",
))  # fmt: skip

PACKAGE_FILES = Migration(6, "package bytes in files: a row says which folder holds them", (
    # PostgreSQL: an upload written as a file (CBT_CENTRAL_PACKAGES_DIR, server.central.
    # package_files) has a row here, written before its first byte; one without a row has its
    # bytes in upload_chunks (written before this, or with CBT_CENTRAL_PACKAGES_DIR=database).
    # SQLite keeps its files beside the database and writes no row.
    """CREATE TABLE package_files (
    upload_id TEXT PRIMARY KEY,         -- = the package's SHA-256, hex; the file's name
    directory TEXT NOT NULL,            -- the folder holding the file (the same on every machine)
    created_at TEXT NOT NULL            -- ISO-8601 UTC
)""",
), frozenset({"package_files"}))  # fmt: skip

HEARTBEATS = Migration(7, "the live line: heartbeats and serious events from the venues", (
    # Issue 14, point 4 (server.central.live): one row per (venue, seq); a message sent again
    # after a cut finds its row and is not stored twice.
    """CREATE TABLE heartbeats (
    venue_id TEXT NOT NULL,             -- the venue that signed the message
    seq {int} NOT NULL,                 -- the venue's message number (its idempotency key)
    kind TEXT NOT NULL,                 -- 'heartbeat' (every minute) or 'serious' (at once)
    recorded_at TEXT NOT NULL,          -- when the venue made it (ISO-8601 UTC, venue clock)
    received_at TEXT NOT NULL,          -- when the centre stored it (ISO-8601 UTC)
    body TEXT NOT NULL,                 -- the message (server.protocol.heartbeat), JSON
    PRIMARY KEY (venue_id, seq)
)""",
), frozenset({"heartbeats"}))  # fmt: skip

MIGRATIONS = (
    CENTRAL_TABLES,
    STAFF_TABLES,
    HEAD_ROWS,
    UPLOADS_OUT_OF_ROWS,
    AUDIT_CHAIN_FORMAT,
    PACKAGE_FILES,
    HEARTBEATS,
)
LATEST = MIGRATIONS[-1].number

VERSION_TABLE = """CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY,        -- the migration's number
    name TEXT NOT NULL,                 -- what it does
    applied_at TEXT NOT NULL,           -- ISO-8601 UTC
    how TEXT NOT NULL                   -- applied | adopted (found done in an older database)
)"""
RECORD = (
    "INSERT INTO schema_migrations (version, name, applied_at, how) "
    "VALUES (:version, :name, :applied_at, :how)"
)


def migrate(dialect: Dialect, now: str) -> Step[list[int]]:
    """Bring the database to `LATEST`; return the numbers of the migrations that ran."""
    tables = {row[0] for row in (yield fetch_all(dialect.tables_sql))}
    if "schema_migrations" not in tables:
        yield execute(VERSION_TABLE)
        if "venues" in tables:  # made before migrations: record what it already has
            for migration in MIGRATIONS:
                if migration.creates and migration.creates <= tables:
                    yield execute(RECORD, version=migration.number, name=migration.name,
                                  applied_at=now, how="adopted")  # fmt: skip
    done = {int(row[0]) for row in (yield fetch_all("SELECT version FROM schema_migrations"))}
    if done - {m.number for m in MIGRATIONS}:
        raise SchemaTooNew(max(done))
    ran = []
    for migration in MIGRATIONS:
        if migration.number in done:
            continue
        for text in migration.sql(dialect):
            yield execute(text)
        yield execute(RECORD, version=migration.number, name=migration.name, applied_at=now,
                      how="applied")  # fmt: skip
        ran.append(migration.number)
    return ran


class SchemaTooNew(StorageError):
    """The database was migrated by a newer version of this software."""

    def __init__(self, version: int) -> None:
        super().__init__(
            f"the central database is at schema version {version}, newer than this software "
            f"knows ({LATEST}): run the newer cbt, or restore a backup made for this version"
        )
