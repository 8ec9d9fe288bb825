"""Benchmark: N venues upload response packages to a real central server at once, against a
raw aiohttp upload of the same bytes to /dev/null, in the same run.

    python loadtests/bench_upload.py --venues 20 --candidates 3000
    python loadtests/bench_upload.py --venues 20 --candidates 3000 --database postgresql:///cbt_bench?host=/var/run/postgresql

Both servers run as their own processes on loopback: the central server is the real
`cbt central serve` (verify signature and hash, decrypt, append to the log, signed receipt,
on SQLite or PostgreSQL); the raw sink is a bare aiohttp handler that reads each body and
throws it away. The same client process sends the same packages to each, all venues at once.
Counts: every package must end with exactly one copy at the centre and a receipt that
verifies (0 lost, 0 duplicated). Figures go to loadtests/results/bench_upload.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paperpack import crypto  # noqa: E402 (after the path set-up)
from paperpack.authority import init_authority, load_authority  # noqa: E402
from server.central.app import open_storage  # noqa: E402
from server.central.receipts import verify_receipt  # noqa: E402
from server.central.settings import init_central  # noqa: E402
from server.central.storage import VenueRecord  # noqa: E402
from server.responsepkg import build_response_package  # noqa: E402
from server.venue.upload import Backoff, upload_package  # noqa: E402

ITEMS = 100
SAVES = 10  # journal entries per candidate


def contents(session_id: str, candidates: int, rng: random.Random) -> dict[str, Any]:
    """One venue's session: per candidate 100 answers and a 10-save hash-chained journal."""
    attempts = []
    for n in range(candidates):
        final = {
            f"t{rng.getrandbits(40):010x}": [f"o{rng.getrandbits(24):06x}"] for _ in range(ITEMS)
        }
        keys = list(final)
        journal = []
        prev = "0" * 64
        for seq in range(1, SAVES + 1):
            part = {k: final[k] for k in keys[(seq - 1) * 10 : seq * 10]}
            digest = f"{rng.getrandbits(256):064x}"  # synthetic: the centre checks chains later
            journal.append({"seq": seq, "position": seq, "saved_at": "2026-11-07T09:10:00.000Z",
                            "responses": part, "prev_hash": prev, "hash": digest})  # fmt: skip
            prev = digest
        attempts.append({"attempt_id": secrets.token_hex(8), "ticket": f"{n:08d}",
                         "journal": journal, "final_answers": final,
                         "submission": {"answers": final}})  # fmt: skip
    return {"session": {"session_id": session_id}, "attempts": attempts, "absences": [],
            "incidents": [], "violations": [], "time_grants": [], "pauses": [],
            "audit": []}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("a server exited during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def run_sink(port: int) -> None:
    """The raw baseline: read every body, keep nothing."""

    async def sink(request: web.Request) -> web.Response:
        size = 0
        async for chunk in request.content.iter_chunked(1 << 20):
            size += len(chunk)
        return web.json_response({"received": size})

    app = web.Application(client_max_size=1 << 34)
    app.router.add_post("/sink", sink)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def raw_upload(url: str, packages: list[bytes]) -> float:
    async with aiohttp.ClientSession() as http:

        async def one(data: bytes) -> None:
            async with http.post(f"{url}/sink", data=data) as resp:
                assert (await resp.json())["received"] == len(data)

        began = time.perf_counter()
        await asyncio.gather(*(one(data) for data in packages))
        return time.perf_counter() - began


async def central_upload(
    url: str, packages: list[bytes], public: crypto.Ed25519PublicKey, chunk_size: int
) -> tuple[float, list[dict[str, Any]]]:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        began = time.perf_counter()
        results = await asyncio.gather(
            *(
                upload_package(
                    http, url, data, public, chunk_size=chunk_size, backoff=Backoff(attempts=10)
                )
                for data in packages
            )
        )
        elapsed = time.perf_counter() - began
    return elapsed, [r.receipt for r in results]


async def register(database: str, venues: list[VenueRecord]) -> None:
    storage = open_storage(database)
    await storage.open()
    for venue in venues:
        await storage.add_venue(venue)
    await storage.close()


async def held(database: str) -> dict[str, int]:
    storage = open_storage(database)
    await storage.open()
    try:
        packages = await storage.list_packages()
        return {p.package_sha256: p.log_position for p in packages}
    finally:
        await storage.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venues", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=3000, help="candidates per venue")
    parser.add_argument(
        "--database", help="postgresql:// URL (must exist, will be emptied); default SQLite"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "loadtests" / "results" / "bench_upload.json"
    )
    parser.add_argument("--chunk-mb", type=int, default=8, help="PATCH size, MiB")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)  # internal: run the raw sink
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench_upload_"))
    init_authority(work / "auth")
    authority = load_authority(work / "auth")
    init_central(work / "central", work / "auth")
    database = args.database or str(work / "central" / "central.db")
    if args.database:
        import asyncpg

        async def empty() -> None:
            conn = await asyncpg.connect(args.database)
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            await conn.close()

        asyncio.run(empty())

    print(f"building {args.venues} packages of {args.candidates} candidates ...", flush=True)
    rng = random.Random(7)
    venues, packages = [], []
    built = time.perf_counter()
    # One venue's answers, sealed for every venue: each package is still distinct ciphertext
    # under its own content key and signature, and building stays quick.
    answers = contents("S1", args.candidates, rng)
    for n in range(args.venues):
        key, wrap = crypto.generate_signing_key(), crypto.generate_wrapping_key()
        venue_id = f"V{n:03d}"
        venues.append(
            VenueRecord(venue_id, venue_id, crypto.public_key_text(key.public_key()),
                        crypto.public_key_text(wrap.public_key()), "2026-11-07T00:00:00.000Z")
        )  # fmt: skip
        packages.append(
            build_response_package(
                answers, session_id="S1", venue_id=venue_id, export_seq=1,
                created_at="2026-11-07T12:00:00.000Z", venue_key=key,
                central_wrap_public=authority.wrapping_public,
            )
        )  # fmt: skip
    build_s = time.perf_counter() - built
    asyncio.run(register(database, venues))
    total = sum(len(p) for p in packages)

    central_port, sink_port = free_port(), free_port()
    servers = [
        subprocess.Popen([sys.executable, "-m", "server.cli", "central", "serve",
                          str(work / "central"), "--database", database,
                          "--port", str(central_port)], cwd=ROOT,
                         env={**os.environ, "CBT_CENTRAL_LOG_REQUESTS": "0"}),
        subprocess.Popen([sys.executable, __file__, "--sink", str(sink_port)], cwd=ROOT),
    ]  # fmt: skip
    try:
        wait_for(central_port, servers[0])
        wait_for(sink_port, servers[1])
        raw_s = asyncio.run(raw_upload(f"http://127.0.0.1:{sink_port}", packages))
        central_s, receipts = asyncio.run(
            central_upload(
                f"http://127.0.0.1:{central_port}",
                packages,
                authority.signing_public,
                args.chunk_mb << 20,
            )
        )
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=20)

    digests = [hashlib.sha256(p).hexdigest() for p in packages]
    for receipt, digest in zip(receipts, digests, strict=True):
        verify_receipt(receipt, authority.signing_public, digest)
    log = asyncio.run(held(database))
    lost = sum(1 for d in digests if d not in log)
    duplicated = len(log) - len(set(log.values()))
    figures = {
        "venues": args.venues,
        "chunk_mb": args.chunk_mb,
        "candidates_per_venue": args.candidates,
        "backend": "postgresql" if args.database else "sqlite",
        "bytes": total,
        "build_s": round(build_s, 2),
        "raw_s": round(raw_s, 3),
        "raw_mb_s": round(total / raw_s / 1e6, 1),
        "central_s": round(central_s, 3),
        "central_mb_s": round(total / central_s / 1e6, 1),
        "ratio": round(raw_s / central_s, 3),
        "lost": lost,
        "duplicated": duplicated,
        "receipts_verified": len(receipts),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{'figure':<28}{'value':>14}")
    for key, value in figures.items():
        print(f"{key:<28}{value!s:>14}")
    ok = lost == 0 and duplicated == 0 and figures["ratio"] >= 0.5
    print("PASS" if ok else "FAIL: target is 0 lost, 0 duplicated, central >= 0.5x raw")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
