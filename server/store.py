"""The SQLite store shared by the venue and (SQLite-backed) central servers.

It owns the connection settings that make an acknowledged write durable (WAL journal,
`synchronous=FULL`, both read back and checked before anything starts), the migrations
(sqlite-utils `Migrations`), and the one writer thread with **group commit**:

- `await store.write(fn, *args)` queues `fn(db, *args)`; the writer thread takes every call
  waiting (up to `max_batch`), runs them in ONE transaction, each inside its own SAVEPOINT so a
  call that raises rolls back alone and only its caller sees the exception, commits once, and
  only then resolves every caller's future. An acknowledgement therefore always means "on disk".
- `await store.read(fn, *args)` runs `fn(db, *args)` on a small pool of read-only connections,
  each call inside one read transaction (a consistent snapshot); `store.read_now(fn, *args)`
  does the same at once on the caller's thread, for lookups that take microseconds.
- The writer checkpoints the WAL when idle (TRUNCATE) or when it has grown past a bound
  (PASSIVE), so the log does not grow without bound.
- `store.generation` moves on whenever committed data may have changed under a cache kept in
  memory: after every COMMIT in which a write changed rows, unless that write function is
  marked `@routine_write` (its caller keeps its own caches right), and whenever another
  process has committed to the file (`PRAGMA data_version`, looked at before every batch and
  at least every `watch_interval_s` when idle). It moves before any caller of that commit is
  resolved, so a cache that throws itself away when the generation differs never serves a
  row older than a write already acknowledged.

Command-line tools that run without an event loop use `connect()` and `transaction()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from server.errors import CbtError, is_storage_full, storage_full

log = logging.getLogger(__name__)

T = TypeVar("T")
Durability = Literal["FULL", "NORMAL"]
_SYNCHRONOUS_VALUES = {"FULL": 2, "NORMAL": 1}
BUSY_TIMEOUT_MS = 10_000  # how long a statement waits for another connection's lock


class StoreError(CbtError):
    """The database cannot be opened safely, or the store is closed."""


def connect(
    path: Path | str,
    *,
    durability: Durability = "FULL",
    readonly: bool = False,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> Database:
    """Open `path` with WAL and the given `synchronous` level, checked; refuse otherwise.

    `durability="NORMAL"` exists only so the benchmark can measure what FULL costs; every
    server opens its database with FULL.
    """
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {durability}")
        if readonly:
            conn.execute("PRAGMA query_only = 1")
        check_durability(conn, durability)
    except BaseException:
        conn.close()
        raise
    return Database(conn)


def check_durability(conn: sqlite3.Connection, durability: Durability = "FULL") -> None:
    """Raise StoreError unless the connection really runs WAL with the wanted `synchronous`."""
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode != "wal":
        raise StoreError(
            f"the database journal mode is {mode!r}, not 'wal': put the database on a local "
            "file system that supports WAL (not a network share or memory)"
        )
    level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    if level != _SYNCHRONOUS_VALUES[durability]:
        raise StoreError(
            f"PRAGMA synchronous is {level}, not {durability}: acknowledged writes would not be "
            "durable; check that nothing overrides the pragma"
        )


@contextlib.contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """One IMMEDIATE transaction on `db` (for CLI tools): commit on success, roll back on error."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def migrate(db: Database, migrations: Migrations | None) -> None:
    """Apply any pending migrations (each in its own transaction)."""
    if migrations is not None:
        migrations.apply(db)


