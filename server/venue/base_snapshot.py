"""The base snapshot (issue 16, F5): the whole venue database, encrypted, on the backup disk.

`cbt venue restore` (server.venue.restore) starts from it and adds the continuous backup's
rows. The server writes it when it starts (in the background), and again every five minutes if
anything but saves, submissions and logins changed (a package import, a seat move, a time
grant: any other audited action). The copy is made with SQLite's online backup API beside the
database (the venue's own disk), encrypted to the venue's and the centre's keys
(server.venue.backup_crypto, F12) into a temporary file on the backup disk, synced and renamed,
so the previous base stays until a new one is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlite_utils import Database

from server.errors import is_storage_full
from server.private import private_file
from server.store import Store
from server.venue.background import stop_task
from server.venue.backup import BackupError
from server.venue.backup_crypto import Recipients, seal_file

log = logging.getLogger(__name__)

BASE_FILE = "base.db.enc"
LEGACY_BASE_FILE = "base.db"  # unencrypted, written before F12; still restored from
MIN_FREE_AFTER_COPY = 64 << 20  # bytes left free on the venue's disk after a temporary copy
BASE_INTERVAL_S = 300.0  # how often the base snapshot is refreshed when set-up data changed
# Audit actions whose effect the restore rebuilds (attempts, journal, submissions); any other
# action recorded after the base snapshot changed something that is not in it.
REBUILT_ACTIONS = ("attempt.login", "attempt.relogin", "attempt.submitted", "attempt.closed")


def write_base_snapshot(db_path: Path, backup_dir: Path, recipients: Recipients) -> Path:
    """A consistent copy of the whole database, encrypted (F12), at backup_dir/base.db.enc.

    The plaintext copy (online backup API) is made beside the database, on the venue's own
    disk, encrypted into a temporary file on the backup disk, synced and renamed, so an old
    base stays until a new one is complete; then the plaintext copy is removed."""
    target = backup_dir / BASE_FILE
    tmp = backup_dir / (BASE_FILE + ".tmp")
    plain = db_path.with_name(db_path.name + ".base-snapshot")
    for stale in (tmp, plain):
        stale.unlink(missing_ok=True)
    check_room_for_copy(db_path)
    try:
        with (
            closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(private_file(plain))) as dst,
        ):
            src.backup(dst)
        seal_file(plain, tmp, recipients)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a partial copy would only take room on the backup disk
        raise
    finally:
        plain.unlink(missing_ok=True)
    os.replace(tmp, target)
    (backup_dir / LEGACY_BASE_FILE).unlink(missing_ok=True)  # a plaintext base of an older build
    fsync_dir(backup_dir)
    return target


def check_room_for_copy(db_path: Path) -> None:
    """Refuse (BackupError) a temporary plaintext copy that would leave the venue's disk with
    less than twice the database's size free: saves must never run out of room for it."""
    size = db_path.stat().st_size
    with contextlib.suppress(FileNotFoundError):
        size += db_path.with_name(db_path.name + "-wal").stat().st_size
    free = shutil.disk_usage(db_path.parent).free
    if free < 3 * size + MIN_FREE_AFTER_COPY:
        raise BackupError(
            f"not enough free space beside {db_path} for a temporary copy of the database "
            f"({size >> 20} MiB needed, {free >> 20} MiB free, twice that kept for saves): "
            "the previous copy stays; free space on the venue's disk"
        )


def _setup_events(db: Database) -> int:
    """The last audit event that changed something the restore does not rebuild."""
    marks = ", ".join("?" * len(REBUILT_ACTIONS))
    row = db.execute(
        f"SELECT coalesce(max(event_id), 0) FROM audit_events WHERE action NOT IN ({marks})",  # noqa: S608
        REBUILT_ACTIONS,
    ).fetchone()
    return int(row[0])


async def start_base_snapshots(
    store: Store,
    db_path: Path,
    backup_dir: Path,
    recipients: Recipients,
    *,
    interval_s: float = BASE_INTERVAL_S,
) -> None:
    """Write the base snapshot now, in the background (a big database takes seconds, and the
    server must not wait for it: the previous base and the continuous backup cover the time),
    then again every `interval_s` when something outside the journal, submissions and logins
    changed (any other audited action), until `store` closes; a snapshot being written then
    is finished first."""
    writing: list[asyncio.Future[Path]] = []

    async def snapshot() -> None:
        job = asyncio.ensure_future(
            asyncio.to_thread(write_base_snapshot, db_path, backup_dir, recipients)
        )
        writing[:] = [job]
        await asyncio.shield(job)  # cancelling the loop never abandons a file half-renamed

    async def refresh() -> None:
        last = -1  # the first pass always writes
        while True:
            try:
                now = await store.read(_setup_events)
                if now > last:
                    await snapshot()
                    last = now
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, BackupError) or is_storage_full(exc):  # retried next round
                    log.warning("backup.base_snapshot_skipped dir=%s reason=%s", backup_dir, exc)
                else:
                    log.exception("backup.base_snapshot_failed dir=%s", backup_dir)
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(refresh(), name="venue-base-snapshot")

    async def stop() -> None:
        await stop_task(task)
        for job in writing:
            with contextlib.suppress(Exception):
                await job

    store.before_close(stop)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
