"""The central store on SQLite: the default back-end, a file and a folder, nothing to set up.

This module is only the driver: the schema and its migrations are `server.central.schema`,
every query and the logic around it `server.central.queries` and `server.central.store`,
shared with PostgreSQL. What is SQLite's own:

All statements run on one dedicated thread with one connection (WAL, synchronous=FULL), so
every write is serialised; a step (one store operation) runs whole on that thread as one
`BEGIN IMMEDIATE` transaction, one hop from the event loop.

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
import functools
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from server.central.package_files import (
    FileLocks,
    read_file,
    remove_file,
    sync_dir,
    write_chunk_file,
)
from server.central.schema import migrate
from server.central.statements import SQLITE, Statement, Step, run_step
from server.central.storage import StorageError, check_chunk
from server.central.store import CentralStore

T = TypeVar("T")


def _answer(db: sqlite3.Connection, statement: Statement) -> Any:
    sql, _ = SQLITE.prepare(statement.sql)
    rows = db.execute(sql, statement.params).fetchall()  # whole: no statement left running
    if statement.shape == "all":
        return rows
    first = rows[0] if rows else None
    if statement.shape == "one":
        return first
    if statement.shape == "value":
        return first[0] if first is not None else None
    return None


class SqliteStorage(CentralStore):
    """`CentralStorage` on one SQLite file and the package files beside it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.packages_dir = self.path.with_name(self.path.name + "-packages")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="central-sqlite")
        # Package files are written and synced on their own threads, apart from the default
        # executor, where the package hashes run (server.central.package_files).
        self._files = FileLocks()
        self._db: sqlite3.Connection | None = None

    # --- running steps on the writer thread -------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None, "storage not opened"
            return fn(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _read(self, step: Step[T]) -> T:
        return await self._run(lambda db: run_step(step, lambda s: _answer(db, s)))

    async def _write(self, step: Step[T], *, sync: bool = True) -> T:
        """Run `step` in one transaction. `sync=False` commits without waiting for the disk
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
                    result = run_step(step, lambda s: _answer(db, s))
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
        if sqlite3.sqlite_version_info < (3, 35):  # the shared queries use RETURNING
            raise StorageError(
                f"the central store needs SQLite 3.35 or newer, this Python has "
                f"{sqlite3.sqlite_version}: use Python 3.11 as packaged by the distribution"
            )

        def connect() -> None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA page_size=65536")  # large BLOB chunks: fewer overflow pages
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            self.packages_dir.mkdir(mode=0o700, exist_ok=True)
            sync_dir(self.packages_dir.parent)
            self._db = db

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the central database {self.path}: {exc}") from exc
        await self._write(migrate(SQLITE, datetime.now(UTC).isoformat()))

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)
        self._files.shutdown()

    # --- the package files beside the database ----------------------------------------------

    def _package_file(self, upload_id: str) -> Path:
        return self.packages_dir / upload_id  # upload ids are 64 hex characters: a safe name

    def _upload_guard(self, upload_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._files.hold(upload_id)

    async def _put_chunk(self, upload_id: str, offset: int, data: Sequence[bytes]) -> None:
        size = sum(len(piece) for piece in data)
        check_chunk(await self.get_upload(upload_id), offset, size)  # before any byte
        path = self._package_file(upload_id)
        await self._files.run(functools.partial(write_chunk_file, cut=True), path, offset, data)

    async def _upload_bytes(self, upload_id: str, size: int) -> bytes:
        data = await self._files.run(read_file, self._package_file(upload_id), size, upload_id)
        if data is None:
            if size:
                raise StorageError(f"the bytes of upload {upload_id[:16]} are missing")
            return b""
        return data

    async def _package_bytes(self, package_sha256: str, size: int) -> bytes:
        path = self._package_file(package_sha256)
        data = await self._files.run(read_file, path, size, package_sha256)
        if data is None:  # a package accepted before the bytes moved to files
            data = await self._rows_bytes(package_sha256, size)
        if data is None:
            raise StorageError(
                f"the bytes of package {package_sha256[:16]} are missing from "
                f"{self.packages_dir}: restore the file from a backup"
            )
        return data

    async def _forget_bytes(self, upload_id: str) -> None:
        await self._files.run(remove_file, self._package_file(upload_id))
