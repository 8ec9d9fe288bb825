"""Where a package's bytes live: SQLite keeps them as files beside the database (and still
reads databases that kept them in rows); both stores refuse oversized and overlong chunks."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from paperpack.authority import Authority
from server.central.app import create_app
from server.central.settings import CentralSettings
from server.central.sqlite_store import SqliteStorage
from server.central.storage import StorageError
from server.clock import SettableClock, iso
from server.venue.upload import upload_package
from tests.server.central.conftest import START, Central, make_package, new_venue


def chunk_headers(chunk: bytes, offset: int) -> dict[str, str]:
    checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
    return {"Upload-Offset": str(offset), "Upload-Checksum": "sha256 " + checksum}


async def problem(resp: Any, status: int, slug: str) -> None:
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = await resp.json(content_type=None)
    assert body["type"].endswith("/" + slug) and body["detail"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_sqlite_keeps_each_package_as_one_file_beside_the_database(
    central: Central, authority: Authority
) -> None:
    """The accepted bytes are `<database>-packages/<sha256>`, identical; no BLOB rows."""
    venue = new_venue("V1")
    await central.register(venue)
    data = make_package(venue, authority, candidates=40)
    async with aiohttp.ClientSession() as http:
        result = await upload_package(
            http, central.url, data, authority.signing_public, chunk_size=3000,
            **central.signer(data),
        )  # fmt: skip
    folder = Path(central.database + "-packages")
    assert (folder / result.package_sha256).read_bytes() == data
    with sqlite3.connect(central.database) as db:
        assert db.execute("SELECT COUNT(*) FROM upload_chunks").fetchone()[0] == 0
    await central.storage.set_results_published("S1", iso(START))
    await central.storage.delete_package(result.package_sha256, START + timedelta(days=400))
    assert not (folder / result.package_sha256).exists()


async def test_a_database_with_chunks_in_rows_is_still_read(
    tmp_path: Path, authority: Authority
) -> None:
    """Packages accepted before the bytes moved to files are read from their rows; an upload
    left half-way then starts again at 0."""
    path = tmp_path / "central.db"
    storage = SqliteStorage(path)
    await storage.open()
    await storage.close()
    data = make_package(new_venue("V1"), authority)
    old, half = hashlib.sha256(data).hexdigest(), "ab" * 32
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE schema_migrations")  # as databases made before migrations
        db.execute("ALTER TABLE audit_events DROP COLUMN chain_format")  # ... which lacked it
        db.execute(
            "INSERT INTO packages VALUES (?, 'S1', 'V1', 1, ?, ?, 1, ?, '{}', 0, '{}', NULL)",
            (old, len(data), iso(START), "0" * 64),
        )
        db.execute("INSERT INTO upload_chunks VALUES (?, 0, ?)", (old, data[:500]))
        db.execute("INSERT INTO upload_chunks VALUES (?, 500, ?)", (old, data[500:]))
        db.execute("INSERT INTO uploads VALUES (?, 'V1', 100, 40, ?, ?)", (half, "x", "x"))
        db.execute("INSERT INTO upload_chunks VALUES (?, 0, ?)", (half, b"x" * 40))
    storage = SqliteStorage(path)
    await storage.open()
    try:
        assert await storage.package_data(old) == data
        assert (await storage.get_upload(half)).offset == 0
        (tmp_path / "central.db-packages" / old).write_bytes(data[:10])  # cut short on disk
        with pytest.raises(StorageError, match="cut short"):
            await storage.package_data(old)
    finally:
        await storage.close()


async def test_oversized_and_overlong_chunks_are_refused_with_a_problem(
    aiohttp_client: Any, database: str, tmp_path: Path, authority: Authority
) -> None:
    """A chunk above the chunk limit is 413 `chunk-too-large`, one past the package's size
    400 `chunk-past-end`; neither moves the offset."""
    settings = CentralSettings(
        directory=tmp_path, database=database, log_requests=False, pg_pool_size=2,
        max_chunk_bytes=1000,
    )  # fmt: skip
    app = create_app(settings, clock=SettableClock(START), authority=authority)
    client = await aiohttp_client(app)
    central = Central(client, SettableClock(START), database)
    venue = new_venue("V1")
    await central.register(venue)
    data = make_package(venue, authority)
    digest = hashlib.sha256(data).hexdigest()
    assert (await central.create(venue, data)).status == 201
    url = f"/api/v1/uploads/{digest}"
    await problem(await central.patch(venue, digest, data[:1001], 0), 413, "chunk-too-large")

    async def streamed() -> Any:  # no Content-Length: the limit is counted as bytes arrive
        for start in range(0, 1500, 500):
            yield data[start : start + 500]

    checksum = hashlib.sha256(data[:1500]).hexdigest()
    headers = {
        **central.signed(venue, "PATCH", url, checksum, "0"),
        **chunk_headers(data[:1500], 0),
    }
    await problem(await client.patch(url, data=streamed(), headers=headers), 413, "chunk-too-large")
    offset = 0
    while offset < len(data) - 500:
        step = min(1000, len(data) - 500 - offset)
        assert (
            await central.patch(venue, digest, data[offset : offset + step], offset)
        ).status == 204
        offset += step
    over = data[offset:] + b"x"
    await problem(await central.patch(venue, digest, over, offset), 400, "chunk-past-end")
    assert (await central.call(venue, "HEAD", url)).headers["Upload-Offset"] == str(offset)
    resp = await central.patch(venue, digest, data[offset:], offset)
    assert resp.status == 204 and resp.headers["Upload-Offset"] == str(len(data))


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_bytes_lost_before_finish_are_discarded_and_sent_again(
    central: Central, authority: Authority
) -> None:
    """If an upload's file is gone at finish (removed, lost with a disk), finish says
    `hash-mismatch` and drops the upload instead of failing with a 500 on every retry; the
    venue's next attempt is accepted."""
    venue = new_venue("V1")
    await central.register(venue)
    data = make_package(venue, authority)
    digest = hashlib.sha256(data).hexdigest()
    assert (await central.create(venue, data)).status == 201
    url = f"/api/v1/uploads/{digest}"
    assert (await central.patch(venue, digest, data, 0)).status == 204
    (Path(central.database + "-packages") / digest).unlink()
    await problem(await central.call(venue, "POST", url + "/finish"), 422, "hash-mismatch")
    assert (await central.call(venue, "HEAD", url)).status == 404
    async with aiohttp.ClientSession() as http:
        result = await upload_package(
            http, central.url, data, authority.signing_public, **central.signer(data)
        )
    assert await central.storage.package_data(result.package_sha256) == data
