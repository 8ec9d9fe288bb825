"""Cut connections: a loopback proxy drops the upload at 100 random byte counts, the venue
retries, and the centre ends up with exactly one byte-identical copy and a receipt that verifies."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator

import aiohttp
import pytest

from paperpack.authority import Authority
from server.protocol.receipts import verify_receipt
from server.venue.upload import Backoff, upload_package
from tests.server.central.conftest import Central, make_package, new_venue

CUTS = 100
FAST = Backoff(first_s=0.001, max_s=0.02, attempts=40)


class CuttingProxy:
    """A loopback TCP proxy that aborts the connection carrying byte number `cut_at` (both
    directions counted), once; every later connection passes through untouched."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.cut_at: int | None = None
        self.seen = 0
        self.cuts = 0
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def arm(self, cut_at: int | None) -> None:
        self.cut_at, self.seen = cut_at, 0

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peers: list[asyncio.StreamWriter],
    ) -> None:
        while data := await reader.read(65536):
            if self.cut_at is not None and self.seen + len(data) >= self.cut_at:
                writer.write(data[: self.cut_at - self.seen])
                self.cut_at = None
                self.cuts += 1
                for peer in peers:
                    peer.transport.abort()
                return
            self.seen += len(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        peers = [client_writer, up_writer]
        try:
            await asyncio.gather(
                self._pump(client_reader, up_writer, peers),
                self._pump(up_reader, client_writer, peers),
            )
        except (ConnectionError, OSError):
            pass
        finally:
            for peer in peers:
                peer.transport.abort()


@pytest.fixture
async def proxy(central: Central) -> AsyncIterator[CuttingProxy]:
    port = central.client.server.port
    assert port is not None
    cutter = CuttingProxy(port)
    await cutter.start()
    yield cutter
    await cutter.close()


@pytest.mark.slow
async def test_cut_at_100_random_points_leaves_exactly_one_identical_copy(
    central: Central, authority: Authority, proxy: CuttingProxy
) -> None:
    """A cut anywhere (request or answer), then retries: one identical copy, a valid receipt."""
    venue = new_venue("V1")
    await central.register(venue)
    url = f"http://127.0.0.1:{proxy.port}"
    rng = random.Random(20260601)
    async with aiohttp.ClientSession() as http:
        calibration = make_package(venue, authority, session_id="S-cal", candidates=15)
        proxy.arm(None)
        await upload_package(
            http, url, calibration, authority.signing_public, chunk_size=2048, backoff=FAST,
            **central.signer(calibration),
        )  # fmt: skip
        traffic = proxy.seen
        for n in range(CUTS):
            data = make_package(venue, authority, session_id=f"S{n}", candidates=15, seed=n)
            digest = hashlib.sha256(data).hexdigest()
            proxy.arm(rng.randint(1, traffic))
            result = await upload_package(
                http, url, data, authority.signing_public, chunk_size=2048, backoff=FAST,
                **central.signer(data),
            )  # fmt: skip
            verify_receipt(result.receipt, authority.signing_public, digest)
            assert await central.storage.package_data(digest) == data
            held = await central.storage.list_packages(f"S{n}")
            assert [p.package_sha256 for p in held] == [digest]
    packages = await central.storage.list_packages()
    assert [p.log_position for p in packages] == list(range(1, CUTS + 2))
    assert proxy.cuts >= CUTS * 0.9  # a cut point past the traffic of one upload is rare
