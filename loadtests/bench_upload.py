"""Benchmark: N venues upload response packages to a real central server at once, against a
raw aiohttp upload of the same bytes to /dev/null and against the durable floor, in the same
run, on SQLite and on PostgreSQL.

    python loadtests/bench_upload.py --venues 20 --candidates 3000 --rounds 3
    python loadtests/bench_upload.py --stores sqlite          # --pg DSN names the server
    git worktree add --detach /tmp/before <commit>
    python loadtests/bench_upload.py --rounds 3 --compare-tree /tmp/before   # before and after

Both servers run as their own processes on loopback: the central server is the real
`cbt central serve` (store each chunk durably, verify the package hash, the signature, the
payload hash and the key unwrap, append to the log, signed receipt; on SQLite, and on a
PostgreSQL database made for the run, empty for each run); the raw sink is a bare aiohttp
handler that reads each body and throws it away. Beside them, "disk" writes and fdatasyncs
the same bytes to files, 16 at a time: the floor for any store that keeps them durably. The
same client process sends the same packages to each, all venues at once; with --rounds the
runs interleave (raw, disk, then per store [before,] central) and the medians are reported,
each round's ratios taken against that round's raw time and that round's floor. Target
(PERFORMANCE.md): central >= 0.4x raw on each store, 0 lost, 0 duplicated.
--compare-tree runs a second central server from another checkout in the same rounds, for
before/after figures from one run.
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

TARGET_RATIO = 0.4  # central upload throughput / raw aiohttp upload, same run

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


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    cpu_before, client_before = process_cpu_s(server.pid), time.process_time()
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
        server_cpu = process_cpu_s(server.pid) - cpu_before
        client_cpu = time.process_time() - client_before  # the venue's uploader, all packages
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
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venues", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=3000, help="candidates per venue")
    parser.add_argument(
        "--stores", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"]
    )
    parser.add_argument(
        "--pg", default=os.environ.get("CBT_TEST_PG_DSN", "postgresql:///postgres?host=/var/run/postgresql"),
        help="PostgreSQL server: a database cbt_bench_upload_<pid> is made there and dropped",
    )  # fmt: skip
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
    stores: dict[str, str | None] = {}
    for store in args.stores:
        stores[store] = asyncio.run(make_pg(args.pg)) if store == "postgres" else None
    raw_runs: list[float] = []
    disk_runs: list[float] = []
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {
        (store, label): [] for store in stores for label in trees
    }
    try:
        for round_no in range(args.rounds):
            raw_runs.append(run_raw(packages))
            disk_runs.append(run_disk(packages, work / f"disk-{round_no}"))
            for store, database in stores.items():
                for label, tree in trees.items():
                    runs[store, label].append(
                        run_central(tree, f"{store}-{label}-{round_no}", work, database,
                                    venues, packages, authority, args.chunk_mb << 20, signers)
                    )  # fmt: skip
            times = ", ".join(f"{s} {lab} {r[-1]['seconds']:.3f} s" for (s, lab), r in runs.items())
            print(f"round {round_no + 1}: raw {raw_runs[-1]:.3f} s, disk {disk_runs[-1]:.3f} s, "
                  f"{times}", flush=True)  # fmt: skip
    finally:
        for database in stores.values():
            if database:
                asyncio.run(drop_pg(args.pg, database))
    return report(args, trees, runs, raw_runs, disk_runs, total, build_s)


def median_ratio(tops: list[float], runs: list[dict[str, Any]]) -> float:
    """The median over rounds of (that round's reference time / that round's central time)."""
    return statistics.median(t / r["seconds"] for t, r in zip(tops, runs, strict=True))


def report(
    args: argparse.Namespace,
    trees: dict[str, Path],
    runs: dict[tuple[str, str], list[dict[str, Any]]],
    raw_runs: list[float],
    disk_runs: list[float],
    total: int,
    build_s: float,
) -> int:
    """Print the table and the checks, write the JSON; exit code 1 if a target is missed."""
    raw_s, disk_s = statistics.median(raw_runs), statistics.median(disk_runs)
    figures: dict[str, Any] = {
        "venues": args.venues, "chunk_mb": args.chunk_mb,
        "candidates_per_venue": args.candidates, "rounds": args.rounds,
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "bytes": total, "build_s": round(build_s, 2),
        "raw_s": round(raw_s, 3), "raw_mb_s": round(total / raw_s / 1e6, 1),
        # Writing the bytes durably and nothing else: what no durable store can beat.
        "disk_s": round(disk_s, 3), "disk_mb_s": round(total / disk_s / 1e6, 1),
        "disk_ratio": round(
            statistics.median(r / d for r, d in zip(raw_runs, disk_runs, strict=True)), 3
        ),
    }  # fmt: skip
    print(f"{'':<22}{'s':>8}{'MB/s':>8}{'x raw':>8}{'x floor':>9}{'lost/dup':>10}{'receipts':>10}"
          f"{'server CPU s':>14}{'client CPU s':>14}")  # fmt: skip
    print(f"{'raw aiohttp':<22}{raw_s:>8.3f}{total / raw_s / 1e6:>8.1f}{1:>8.2f}")
    floor_vs_raw = figures["disk_ratio"]
    print(f"{'disk (the floor)':<22}{disk_s:>8.3f}{total / disk_s / 1e6:>8.1f}{floor_vs_raw:>8.2f}"
          f"{1:>9.2f}")  # fmt: skip
    checks: dict[str, bool] = {}
    for (store, label), done in runs.items():
        seconds = statistics.median(r["seconds"] for r in done)
        lost = sum(r["lost"] for r in done)
        duplicated = sum(r["duplicated"] for r in done)
        verified = sum(r["receipts_verified"] for r in done)
        key = f"{store}_{label}"
        figures[key] = {
            "s": round(seconds, 3), "mb_s": round(total / seconds / 1e6, 1),
            "ratio_raw": round(median_ratio(raw_runs, done), 3),
            "ratio_floor": round(median_ratio(disk_runs, done), 3),
            "lost": lost, "duplicated": duplicated, "receipts_verified": verified,
            "server_cpu_s": round(statistics.median(r["server_cpu_s"] for r in done), 3),
            "client_cpu_s": round(statistics.median(r["client_cpu_s"] for r in done), 3),
            "rounds_s": [round(r["seconds"], 3) for r in done],
        }  # fmt: skip
        f = figures[key]
        print(f"{store + ' ' + label:<22}{seconds:>8.3f}{f['mb_s']:>8.1f}{f['ratio_raw']:>8.2f}"
              f"{f['ratio_floor']:>9.2f}{lost:>6}/{duplicated:<3}{verified:>10}"
              f"{f['server_cpu_s']:>14.2f}{f['client_cpu_s']:>14.2f}")  # fmt: skip
        if label == "central":
            checks[f"{store}: 0 lost, 0 duplicated"] = lost == 0 and duplicated == 0
            checks[f"{store}: central {f['ratio_raw']} x raw >= {TARGET_RATIO}"] = (
                f["ratio_raw"] >= TARGET_RATIO
            )
    figures["checks"] = checks
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"load average {figures['load_average']}; {total / 1e6:.1f} MB in {args.venues} "
          f"packages, {args.chunk_mb} MiB chunks, medians of {args.rounds} round(s)")  # fmt: skip
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'MISS'} {name}")
    return 0 if all(checks.values()) else 1


async def make_pg(dsn: str) -> str:
    """A new database on the server at `dsn` for this run; its URL."""
    from urllib.parse import urlsplit

    import asyncpg

    name = f"cbt_bench_upload_{os.getpid()}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(dsn)
    return f"{parts.scheme}://{parts.netloc}/{name}" + (f"?{parts.query}" if parts.query else "")


async def drop_pg(dsn: str, url: str) -> None:
    from urllib.parse import urlsplit

    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)'
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
