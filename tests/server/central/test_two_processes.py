"""Two real `cbt central serve` processes on one PostgreSQL take 100 concurrent uploads
(every fifth sent through both at once): no loss, no duplicate, one gap-free log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from paperpack.authority import Authority
from server.central.pg_store import PgStorage
from server.protocol.receipts import verify_receipt
from server.venue.upload import Backoff, upload_package
from tests.server.central.conftest import make_package, new_venue, reset_pg

UPLOADS = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cbt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, timeout=60
    )


def wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "central server exited during start-up"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"central server on port {port} did not start")


@pytest.fixture
def two_centrals(
    pg_database: str, authority_dir: Path, tmp_path: Path
) -> Iterator[tuple[list[str], Path, str]]:
    """Two `cbt central serve` processes sharing `pg_database`; yields their URLs."""
    asyncio.run(reset_pg(pg_database))
    central_dir = tmp_path / "central"
    done = cbt("central", "init", str(central_dir), "--authority", str(authority_dir))
    assert done.returncode == 0, done.stderr
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "central",
                "serve",
                str(central_dir),
                "--database",
                pg_database,
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_until_up(port, process)
        yield [f"http://127.0.0.1:{port}" for port in ports], central_dir, pg_database
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


@pytest.mark.slow
def test_two_processes_take_100_concurrent_uploads_without_loss_or_duplicate(
    two_centrals: tuple[list[str], Path, str], authority: Authority, tmp_path: Path
) -> None:
    """100 packages at once over two processes (some through both): each is held exactly once."""
    urls, central_dir, dsn = two_centrals
    venues = [new_venue("V-A"), new_venue("V-B")]
    for venue in venues:
        key = tmp_path / f"{venue.venue_id}.json"
        record = venue.record()
        keys = {"venue_id": venue.venue_id, "sign_public": record.signing_public,
                "wrap_public": record.wrap_public}  # fmt: skip
        key.write_text(json.dumps(keys))
        added = cbt("central", "venues", "add", str(central_dir), "--venue-id", venue.venue_id,
                    "--public-key", str(key), "--database", dsn)  # fmt: skip
        assert added.returncode == 0, added.stderr
    packages = [
        make_package(venues[n % 2], authority, session_id=f"S{n}", candidates=10, seed=n)
        for n in range(UPLOADS)
    ]
    backoff = Backoff(first_s=0.01, max_s=0.5, attempts=40)

    async def run() -> list[tuple[str, dict[str, object], dict[str, object]]]:
        async with aiohttp.ClientSession() as http:

            async def send(n: int, data: bytes) -> tuple[str, dict[str, object], dict[str, object]]:
                # Every package through one process; every fifth also through the other at once.
                targets = urls if n % 5 == 0 else [urls[n % 2]]
                sent = await asyncio.gather(
                    *(upload_package(http, url, data, authority.signing_public, backoff=backoff,
                                     venue_key=venues[n % 2].signing)
                      for url in targets)
                )  # fmt: skip
                return sent[0].package_sha256, sent[0].receipt, sent[-1].receipt

            return await asyncio.gather(*(send(n, data) for n, data in enumerate(packages)))

    results = asyncio.run(run())
    for (digest, first, second), data in zip(results, packages, strict=True):
        assert digest == hashlib.sha256(data).hexdigest()
        assert first == second
        verify_receipt(first, authority.signing_public, digest)

    async def held() -> tuple[list[int], dict[str, bytes], list[str]]:
        storage = PgStorage(dsn, pool_size=2)  # a reader: the rows say where the bytes are
        await storage.open()
        try:
            accepted = await storage.list_packages()
            data = {
                p.package_sha256: await storage.package_data(p.package_sha256) for p in accepted
            }
            assert not await storage.pool.fetchval("SELECT COUNT(*) FROM upload_chunks")
            folders = await storage.pool.fetch("SELECT directory FROM package_files")
            return [p.log_position for p in accepted], data, [r[0] for r in folders]
        finally:
            await storage.close()

    positions, by_hash, folders = asyncio.run(held())
    assert positions == list(range(1, UPLOADS + 1))
    assert by_hash == {hashlib.sha256(data).hexdigest(): data for data in packages}
    # Both processes wrote into the one folder (DIR/packages), one file per package, each
    # exactly the package's size: not one byte stored twice.
    assert set(folders) == {str(central_dir / "packages")} and len(folders) == UPLOADS
    files = {p.name: p.stat().st_size for p in (central_dir / "packages").iterdir()}
    assert files == {hashlib.sha256(data).hexdigest(): len(data) for data in packages}
