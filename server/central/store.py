"""The central store's operations, written once over the two back-ends' drivers.

`CentralStore` implements every role of `server.central.storage.CentralStorage` (venue
registry, uploads, package log, releases, audit chain, staff) by running the steps of
`server.central.queries`; a back-end supplies only how a step runs and where a package's bytes
live:

- `_read(step)` runs a step that only reads; `_write(step, sync=...)` runs one in a
  transaction. `sync=False` may commit without waiting for the disk, for steps whose loss in a
  crash is harmless because the venue repeats them (SQLite uses it; PostgreSQL ignores it).
- `_put_chunk` stores a chunk's bytes before its offset moves, or returns them for the offset's
  transaction to store as a row; `_upload_bytes`, `_package_bytes` and `_forget_bytes` read and
  delete them; `_upload_guard` serialises one upload's chunks where the bytes are files.

`server.central.sqlite_store` (files beside the database, one writer thread) and
`server.central.pg_store` (bytea rows, a connection pool) are those drivers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from server.central import queries
from server.central.statements import Step
from server.central.storage import (
    LoginState,
    PackageEntry,
    ReceiptSigner,
    StaffAccount,
    StorageError,
    StoredPackage,
    UploadQuota,
    UploadState,
    VenueRecord,
    chunk_pieces,
    chunk_size,
)

T = TypeVar("T")


class CentralStore:
    """Every `CentralStorage` operation on top of a back-end's `_read` / `_write`."""

    async def _read(self, step: Step[T]) -> T:
        raise NotImplementedError

    async def _write(self, step: Step[T], *, sync: bool = True) -> T:
        raise NotImplementedError

    def _upload_guard(self, upload_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while one upload's bytes are written or dropped (nothing by default)."""
        return _nothing()

    async def _put_chunk(self, upload_id: str, offset: int, data: Sequence[bytes]) -> bytes | None:
        """Store a chunk's bytes before its offset moves (None), or return them joined for the
        transaction that moves the offset to store as a row."""
        raise NotImplementedError

    async def _upload_bytes(self, upload_id: str, size: int) -> bytes:
        raise NotImplementedError

    async def _package_bytes(self, package_sha256: str, size: int) -> bytes:
        raise NotImplementedError

    async def _forget_bytes(self, upload_id: str) -> None:
        """Called after a commit that dropped an upload or a package's bytes (rows go in it)."""

    async def _rows_bytes(self, upload_id: str, size: int | None) -> bytes | None:
        """Bytes kept as rows, joined; None if there are no rows, `StorageError` if they are
        not `size` bytes (when given)."""
        chunks = await self._read(queries.chunk_rows(upload_id))
        if not chunks:
            return None
        data = b"".join(chunks)
        if size is not None and len(data) != size:
            raise StorageError(
                f"package {upload_id[:16]} holds {len(data)} of its {size} bytes in the "
                "database: restore it from a backup"
            )
        return data

    # --- venue registry ---------------------------------------------------------------------

    async def add_venue(self, venue: VenueRecord) -> None:
        await self._write(queries.add_venue(venue))

    async def get_venue(self, venue_id: str) -> VenueRecord | None:
        return await self._read(queries.get_venue(venue_id))

    async def list_venues(self) -> list[VenueRecord]:
        return await self._read(queries.list_venues())

    # --- uploads ----------------------------------------------------------------------------

    async def create_upload(
        self, upload_id: str, venue_id: str, size: int, now: str, quota: UploadQuota | None = None
    ) -> UploadState:
        step = queries.create_upload(upload_id, venue_id, size, now, quota)
        return await self._write(step, sync=False)  # lost in a crash: the venue creates again

    async def stale_uploads(self, before: str) -> list[str]:
        return await self._read(queries.stale_uploads(before))

    async def get_upload(self, upload_id: str) -> UploadState:
        return await self._read(queries.upload_state(upload_id))

    async def append_chunk(
        self, upload_id: str, offset: int, data: bytes | Sequence[bytes], now: str
    ) -> int:
        pieces = chunk_pieces(data)
        size = chunk_size(pieces)
        async with self._upload_guard(upload_id):
            row = await self._put_chunk(upload_id, offset, pieces)
            # Without a row the bytes are already durable: lost in a crash, this commit is
            # repeated by the venue (HEAD gives the older offset).
            step = queries.move_offset(upload_id, offset, size, now, row)
            return await self._write(step, sync=row is not None)

    async def discard_upload(self, upload_id: str) -> None:
        async with self._upload_guard(upload_id):
            if await self._write(queries.discard_upload(upload_id)):
                await self._forget_bytes(upload_id)

    async def read_upload(self, upload_id: str) -> bytes:
        state = await self.get_upload(upload_id)
        return await self._upload_bytes(upload_id, state.offset)

    # --- the package log and retention ------------------------------------------------------

    async def accept_package(
        self, entry: PackageEntry, sign: ReceiptSigner, now: str
    ) -> dict[str, Any]:
        return await self._write(queries.accept_package(entry, sign, now))

    async def get_package(self, package_sha256: str) -> StoredPackage | None:
        return await self._read(queries.get_package(package_sha256))

    async def package_data(self, package_sha256: str) -> bytes:
        size = await self._read(queries.held_size(package_sha256))
        return await self._package_bytes(package_sha256, size)

    async def list_packages(self, session_id: str | None = None) -> list[StoredPackage]:
        return await self._read(queries.list_packages(session_id))

    async def delete_package(self, package_sha256: str, now: datetime) -> None:
        await self._write(queries.delete_package(package_sha256, now))
        # After the commit: a crash in between leaves a file to delete again, never a
        # package the log says is held without its bytes.
        await self._forget_bytes(package_sha256)

    async def set_results_published(self, session_id: str, results_at: str) -> None:
        await self._write(queries.set_results_published(session_id, results_at))

    async def results_published(self, session_id: str) -> str | None:
        return await self._read(queries.results_published(session_id))

    # --- releases ---------------------------------------------------------------------------

    async def record_release(
        self, session_id: str, venue_id: str, requested_at: str, now: str
    ) -> None:
        await self._write(queries.record_release(session_id, venue_id, requested_at, now))

    async def release_counts(self) -> dict[tuple[str, str], int]:
        return await self._read(queries.release_counts())

    # --- the live line (server.central.live) -----------------------------------------------

    async def record_heartbeat(
        self, venue_id: str, seq: int, kind: str, recorded_at: str, body: str, now: str
    ) -> bool:
        from server.central import live

        return await self._write(live.record_heartbeat(venue_id, seq, kind, recorded_at, body, now))

    async def latest_heartbeats(self) -> list[dict[str, Any]]:
        from server.central import live

        return await self._read(live.latest_heartbeats())

    async def heartbeat_seqs(self, venue_id: str) -> list[int]:
        from server.central import live

        return await self._read(live.heartbeat_seqs(venue_id))

    # --- the audit chain --------------------------------------------------------------------

    async def audit(
        self, actor: str, action: str, obj: str, details: dict[str, Any], now: str
    ) -> None:
        await self._write(queries.append_audit(actor, action, obj, details, now))

    async def audit_events(self) -> list[dict[str, Any]]:
        return await self._read(queries.audit_events())

    # --- central staff and their logins -----------------------------------------------------

    async def add_staff(
        self, login: str, name: str, role: str, password_hash: str, actor: str, now: str
    ) -> StaffAccount:
        return await self._write(queries.add_staff(login, name, role, password_hash, actor, now))

    async def disable_staff(self, login: str, reason: str, actor: str, now: str) -> None:
        await self._write(queries.disable_staff(login, reason, actor, now))

    async def list_staff(self) -> list[StaffAccount]:
        return await self._read(queries.list_staff())

    async def login_state(self, login: str, remote: str, since: str, limit: int) -> LoginState:
        return await self._read(queries.login_state(login, remote, since, limit))

    async def record_login_failure(
        self, login: str, remote: str, now: str, forget_before: str
    ) -> None:
        await self._write(queries.record_login_failure(login, remote, now, forget_before))

    async def open_staff_session(  # the arguments of StaffStore.open_staff_session
        self, account: StaffAccount, token_hash: str, csrf_hash: str, remote: str, now: str,
        expires_at: str,
    ) -> None:  # fmt: skip
        step = queries.open_staff_session(account, token_hash, csrf_hash, remote, now, expires_at)
        await self._write(step)

    async def find_staff_session(
        self, token_hash: str, now: str
    ) -> tuple[StaffAccount, str] | None:
        return await self._read(queries.find_staff_session(token_hash, now))

    async def end_staff_session(self, token_hash: str, account: StaffAccount, now: str) -> None:
        await self._write(queries.end_staff_session(token_hash, account, now))


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
