"""Benchmark: the central store alone (no HTTP), this checkout against another, side by side.

    git worktree add --detach /tmp/before <commit>
    python loadtests/bench_central_store.py --compare-tree /tmp/before --rounds 10 --chunk-mb 1
    python loadtests/bench_central_store.py --compare-tree /tmp/before --rounds 8 \\
        --database 'postgresql:///cbt_bench_store?host=/var/run/postgresql'    # must exist

Each round runs one process per checkout, alternating: it opens an empty store (SQLite in a
temporary folder on this checkout's disk, or the PostgreSQL database, emptied), then uploads
N packages of random bytes at once through the storage API as `server.central.uploads` does
(create, chunks as pieces, read back, accept, read the package), and reports the wall time
and the process's CPU time of that part. `bench_upload.py` measures the whole server; this
isolates the store (its SQL, its driver, where the bytes go), which on a shared machine is the
only way to see a few per cent. Medians of the rounds go to loadtests/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import asyncio, hashlib, os, shutil, sys, tempfile, time
tree, database = sys.argv[1], sys.argv[2]
chunk, count, size = (int(arg) for arg in sys.argv[3:6])
sys.path.insert(0, tree)
from server.central.app import open_storage
from server.central.storage import PackageEntry

def sign(entry, now, position, previous, root):
    return {"receipt": {"log_position": position, "log_root": root}, "signature": ""}

async def upload(storage, data):
    digest = hashlib.sha256(data).hexdigest()
    await storage.create_upload(digest, "V1", len(data), "t")
    for offset in range(0, len(data), chunk):
        await storage.append_chunk(digest, offset, [data[offset:offset + chunk]], "t")
    assert len(await storage.read_upload(digest)) == len(data)
    entry = PackageEntry(digest, "S" + digest[:8], "V1", 1, len(data), False, {})
    await storage.accept_package(entry, sign, "t")
    assert len(await storage.package_data(digest)) == len(data)

async def main():
    folder = tempfile.mkdtemp(dir=os.environ["BENCH_DIR"])
    if database:
        import asyncpg
        conn = await asyncpg.connect(database)
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await conn.close()
    storage = open_storage(database or os.path.join(folder, "central.db"))
    await storage.open()
    packages = [os.urandom(size) for _ in range(count)]
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(upload(storage, data) for data in packages))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await storage.close()
    shutil.rmtree(folder)
    print(wall, cpu)

asyncio.run(main())
"""


def run(tree: Path, args: argparse.Namespace) -> tuple[float, float]:
    command = [sys.executable, "-c", CHILD, str(tree), args.database or "",
               str(args.chunk_mb << 20), str(args.packages), str(args.package_bytes)]  # fmt: skip
    env = {**os.environ, "BENCH_DIR": str(ROOT)}  # temporary stores on this checkout's disk
    out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True)
    wall, cpu = out.stdout.split()
    return float(wall), float(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--compare-tree", type=Path, required=True, help="the other checkout")
    parser.add_argument("--database", help="postgresql:// URL (emptied); default SQLite")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--chunk-mb", type=int, default=1, help="chunk size, MiB")
    parser.add_argument("--packages", type=int, default=20, help="uploads at once")
    parser.add_argument("--package-bytes", type=int, default=5_800_000)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "loadtests" / "results" / "bench_central_store.json"
    )
    args = parser.parse_args()
    trees = {"before": args.compare_tree.resolve(), "after": ROOT}
    seen: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for round_no in range(1, args.rounds + 1):
        line = []
        for name, tree in trees.items():
            wall, cpu = run(tree, args)
            seen[name].append((wall, cpu))
            line.append(f"{name} {wall:.3f} s wall, {cpu:.3f} s CPU")
        print(f"round {round_no}: " + "; ".join(line), flush=True)
    result = {
        "backend": "postgresql" if args.database else "sqlite",
        "chunk_mb": args.chunk_mb,
        "packages": args.packages,
        "package_bytes": args.package_bytes,
        "rounds": args.rounds,
        "before_tree": str(trees["before"]),
    }
    for name, figures in seen.items():
        result[f"{name}_wall_s"] = round(statistics.median(w for w, _ in figures), 3)
        result[f"{name}_cpu_s"] = round(statistics.median(c for _, c in figures), 3)
    for key, value in result.items():
        print(f"{key:<16}{value:>40}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
