"""Benchmark: N venues upload response packages to a real central server at once, against a
raw aiohttp upload of the same bytes to /dev/null, in the same run.

    python loadtests/bench_upload.py --venues 20 --candidates 3000
    python loadtests/bench_upload.py --venues 20 --candidates 3000 --database postgresql:///cbt_bench?host=/var/run/postgresql
    git worktree add --detach /tmp/before <commit>
    python loadtests/bench_upload.py --rounds 3 --compare-tree /tmp/before   # before and after

Both servers run as their own processes on loopback: the central server is the real
`cbt central serve` (store each chunk durably, verify the package hash, the signature, the
payload hash and the key unwrap, append to the log, signed receipt; on SQLite or PostgreSQL,
empty for each run); the raw sink is a bare aiohttp handler that reads each body and throws
it away. Beside them, "disk" writes and fdatasyncs the same bytes to files, 16 at a time:
the floor for any store that keeps them durably. The same client process sends the same
packages to each, all venues at once; with --rounds the runs interleave (raw, disk,
[before,] central) and the medians are reported, each round's ratio taken against that
round's raw time. --compare-tree runs a second central server from another checkout in the
same rounds, for before/after figures from one run.
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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paperpack import crypto  # noqa: E402 (after the path set-up)
from paperpack.authority import init_authority, load_authority  # noqa: E402
from server.central.app import open_storage  # noqa: E402
from server.central.settings import init_central  # noqa: E402
from server.central.storage import VenueRecord  # noqa: E402
from server.protocol.receipts import verify_receipt  # noqa: E402
from server.protocol.response_package import build_response_package  # noqa: E402
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
    url: str,
    packages: list[bytes],
    public: crypto.Ed25519PublicKey,
    chunk_size: int,
    signers: list[crypto.Ed25519PrivateKey],
) -> tuple[float, list[dict[str, Any]]]:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        began = time.perf_counter()
        results = await asyncio.gather(
            *(
                upload_package(
                    http,
                    url,
                    data,
                    public,
                    chunk_size=chunk_size,
                    backoff=Backoff(attempts=10),
                    venue_key=key,
                )
                for data, key in zip(packages, signers, strict=True)
            )
        )
        elapsed = time.perf_counter() - began
    return elapsed, [r.receipt for r in results]


REGISTER = """
import asyncio, json, sys
from server.central.app import open_storage
from server.central.storage import VenueRecord

async def register():
    storage = open_storage(sys.argv[1])
    await storage.open()
    try:
        for venue in json.load(sys.stdin):
            await storage.add_venue(VenueRecord(*venue))
    finally:
        await storage.close()

asyncio.run(register())
"""


def register(tree: Path, database: str, venues: list[VenueRecord]) -> None:
    """Register the venues with the store code of `tree`, so its database has the schema
    that tree makes (an older tree's server cannot write into a newer schema)."""
    rows = [[v.venue_id, v.name, v.signing_public, v.wrap_public, v.registered_at]
            for v in venues]  # fmt: skip
    command = [sys.executable, "-c", REGISTER, database]
    subprocess.run(command, cwd=tree, input=json.dumps(rows), text=True, check=True, timeout=120)


async def held(database: str) -> dict[str, int]:
    storage = open_storage(database)
    await storage.open()
    try:
        packages = await storage.list_packages()
        return {p.package_sha256: p.log_position for p in packages}
    finally:
        await storage.close()


async def empty_pg(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


def start_server(command: list[str], cwd: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CBT_CENTRAL_LOG_REQUESTS": "0"}
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen(command, cwd=cwd, env=env)
    wait_for(port, process)
    return process


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=20)


def run_raw(packages: list[bytes]) -> float:
    """One upload of every package to the raw sink, in a process of its own."""
    port = free_port()
    sink = start_server([sys.executable, __file__, "--sink", str(port)], ROOT, port)
    try:
        return asyncio.run(raw_upload(f"http://127.0.0.1:{port}", packages))
    finally:
        stop_server(sink)


def run_disk(packages: list[bytes], folder: Path) -> float:
    """The durable floor: write and fdatasync every package to its own file, 16 at a time
    (as the SQLite store does), on the file system the central store uses."""
    folder.mkdir()

    def write(number: int) -> None:
        fd = os.open(folder / str(number), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.write(fd, packages[number])
            os.fdatasync(fd)
        finally:
            os.close(fd)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(len(packages))))
    seconds = time.perf_counter() - began
    shutil.rmtree(folder)
    return seconds


def run_central(
    tree: Path,
    label: str,
    work: Path,
    database: str | None,
    venues: list[VenueRecord],
    packages: list[bytes],
    authority: Any,
    chunk_size: int,
    signers: list[crypto.Ed25519PrivateKey],
) -> dict[str, Any]:
    """One upload of every package to `cbt central serve` run from `tree`, on an empty
    store; then every receipt is verified and the store counted."""
    central = work / f"central-{label}"
    init_central(central, work / "auth")
    if database:
        asyncio.run(empty_pg(database))
    store = database or str(central / "central.db")
    register(tree, store, venues)
    port = free_port()
    command = [sys.executable, "-m", "server.cli", "central", "serve", str(central),
               "--database", store, "--port", str(port)]  # fmt: skip
    server = start_server(command, tree, port)
    try:
        seconds, receipts = asyncio.run(
            central_upload(
                f"http://127.0.0.1:{port}",
                packages,
                authority.signing_public,
                chunk_size,
                signers,
            )
        )
    finally:
        stop_server(server)
    digests = [hashlib.sha256(p).hexdigest() for p in packages]
    for receipt, digest in zip(receipts, digests, strict=True):
        verify_receipt(receipt, authority.signing_public, digest)
    log = asyncio.run(held(store))
    shutil.rmtree(central)  # its copy of every package: the next runs need the disk more
    return {
        "seconds": seconds,
        "lost": sum(1 for d in digests if d not in log),
        "duplicated": len(log) - len(set(log.values())),
        "receipts_verified": len(receipts),
    }


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
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat raw and central (medians are reported)"
    )
    parser.add_argument(
        "--compare-tree",
        type=Path,
        help="also run the central server from this checkout (e.g. a `git worktree` of an "
        "older commit), interleaved with this one: before and after in the same run",
    )
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)  # internal: run the raw sink
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench_upload_"))
    try:
        return bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the stores of every run: ~0.7 GB at 20 venues


