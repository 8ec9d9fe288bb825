"""A national session, simulated: N venues' response packages into a centre of P processes on
one PostgreSQL, then the session scored with the scoring split across P processes.

For each N (venues, 250 candidates each by default, a 100-item paper) and each P:

1. a fresh PostgreSQL database and central directory; the N venues registered;
2. ingest: P `cbt central serve` processes (as behind a load balancer: the client sends
   venue k to process k mod P); every venue's real signed package uploaded with the venue's
   own upload client (`server.venue.upload.upload_package`), `--concurrency` at a time; every
   receipt verified and the store counted (0 lost, 0 duplicated);
3. score: `server.scoring.split.score_session_split` on P worker processes (in a child
   process of its own, so its peak memory is its own), the results files written as
   `cbt central score` writes them.

Printed per run: time to ingest, MB/s, the servers' CPU and peak RSS, time to score,
candidates per minute, peak RSS of the scoring parent and of its largest worker, the load
average; then the growth per venue between the N of the same P. The packages come from
`national_data` (real producers) and are cached under `--cache` between runs.

Run:  python loadtests/national.py --venues 100 500 2000 --processes 1 2 4
      python loadtests/national.py --venues 2 --candidates 5 --processes 1   (a quick check)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

import national_data as data  # noqa: E402 (after the path set-up)

from paperpack.authority import load_authority  # noqa: E402
from server.central.app import open_storage  # noqa: E402
from server.central.settings import init_central  # noqa: E402
from server.central.storage import VenueRecord  # noqa: E402
from server.clock import iso  # noqa: E402
from server.protocol.receipts import verify_receipt  # noqa: E402
from server.venue.upload import Backoff, upload_package  # noqa: E402

DEFAULT_PG = os.environ.get("CBT_TEST_PG_DSN", "postgresql:///postgres?host=/var/run/postgresql")
SCORE_WITHIN_S = 600  # 500,000 candidates scored in under 10 minutes of wall time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load() -> float:
    return os.getloadavg()[0]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def central_for(work: Path, root: Path, n: int) -> Path:
    """A central directory whose authority holds the session packed for the first n venues
    (the cache's keys, and links to n venues' central material)."""
    authority = work / "authority"
    (authority / "sessions" / data.SESSION_ID).mkdir(parents=True)
    for path in (root / "authority").iterdir():
        if path.is_file():
            shutil.copy2(path, authority / path.name)
    source = root / "authority" / "sessions" / data.SESSION_ID
    for venue in data.venues(root, n):
        (authority / "sessions" / data.SESSION_ID / venue["venue_id"]).symlink_to(
            source / venue["venue_id"]
        )
    init_central(work / "central", authority)
    return work / "central"


async def fresh_database(dsn: str, name: str) -> str:
    from urllib.parse import urlsplit

    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(dsn)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{name}{query}"


async def drop_database(dsn: str, url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        from urllib.parse import urlsplit

        name = urlsplit(url).path.lstrip("/")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def register(url: str, venues: list[dict[str, Any]]) -> None:
    storage = open_storage(url, pg_pool_size=2)
    await storage.open()
    try:
        for v in venues:
            await storage.add_venue(
                VenueRecord(v["venue_id"], v["venue_id"], v["signing_public"], v["wrap_public"],
                            iso(data.START - timedelta(days=30)))
            )  # fmt: skip
    finally:
        await storage.close()


def start_servers(central: Path, url: str, count: int) -> list[tuple[subprocess.Popen[bytes], int]]:
    env = {**os.environ, "CBT_CENTRAL_LOG_REQUESTS": "0"}
    out = []
    for _ in range(count):
        port = free_port()
        command = [sys.executable, "-m", "server.cli", "central", "serve", str(central),
                   "--database", url, "--port", str(port)]  # fmt: skip
        out.append((subprocess.Popen(command, cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL), port))  # fmt: skip
    for process, port in out:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"cbt central serve on port {port} exited during start-up")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"cbt central serve on port {port} did not start") from None
                time.sleep(0.1)
    return out


async def ingest(
    urls: list[str], packages: list[Path], keys: list[Any], public: Any, concurrency: int
) -> tuple[float, list[tuple[str, dict[str, Any]]], int]:
    """Every package through its process (venue k -> process k mod P); wall time, receipts."""
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    sent = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def one(k: int, path: Path) -> tuple[str, dict[str, Any]]:
            nonlocal sent
            async with gate:
                blob = path.read_bytes()
                sent += len(blob)
                done = await upload_package(
                    http, urls[k % len(urls)], blob, public, backoff=Backoff(attempts=20),
                    venue_key=keys[k],  # every call signed by the venue (issue 16, F1)
                )  # fmt: skip
                return done.package_sha256, done.receipt

        began = time.perf_counter()
        results = await asyncio.gather(*(one(k, p) for k, p in enumerate(packages)))
        return time.perf_counter() - began, results, sent


async def count_held(url: str) -> tuple[int, int]:
    storage = open_storage(url, pg_pool_size=1)
    await storage.open()
    try:
        held = await storage.list_packages(data.SESSION_ID)
        return len(held), len({p.package_sha256 for p in held})
    finally:
        await storage.close()


# --- the scoring child ------------------------------------------------------------------


def score_child(central: Path, url: str, workers: int) -> dict[str, Any]:
    """Runs in its own process: score the session split over `workers`, write the results."""
    from server.scoring.marks import ensure_private
    from server.scoring.pipeline import results_dir
    from server.scoring.results import write_results
    from server.scoring.split import score_session_split

    now = data.START + timedelta(days=1)

    async def go() -> dict[str, Any]:
        storage = open_storage(url, pg_pool_size=1)
        await storage.open()
        try:
            folder = results_dir(central, data.SESSION_ID)
            ensure_private(folder)
            began, cpu = time.perf_counter(), time.process_time()
            paper, results = await score_session_split(
                storage, central, url, data.SESSION_ID, now, folder, workers
            )
            scored = time.perf_counter()
            write_results(folder, data.SESSION_ID, paper, results, central / "scores.csv")
            ended = time.perf_counter()
            statuses: dict[str, int] = {}
            for r in results:
                statuses[r.status] = statuses.get(r.status, 0) + 1
            return {"candidates": len(results), "statuses": statuses,
                    "score_s": scored - began, "write_s": ended - scored,
                    "total_s": ended - began,
                    "parent_cpu_s": time.process_time() - cpu}  # fmt: skip
        finally:
            await storage.close()

    out = asyncio.run(go())
    out["parent_peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["worker_peak_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out["workers_cpu_s"] = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
    return out


def score(central: Path, url: str, workers: int) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--score-child", str(central),
               "--database", url, "--processes", str(workers)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"scoring failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- one run ------------------------------------------------------------------------------


def run_one(root: Path, n: int, p: int, dsn: str, concurrency: int) -> dict[str, Any]:
    venues = data.venues(root, n)
    packages = [data.package_path(root, v["venue_id"]) for v in venues]
    keys = [data.signing_key(v) for v in venues]
    with tempfile.TemporaryDirectory(prefix="cbt-national-") as tmp:
        central = central_for(Path(tmp), root, n)
        authority = load_authority(Path(tmp) / "authority")
        url = asyncio.run(fresh_database(dsn, f"cbt_national_{os.getpid()}_{n}_{p}"))
        try:
            asyncio.run(register(url, venues))
            servers = start_servers(central, url, p)
            try:
                cpu0 = [proc_cpu_s(s.pid) for s, _ in servers]
                load_before = load()
                urls = [f"http://127.0.0.1:{port}" for _, port in servers]
                wall, receipts, sent = asyncio.run(
                    ingest(urls, packages, keys, authority.signing_public, concurrency)
                )
                load_after = load()
                pids = [s.pid for s, _ in servers]
                server_cpu = sum(proc_cpu_s(pid) - c for pid, c in zip(pids, cpu0, strict=True))
                server_peak = max(proc_hwm_mib(s.pid) for s, _ in servers)
            finally:
                for process, _ in servers:
                    process.terminate()
                    process.wait(timeout=30)
            for digest, receipt in receipts:
                verify_receipt(receipt, authority.signing_public, digest)
            held, distinct = asyncio.run(count_held(url))
            score_load = load()
            scored = score(central, url, p)
        finally:
            asyncio.run(drop_database(dsn, url))
    figures = {
        "venues": n, "processes": p, "candidates": scored["candidates"],
        "ingest_s": wall, "ingest_mb": sent / 1e6, "ingest_mb_s": sent / 1e6 / wall,
        "ingest_server_cpu_s": server_cpu, "ingest_server_peak_mib": server_peak,
        "ingest_load": [load_before, load_after], "receipts_verified": len(receipts),
        "held": held, "lost": n - distinct, "duplicated": held - distinct,
        "score": scored, "score_load_before": score_load, "score_load_after": load(),
    }  # fmt: skip
    return figures


def growth(runs: list[dict[str, Any]]) -> list[str]:
    """Per process count: seconds per venue between the smallest and largest N, and the
    exponent of time ~ N^k between them (1.0 is linear)."""
    import math

    lines = []
    for p in sorted({r["processes"] for r in runs}):
        mine = sorted((r for r in runs if r["processes"] == p), key=lambda r: r["venues"])
        if len(mine) < 2:
            continue
        a, b = mine[0], mine[-1]
        for what, key in (("ingest", lambda r: r["ingest_s"]),
                          ("score", lambda r: r["score"]["total_s"]),
                          ("score peak MiB", lambda r: r["score"]["parent_peak_mib"])):  # fmt: skip
            slope = (key(b) - key(a)) / (b["venues"] - a["venues"])
            k = math.log(key(b) / key(a)) / math.log(b["venues"] / a["venues"])
            lines.append(f"P={p} {what}: {slope:.4f} per venue from N={a['venues']} to "
                         f"N={b['venues']}, growth exponent {k:.2f}")  # fmt: skip
    return lines


def table(runs: list[dict[str, Any]]) -> None:
    print(f"{'N':>5} {'P':>2} {'cands':>8} {'ingest s':>9} {'MB/s':>6} {'srv CPU s':>9} "
          f"{'srv MiB':>8} {'score s':>8} {'CPU s':>7} {'cand/min':>9} {'parent MiB':>10} "
          f"{'worker MiB':>10} "
          f"{'lost/dup':>8} {'load':>11}")  # fmt: skip
    for r in runs:
        s = r["score"]
        print(f"{r['venues']:>5} {r['processes']:>2} {r['candidates']:>8,} {r['ingest_s']:>9.1f} "
              f"{r['ingest_mb_s']:>6.1f} {r['ingest_server_cpu_s']:>9.1f} "
              f"{r['ingest_server_peak_mib']:>8.0f} {s['total_s']:>8.1f} "
              f"{s['parent_cpu_s'] + s['workers_cpu_s']:>7.1f} "
              f"{r['candidates'] / s['total_s'] * 60:>9,.0f} {s['parent_peak_mib']:>10.0f} "
              f"{s['worker_peak_mib']:>10.0f} {r['lost']:>4}/{r['duplicated']:<3} "
              f"{r['ingest_load'][1]:>5.1f}/{r['score_load_after']:<5.1f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--candidates", type=int, default=250)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--saves", type=int, default=10, help="journal saves per candidate")
    parser.add_argument("--concurrency", type=int, default=100, help="uploads at once")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "cbt_national",
        help="where generated packages are kept between runs (outside the repository)",
    )  # fmt: skip
    parser.add_argument("--gen-workers", type=int, default=2)
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--out", type=Path, default=ROOT / "loadtests/results/national.json")
    parser.add_argument("--score-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.umask(0o077)  # as `cbt` does: the centre's files are private
    if args.score_child is not None:
        print(json.dumps(score_child(args.score_child, args.database, args.processes[0])))
        return 0
    if max(args.venues) > data.MAX_VENUES:
        parser.error(f"--venues goes up to {data.MAX_VENUES}")
    shape = data.Shape(args.candidates, args.items, args.saves)
    root = data.ensure(args.cache, shape, max(args.venues), args.gen_workers)
    runs = []
    for n in args.venues:
        for p in args.processes:
            print(f"N={n} venues, P={p} processes (load {load():.1f}) ...", flush=True)
            runs.append(run_one(root, n, p, args.pg, args.concurrency))
            table(runs[-1:])
    print()
    table(runs)
    lines = growth(runs)
    for line in lines:
        print(line)
    failed = [
        r for r in runs if r["lost"] or r["duplicated"] or r["receipts_verified"] != r["venues"]
    ]
    checks = {"0 lost, 0 duplicated, every receipt verified": not failed}
    big = [r for r in runs if r["candidates"] >= 500_000]
    if big:
        best = min(r["score"]["total_s"] for r in big)
        checks[f"500,000 candidates scored in < {SCORE_WITHIN_S} s wall"] = best < SCORE_WITHIN_S
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'MISS'} {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"shape": shape.key, "runs": runs, "growth": lines, "checks": checks,
           "measured_at": iso(datetime.now(UTC))}  # fmt: skip
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
