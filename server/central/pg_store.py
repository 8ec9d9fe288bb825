"""The central store on PostgreSQL (asyncpg): several central processes, one database.

This module is only the driver: the schema and its migrations are `server.central.schema`,
every query and the logic around it `server.central.queries` and `server.central.store`,
shared with SQLite. What makes it safe with several processes behind a load balancer is in
those shared queries: a chunk is stored only by the UPDATE that moves the upload's offset from
the expected value (so two processes cannot both write at one offset); accepting a package
locks the single `log_head` row, so log positions are gap-free and unique and the same package
accepted twice at once yields one entry and one receipt. Migrating holds an advisory lock, so
processes starting together do not race.

A package's bytes are `bytea` rows in `upload_chunks`, written in the transaction that moves
the upload's offset and kept as the accepted package's bytes until its retention date. Why
there and not in large objects or files (docs/deployment.md, "Where the bytes live"): every
central process, on any machine, sees them with nothing else shared; a chunk and its offset
commit together; `pg_dump` and point-in-time recovery cover them with the log and receipts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from server.central.schema import migrate
from server.central.statements import POSTGRES, Statement, Step, run_step_async
from server.central.storage import StorageError
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

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

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

    # --- the packages' bytes: rows of upload_chunks -----------------------------------------

    async def _put_chunk(self, upload_id: str, offset: int, data: Sequence[bytes]) -> bytes:
        return data[0] if len(data) == 1 else b"".join(data)  # one copy: one bytea parameter

    async def _upload_bytes(self, upload_id: str, size: int) -> bytes:
        # Every row there is: another process may have stored a chunk since the offset was read.
        return await self._rows_bytes(upload_id, None) or b""

    async def _package_bytes(self, package_sha256: str, size: int) -> bytes:
        data = await self._rows_bytes(package_sha256, size)
        if data is None:
            raise StorageError(
                f"the bytes of package {package_sha256[:16]} are missing from the database: "
                "restore it from a backup"
            )
        return data