@dataclass
class _Call:
    """One queued write: the function, its arguments and where to deliver the outcome."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


@dataclass
class StoreStats:
    """Counters for benchmarks and status pages (commits and the calls they carried)."""

    commits: int = 0
    calls: int = 0
    failed_calls: int = 0
    checkpoints: int = 0
    run_s: float = 0.0  # seconds the writer spent running calls
    commit_s: float = 0.0  # seconds the writer spent in COMMIT (the fsync)


_STOP = object()
_ROUTINE = "__store_routine_write__"


def routine_write(fn: Callable[..., T]) -> Callable[..., T]:
    """Mark `fn` as a routine write, the kind that comes by the thousand (an autosave, a
    heartbeat flush). Two promises come with the mark:

    - its changes leave `Store.generation` alone: they change nothing a generation-checked
      cache holds, or its callers update that cache themselves;
    - it changes the database only with INSERT, UPDATE and DELETE (no DDL, no pragmas). The
      writer then runs it without a savepoint of its own: if it raises having changed no
      row, there is nothing to undo; if it raises after changing rows, the whole batch
      transaction is rolled back and the other calls run again without it.
    """
    setattr(fn, _ROUTINE, True)
    return fn


_BATCH = "__store_batch_runner__"
# One batched call's outcome: (True, value) or (False, the exception its caller gets).
Outcome = tuple[bool, Any]


def batched_write(
    runner: Callable[[Database, list[tuple[Any, ...]]], list[Outcome]],
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Mark a routine write (see `routine_write`) whose calls the writer may run together:
    each unbroken run of queued calls to the marked function in one group commit is given to
    `runner(db, [args of each call, in queue order])` at once, which returns one outcome per
    call. The runner must end exactly where running the calls one by one would (the same
    rows, the same outcomes); it exists so that a group commit costs a few statements instead
    of a few per call (issue 18). If the runner raises, the transaction is rolled back and the
    calls run again one by one."""

    def mark(fn: Callable[..., T]) -> Callable[..., T]:
        setattr(fn, _BATCH, runner)
        return routine_write(fn)

    return mark


