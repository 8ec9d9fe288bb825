"""The central store on PostgreSQL (asyncpg): several central processes, one database.

This module is only the driver: the schema and its migrations are `server.central.schema`,
every query and the logic around it `server.central.queries` and `server.central.store`,
shared with SQLite. What makes it safe with several processes behind a load balancer is in
those shared queries: a chunk is stored only by the UPDATE that moves the upload's offset from
the expected value (so two processes cannot both write at one offset); accepting a package
locks the single `log_head` row, so log positions are gap-free and unique and the same package
accepted twice at once yields one entry and one receipt. Migrating holds an advisory lock, so
processes starting together do not race.

A package's bytes are files, one per upload, in `packages_dir` (`CBT_CENTRAL_PACKAGES_DIR`,
by default `DIR/packages`; a folder every central process sees at the same path), written and
fdatasync'd before the transaction that moves the upload's offset, with a row in
`package_files` naming the folder (written before the first byte), as
`server.central.package_files` describes. Measured side by side (loadtests/bench_pg_bytes.py,
docs/performance.md) that is 1.7x what `bytea` rows took, and at the durable floor; large
objects and COPY were slower still. Without `packages_dir` (`CBT_CENTRAL_PACKAGES_DIR=database`)
the bytes are `bytea` rows in `upload_chunks`, written in the transaction that moves the
offset: nothing but the database to share or back up. Packages stored either way are read
either way: the `package_files` row says which.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from server.central import queries
from server.central.package_files import (
    FileLocks,
    read_file,
    remove_file,
    sync_dir,
    write_chunk_file,
)
from server.central.schema import migrate
from server.central.statements import POSTGRES, Statement, Step, run_step_async
from server.central.storage import StorageError, check_chunk
from server.central.store import CentralStore

T = TypeVar("T")

SCHEMA_LOCK = 7_260_601  # advisory lock key held while the schema is migrated


async def _answer(conn: asyncpg.Connection, statement: Statement) -> Any:
    sql, names = POSTGRES.prepare(statement.sql)
    args = [statement.params[name] for name in names]
    if statement.shape == "all":
        return await conn.fetch(sql, *args)
    if statement.shape == "one":
        return await conn.fetchrow(sql, *args)
    if statement.shape == "value":
        return await conn.fetchval(sql, *args)
    return await conn.execute(sql, *args)


class PgStorage(CentralStore):
    """`CentralStorage` on PostgreSQL; `dsn` is a postgresql:// URL."""

    def __init__(self, dsn: str, *, pool_size: int = 10, packages_dir: Path | None = None) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.packages_dir = packages_dir  # None: new uploads' bytes are rows
        self._pool: asyncpg.Pool | None = None
        self._files = FileLocks()
        self._recorded: dict[str, Path] = {}  # uploads whose package_files row is known

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "storage not opened"
        return self._pool

    async def _read(self, step: Step[T]) -> T:
        async with self.pool.acquire() as conn:
            return await run_step_async(step, lambda s: _answer(conn, s))

    async def _write(self, step: Step[T], *, sync: bool = True) -> T:
        async with self.pool.acquire() as conn, conn.transaction():
            return await run_step_async(step, lambda s: _answer(conn, s))

    async def open(self) -> None:
        if self.packages_dir is not None:
            try:
                self.packages_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                sync_dir(self.packages_dir.parent)
            except OSError as exc:
                raise StorageError(
                    f"cannot use {self.packages_dir} for the packages' bytes: {exc.strerror}; "
                    "check CBT_CENTRAL_PACKAGES_DIR"
                ) from exc
        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StorageError(
                f"cannot connect to the central database: {exc}; "
                "check --database or CBT_CENTRAL_DATABASE"
            ) from exc
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                step = migrate(POSTGRES, datetime.now(UTC).isoformat())
                await run_step_async(step, lambda s: _answer(conn, s))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        self._files.shutdown()

    # --- the packages' bytes: files with a row saying where, or rows of upload_chunks --------

    def _upload_guard(self, upload_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._files.hold(upload_id)

    async def _put_chunk(self, upload_id: str, offset: int, data: Sequence[bytes]) -> bytes | None:
        if self.packages_dir is None:
            return data[0] if len(data) == 1 else b"".join(data)  # one copy: one bytea parameter
        size = sum(len(piece) for piece in data)
        check_chunk(await self.get_upload(upload_id), offset, size)  # before any byte
        folder = self._recorded.get(upload_id)
        if folder is None:
            if offset == 0:
                now = datetime.now(UTC).isoformat()
                step = queries.record_package_file(upload_id, str(self.packages_dir), now)
                folder = Path(await self._write(step))
            else:
                found = await self._read(queries.package_file(upload_id))
                if found is None:  # begun as rows (before files, or by a rows process)
                    return b"".join(data)
                folder = Path(found)
            if len(self._recorded) > 10_000:  # uploads finished long ago
                self._recorded.clear()
            self._recorded[upload_id] = folder
        # Another process may write this upload's file too: never cut it (package_files).
        write = functools.partial(write_chunk_file, cut=False)
        await self._files.run(write, folder / upload_id, offset, data)
        return None

    async def _file_bytes(self, upload_id: str, size: int) -> bytes | None:
        """The bytes from the upload's file if a row names one, else from its rows (None if
        there are neither)."""
        folder = await self._read(queries.package_file(upload_id))
        if folder is None:
            return await self._rows_bytes(upload_id, None if size == 0 else size)
        data = await self._files.run(read_file, Path(folder) / upload_id, size, upload_id)
        if data is None and size:
            raise StorageError(
                f"the bytes of package {upload_id[:16]} are missing from {folder}: restore the "
                "file from a backup (every central process must see that folder)"
            )
        return data or b""

    async def _upload_bytes(self, upload_id: str, size: int) -> bytes:
        # Every byte there is: another process may have stored a chunk since the offset was read.
        folder = await self._read(queries.package_file(upload_id))
        if folder is None:
            return await self._rows_bytes(upload_id, None) or b""
        return await self._file_bytes(upload_id, size) or b""

    async def _package_bytes(self, package_sha256: str, size: int) -> bytes:
        data = await self._file_bytes(package_sha256, size)
        if not data and size:
            raise StorageError(
                f"the bytes of package {package_sha256[:16]} are missing from the database: "
                "restore it from a backup"
            )
        return data or b""

    async def _forget_bytes(self, upload_id: str) -> None:
        self._recorded.pop(upload_id, None)
        folder = await self._read(queries.package_file(upload_id))
        if folder is not None:
            await self._files.run(remove_file, Path(folder) / upload_id)
            await self._write(queries.forget_package_file(upload_id))