def bench(args: argparse.Namespace, work: Path) -> int:
    """Build the packages in `work`, run every round, print and write the figures."""
    init_authority(work / "auth")
    authority = load_authority(work / "auth")

    print(f"building {args.venues} packages of {args.candidates} candidates ...", flush=True)
    rng = random.Random(7)
    venues, packages, signers = [], [], []
    built = time.perf_counter()
    # One venue's answers, sealed for every venue: each package is still distinct ciphertext
    # under its own content key and signature, and building stays quick.
    answers = contents("S1", args.candidates, rng)
    for n in range(args.venues):
        key, wrap = crypto.generate_signing_key(), crypto.generate_wrapping_key()
        venue_id = f"V{n:03d}"
        signers.append(key)
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
    total = sum(len(p) for p in packages)

    trees = {"central": ROOT}
    if args.compare_tree:
        trees = {"before": args.compare_tree.resolve(), "central": ROOT}
    raw_runs: list[float] = []
    disk_runs: list[float] = []
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    for round_no in range(args.rounds):
        raw_runs.append(run_raw(packages))
        disk_runs.append(run_disk(packages, work / f"disk-{round_no}"))
        for label, tree in trees.items():
            runs[label].append(
                run_central(tree, f"{label}-{round_no}", work, args.database, venues,
                            packages, authority, args.chunk_mb << 20, signers)
            )  # fmt: skip
        times = ", ".join(f"{label} {runs[label][-1]['seconds']:.3f} s" for label in trees)
        print(
            f"round {round_no + 1}: raw {raw_runs[-1]:.3f} s, disk {disk_runs[-1]:.3f} s, {times}",
            flush=True,
        )

    raw_s = statistics.median(raw_runs)
    figures: dict[str, Any] = {
        "venues": args.venues,
        "chunk_mb": args.chunk_mb,
        "candidates_per_venue": args.candidates,
        "backend": "postgresql" if args.database else "sqlite",
        "rounds": args.rounds,
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "bytes": total,
        "build_s": round(build_s, 2),
        "raw_s": round(raw_s, 3),
        "raw_mb_s": round(total / raw_s / 1e6, 1),
        # Writing the bytes durably and nothing else: what no durable store can beat.
        "disk_s": round(statistics.median(disk_runs), 3),
        "disk_mb_s": round(total / statistics.median(disk_runs) / 1e6, 1),
        "disk_ratio": round(
            statistics.median(raw / disk for raw, disk in zip(raw_runs, disk_runs, strict=True)),
            3,
        ),
    }
    ok = True
    for label in trees:
        seconds = statistics.median(r["seconds"] for r in runs[label])
        # Each round's central time against that round's raw time, then the median.
        ratio = statistics.median(
            raw / r["seconds"] for raw, r in zip(raw_runs, runs[label], strict=True)
        )
        lost = sum(r["lost"] for r in runs[label])
        duplicated = sum(r["duplicated"] for r in runs[label])
        verified = sum(r["receipts_verified"] for r in runs[label])
        # This checkout's counts keep their old names; the compared checkout's are prefixed.
        prefix = "" if label == "central" else f"{label}_"
        figures[f"{label}_s"] = round(seconds, 3)
        figures[f"{label}_mb_s"] = round(total / seconds / 1e6, 1)
        figures[f"{prefix}ratio"] = round(ratio, 3)
        figures[f"{prefix}lost"] = lost
        figures[f"{prefix}duplicated"] = duplicated
        figures[f"{prefix}receipts_verified"] = verified
        ok = ok and lost == 0 and duplicated == 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{'figure':<28}{'value':>14}")
    for figure, value in figures.items():
        print(f"{figure:<28}{value!s:>14}")
    ok = ok and figures["ratio"] >= 0.5
    print("PASS" if ok else "FAIL: target is 0 lost, 0 duplicated, central >= 0.5x raw")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
