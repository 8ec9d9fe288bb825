"""Package bytes as files: one file per upload, named by the package's SHA-256.

Both back-ends can keep a package's bytes here (SQLite always, beside its database;
PostgreSQL in the folder `CBT_CENTRAL_PACKAGES_DIR` names, by default `DIR/packages`, with a
row in `package_files` saying where). A chunk is `pwrite`n at its offset and fdatasync'd on a
worker thread (several uploads' writes and syncs overlap; the disk merges them) before the
transaction that moves the upload's offset commits: a chunk counts only once it is on disk.
Bytes an interrupted attempt left past the offset are overwritten by the next chunk, and the
whole package is hashed again before it is accepted, so no stale byte can be accepted.
Chunks of one upload are written one at a time in a process (a lock per upload).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from server.central.storage import StorageError

T = TypeVar("T")
FILE_THREADS = 16  # every upload of a busy moment has its fdatasync in flight at once


def sync_dir(path: Path) -> None:
    """fsync a directory, so the names created in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_chunk_file(path: Path, offset: int, data: Sequence[bytes], *, cut: bool) -> None:
    """Write the chunk at `offset` and fdatasync it (on a worker thread); `cut` also cuts the
    file at the chunk's end (one process per file only: another may be writing past it)."""
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
        if cut:
            os.ftruncate(fd, position)  # bytes of an earlier, cut attempt past here are void
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if created:
        sync_dir(path.parent)  # the new name is durable too


def read_file(path: Path, size: int, upload_id: str) -> bytes | None:
    """The first `size` bytes of an upload's file; None if there is no file."""
    try:
        with open(path, "rb") as file:
            data = file.read(size)
    except FileNotFoundError:
        return None
    if len(data) != size:
        raise StorageError(
            f"package {upload_id[:16]} holds {len(data)} of its {size} bytes on disk: "
            f"the file in {path.parent} was cut short; restore it from a backup"
        )
    return data


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class FileLocks:
    """A thread pool for the files and one lock per upload being written in this process."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=FILE_THREADS, thread_name_prefix="central-files")
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[None]:
        """One writer per upload's file at a time; the entry goes with the last user."""
        lock, users = self._locks.setdefault(upload_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[upload_id]

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)
