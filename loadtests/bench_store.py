"""Benchmark of the venue store: what group commit buys and what synchronous=FULL costs.

Measured side by side in one run (PERFORMANCE.md), on the real venue schema with the real
`append_save` (a ~150-byte autosave per row):

- raw fsync rate: 4 KiB write + fdatasync in a loop, on the same file system;
- one save per commit: one writer awaiting each save before the next (FULL);
- group commit: `--clients` concurrent writers, each awaiting its own saves (FULL, then NORMAL).

Targets: group commit (FULL) >= 10x the raw fsync rate; FULL >= 0.8x NORMAL.
Run:  python loadtests/bench_store.py [--seconds 2] [--clients 200] [--rounds 3] [--out FILE]
Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from server.store import Durability, Store
from server.venue.journal import append_save
from server.venue.schema import migrations

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ANSWER = {"q-17": ["o-3"], "q-18": "全要素生产率", "q-19": ["o-1", "o-4"]}


def fsync_rate(directory: Path, seconds: float) -> float:
    """fdatasync'ed 4 KiB writes per second."""
    path = directory / "fsync.bin"
    block = os.urandom(4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    count, end = 0, time.perf_counter() + seconds
    try:
        while time.perf_counter() < end:
            os.pwrite(fd, block, (count % 256) * 4096)
            os.fdatasync(fd)
            count += 1
    finally:
        os.close(fd)
        path.unlink()
    return count / seconds


def setup_attempts(db: Any, n: int) -> None:
    db.execute("INSERT INTO sessions (session_id, subject) VALUES ('S1', '27')")
    db.conn.executemany(
        "INSERT INTO attempts (attempt_id, session_id, ticket, logged_in_at)"
        " VALUES (?, 'S1', ?, ?)",
        [(f"A{i}", f"T{i}", "2026-06-01T09:00:00.000Z") for i in range(n)],
    )


async def run_store(
    directory: Path, durability: Durability, clients: int, seconds: float
) -> dict[str, float]:
    """Acknowledged saves/s with `clients` concurrent writers for `seconds`."""
    path = directory / f"bench-{durability}-{clients}.db"
    store = Store(path, migrations, durability=durability)
    await store.write(setup_attempts, clients)
    stop = time.perf_counter() + seconds
    acked = 0

    async def client(index: int) -> None:
        nonlocal acked
        seq = 0
        while time.perf_counter() < stop:
            seq += 1
            await store.write(append_save, f"A{index}", seq, ANSWER, NOW)
            acked += 1

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    stats = store.stats
    await store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return {
        "saves_per_s": acked / elapsed,
        "commits_per_s": stats.commits / elapsed,
        "saves_per_commit": stats.calls / max(stats.commits, 1),
        "writer_run_share": stats.run_s / elapsed,
        "writer_commit_share": stats.commit_s / elapsed,
    }


async def one_round(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every scenario once, back to back, so they see the same machine load."""
    result: dict[str, Any] = {"fsync_per_s": fsync_rate(directory, args.seconds)}
    result["one_per_commit_full"] = await run_store(directory, "FULL", 1, args.seconds)
    result["group_full"] = await run_store(directory, "FULL", args.clients, args.seconds)
    result["group_normal"] = await run_store(directory, "NORMAL", args.clients, args.seconds)
    group = result["group_full"]["saves_per_s"]
    result["group_vs_fsync"] = group / result["fsync_per_s"]
    result["group_vs_one_per_commit"] = group / result["one_per_commit_full"]["saves_per_s"]
    result["full_vs_normal"] = group / result["group_normal"]["saves_per_s"]
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """`--rounds` rounds; the figures are each scenario's median, the ratios the median of
    the per-round ratios (the machine is shared and noisy: a ratio within one round is what
    means something)."""
    directory = Path(args.dir or tempfile.mkdtemp(prefix="bench-store-"))
    directory.mkdir(parents=True, exist_ok=True)
    rounds = [await one_round(directory, args) for _ in range(args.rounds)]
    results: dict[str, Any] = {"rounds": rounds, "clients": args.clients, "seconds": args.seconds}
    results["fsync_per_s"] = median(r["fsync_per_s"] for r in rounds)
    for key in ("one_per_commit_full", "group_full", "group_normal"):
        results[key] = {field: median(r[key][field] for r in rounds) for field in rounds[0][key]}
    for key in ("group_vs_fsync", "group_vs_one_per_commit", "full_vs_normal"):
        results[key] = median(r[key] for r in rounds)
    return results


def report(results: dict[str, Any]) -> bool:
    rows = [
        ("raw fdatasync 4 KiB", results["fsync_per_s"], ""),
        ("1 save per commit, FULL", results["one_per_commit_full"]["saves_per_s"], ""),
        (
            f"group commit, FULL ({results['clients']} clients)",
            results["group_full"]["saves_per_s"],
            f"{results['group_full']['saves_per_commit']:.0f} saves/commit",
        ),
        (
            f"group commit, NORMAL ({results['clients']} clients)",
            results["group_normal"]["saves_per_s"],
            f"{results['group_normal']['saves_per_commit']:.0f} saves/commit",
        ),
    ]
    title = f"scenario (median of {len(results['rounds'])} rounds)"
    print(f"{title:<40} {'per second':>12}  note")
    for name, rate, note in rows:
        print(f"{name:<40} {rate:>12,.0f}  {note}")
    ok_group = results["group_vs_fsync"] >= 10
    ok_full = results["full_vs_normal"] >= 0.8
    print(
        f"group commit / raw fsync = {results['group_vs_fsync']:.1f}x (target >= 10x) "
        f"{'ok' if ok_group else 'MISSED'}"
    )
    print(f"group / one per commit   = {results['group_vs_one_per_commit']:.1f}x")
    print(
        f"FULL / NORMAL            = {results['full_vs_normal']:.2f}x (target >= 0.8x) "
        f"{'ok' if ok_full else 'MISSED'}"
    )
    return ok_group and ok_full


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each phase, s")
    parser.add_argument("--clients", type=int, default=200, help="concurrent writers")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--dir", help="directory for the databases (default: a temp dir)")
    parser.add_argument("--out", default="loadtests/results/bench_store.json")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