class Store:
    """A database file with one group-committing writer thread and a pool of readers."""

    def __init__(
        self,
        path: Path | str,
        migrations: Migrations | None = None,
        *,
        durability: Durability = "FULL",
        readers: int = 4,
        max_batch: int = 500,
        checkpoint_idle_s: float = 2.0,
        checkpoint_wal_bytes: int = 64 * 1024 * 1024,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        watch_interval_s: float = 0.5,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.durability = durability
        self.max_batch = max_batch
        self.checkpoint_idle_s = checkpoint_idle_s
        self.checkpoint_wal_bytes = checkpoint_wal_bytes
        self.watch_interval_s = watch_interval_s
        self.stats = StoreStats()
        # Moves on when cached reads may be stale (see the module docstring). Written only by
        # the writer thread; an int attribute is read atomically from any thread.
        self.generation = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._before_close: list[Callable[[], Awaitable[None]]] = []
        self._writer_db = connect(self.path, durability=durability, busy_timeout_ms=busy_timeout_ms)
        migrate(self._writer_db, migrations)
        self._data_version = self._read_data_version(self._writer_db)
        self._local = threading.local()
        self._reader_dbs: list[Database] = []
        self._reader_lock = threading.Lock()
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="store-read")
        self._thread = threading.Thread(target=self._run_writer, name="store-write", daemon=True)
        self._thread.start()

    # -- the public API -------------------------------------------------------------------

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(db, *args)` in the writer thread; return its result once it is committed."""
        if self._closed:
            raise StoreError("the store is closed; open it again before writing")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Call(fn, args, future, loop))
        try:
            return await future
        except (sqlite3.Error, OSError) as exc:
            if is_storage_full(exc):  # nothing was committed: a typed, retryable refusal
                raise storage_full() from exc
            raise

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(db, *args)` on a read-only connection, inside one read transaction."""
        if self._closed:
            raise StoreError("the store is closed; open it again before reading")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, fn, args)

    def read_now(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(db, *args)` at once on the calling thread's own read-only connection.

        For indexed lookups that take microseconds (a token, an attempt row): it skips the
        hop to the read pool (~4-9x cheaper here), but blocks the event loop while it runs,
        so anything that scans or sorts many rows belongs in `read()`.
        """
        if self._closed:
            raise StoreError("the store is closed; open it again before reading")
        return self._run_read(fn, args)

    def before_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` (last added, first run) when close() starts, while writes still work."""
        self._before_close.append(callback)

    async def close(self) -> None:
        """Run the before-close callbacks, finish every queued write, stop threads, close."""
        if self._closed:
            return
        for callback in reversed(self._before_close):
            await callback()
        self._before_close.clear()
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._readers.shutdown(wait=True)
        for db in self._reader_dbs:
            db.close()

    def checkpoint(self, mode: Literal["PASSIVE", "TRUNCATE"] = "TRUNCATE") -> None:
        """Ask the writer thread to checkpoint the WAL now (used by tests and backups)."""
        self._queue.put(("checkpoint", mode))

    # -- the reader side ------------------------------------------------------------------

    def _reader(self) -> Database:
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = connect(
                self.path,
                durability=self.durability,
                readonly=True,
                busy_timeout_ms=self.busy_timeout_ms,
            )
            self._local.db = db
            with self._reader_lock:
                self._reader_dbs.append(db)
        return db

    def _run_read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        db = self._reader()
        db.conn.execute("BEGIN")
        try:
            return fn(db, *args)
        finally:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")

    # -- the writer side ------------------------------------------------------------------

    def _run_writer(self) -> None:
        db = self._writer_db
        dirty = False
        idle_since = time.monotonic()
        try:
            while True:
                try:
                    first = self._queue.get(
                        timeout=min(self.checkpoint_idle_s, self.watch_interval_s)
                    )
                except queue.Empty:
                    self._watch_other_writers(db)
                    if dirty and time.monotonic() - idle_since >= self.checkpoint_idle_s:
                        # Still dirty if a reader kept the checkpoint from finishing: retry.
                        dirty = not self._checkpoint(db, "TRUNCATE")
                        idle_since = time.monotonic()
                    continue
                self._watch_other_writers(db)
                batch, stop = self._take_batch(first)
                calls = [c for c in batch if isinstance(c, _Call)]
                for item in batch:
                    if isinstance(item, tuple):
                        self._checkpoint(db, item[1])
                if calls:
                    self._commit_batch_safely(db, calls)
                    dirty = True
                    self._checkpoint_if_large(db)
                idle_since = time.monotonic()
                if stop:
                    break
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._checkpoint(db, "TRUNCATE")
            db.close()

    def _take_batch(self, first: Any) -> tuple[list[Any], bool]:
        """Take `first` and every call already waiting, up to `max_batch`."""
        if first is _STOP:
            return [], True
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit_batch_safely(self, db: Database, calls: list[_Call]) -> None:
        """Commit a batch; if the store itself fails (e.g. another process held the write lock
        past the timeout), every caller still waiting gets that error and the writer lives on."""
        try:
            self._commit_batch(db, calls)
        except Exception as exc:
            log.exception("store.batch_failed calls=%d", len(calls))
            with contextlib.suppress(sqlite3.Error):
                if db.conn.in_transaction:
                    db.conn.execute("ROLLBACK")
            self._deliver([(c, False, exc) for c in calls if not c.future.done()])

    def _commit_batch(self, db: Database, calls: list[_Call]) -> None:
        """Run `calls` in one transaction, one savepoint each (routine writes none); resolve
        them after COMMIT."""
        pending = list(calls)
        batching = True
        while pending:
            began = time.perf_counter()
            outcomes, retry, watched = self._run_calls(db, pending, batching)
            ran = time.perf_counter()
            self.stats.run_s += ran - began
            if retry is not None and retry[0] is None:  # a batch runner raised: one by one
                batching = False
                continue
            if retry is None:
                try:
                    db.conn.execute("COMMIT")
                except sqlite3.Error as commit_error:
                    with contextlib.suppress(sqlite3.Error):
                        db.conn.execute("ROLLBACK")
                    outcomes = [(c, False, commit_error) for c in pending]
                else:
                    self.stats.commits += 1
                    if watched:  # before any caller hears of the commit
                        self.generation += 1
                self.stats.commit_s += time.perf_counter() - ran
                self._deliver(outcomes)
                return
            # A failing call destroyed the whole transaction (e.g. RAISE(ROLLBACK)), or was a
            # routine write that failed after changing rows (rolled back above): it gets its
            # exception, and the others run again in a fresh transaction.
            failed, error = retry
            assert failed is not None
            self._deliver([(failed, False, error)])
            pending = [c for c in pending if c is not failed]

    def _run_calls(
        self, db: Database, calls: list[_Call], batching: bool = True
    ) -> tuple[list[tuple[_Call, bool, Any]], tuple[_Call | None, BaseException] | None, bool]:
        """Run `calls` in one open transaction: their outcomes, the call that ended the
        transaction (if one did; None if a batch runner raised, rolled back) and whether a
        write not marked routine changed rows."""
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        outcomes: list[tuple[_Call, bool, Any]] = []
        watched = False
        index = 0
        while index < len(calls):
            call = calls[index]
            index += 1
            if call.future.cancelled():
                continue
            runner = getattr(call.fn, _BATCH, None) if batching else None
            if runner is not None:
                run = [call]
                while index < len(calls) and calls[index].fn is call.fn:
                    if not calls[index].future.cancelled():
                        run.append(calls[index])
                    index += 1
                try:
                    results = runner(db, [c.args for c in run])
                except Exception as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    return outcomes, (None, exc), watched
                for c, (ok, value) in zip(run, results, strict=True):
                    outcomes.append((c, ok, value))
                    self.stats.failed_calls += not ok
                self.stats.calls += len(run)
                continue
            routine = getattr(call.fn, _ROUTINE, False)
            if not routine:  # a routine write needs none (see routine_write)
                conn.execute("SAVEPOINT store_call")
            changes = conn.total_changes
            try:
                value = call.fn(db, *call.args)
            except Exception as exc:  # each caller gets its own exception back
                if not conn.in_transaction:
                    return outcomes, (call, exc), watched
                if routine:
                    if conn.total_changes != changes:  # no savepoint to undo it alone
                        conn.execute("ROLLBACK")
                        return outcomes, (call, exc), watched
                    outcomes.append((call, False, exc))
                    self.stats.failed_calls += 1
                    self.stats.calls += 1
                    continue
                conn.execute("ROLLBACK TO SAVEPOINT store_call")
                conn.execute("RELEASE SAVEPOINT store_call")
                outcomes.append((call, False, exc))
                self.stats.failed_calls += 1
            else:
                if not conn.in_transaction:
                    exc2 = StoreError("a write function ended the store's transaction itself")
                    return outcomes, (call, exc2), watched
                if not routine:
                    conn.execute("RELEASE SAVEPOINT store_call")
                    watched = watched or conn.total_changes != changes
                outcomes.append((call, True, value))
            self.stats.calls += 1
        return outcomes, None, watched

    @staticmethod
    def _deliver(outcomes: list[tuple[_Call, bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Call, bool, Any]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(_resolve, items)

    @staticmethod
    def _read_data_version(db: Database) -> int:
        return int(db.conn.execute("PRAGMA data_version").fetchone()[0])

    def _watch_other_writers(self, db: Database) -> None:
        """Move the generation on if another connection (a CLI tool in another process) has
        committed since the last look: this connection's own commits leave data_version alone."""
        version = self._read_data_version(db)
        if version != self._data_version:
            self._data_version = version
            self.generation += 1

    def _checkpoint(self, db: Database, mode: str) -> bool:
        """Checkpoint the WAL; True if it completed. Never waits on readers for long: a
        TRUNCATE waits for every reader to reach the latest snapshot, and the writer must not
        stall saves behind a long read (an export), so it gives up after 50 ms instead."""
        conn = db.conn
        conn.execute("PRAGMA busy_timeout = 50")
        try:
            busy, _, _ = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:
            # A full disk (the database file cannot grow): the WAL keeps every committed
            # page, so nothing is lost; the writer lives on and tries again when idle.
            log.warning("store.checkpoint_failed mode=%s error=%s", mode, exc)
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        self.stats.checkpoints += 1
        return not busy

    def _checkpoint_if_large(self, db: Database) -> None:
        wal = self.path.with_name(self.path.name + "-wal")
        with contextlib.suppress(OSError):
            if wal.stat().st_size > self.checkpoint_wal_bytes:
                self._checkpoint(db, "PASSIVE")


def _resolve(items: list[tuple[_Call, bool, Any]]) -> None:
    for call, ok, value in items:
        if call.future.done():
            continue
        if ok:
            call.future.set_result(value)
        else:
            call.future.set_exception(value)


async def open_store(
    path: Path | str, migrations: Migrations | None = None, **options: Any
) -> Store:
    """Open a Store without blocking the event loop (migrations run in a thread)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, lambda: Store(path, migrations, **options))
