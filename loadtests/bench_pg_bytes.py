"""Where PostgreSQL's central store keeps package bytes: four ways, side by side, one run.

    python loadtests/bench_pg_bytes.py [--packages 20] [--mb 5.8] [--chunk-mb 1] [--rounds 3]

Each way stores `--packages` packages at once, each in `--chunk-mb` chunks, one transaction
per chunk that also moves the upload's offset (as `server.central.queries.move_offset`
does), with synchronous_commit on:

- bytea: INSERT the chunk as a `bytea` row (storage EXTERNAL), what the store did;
- copy: the chunk row written with COPY (`copy_records_to_table`);
- large object: one large object per package, `lo_put` at the chunk's offset;
- files: the chunk `pwrite`n to one file per package and fdatasync'd on a thread, then the
  small transaction that moves the offset (the row says where the bytes are);
- floor: the files alone, with no database at all.

Rounds alternate the ways; the medians are printed with each as a multiple of the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg

DEFAULT_PG = os.environ.get("CBT_TEST_PG_DSN", "postgresql:///postgres?host=/var/run/postgresql")
TABLES = """
DROP TABLE IF EXISTS b_uploads, b_chunks;
CREATE TABLE b_uploads (upload_id TEXT PRIMARY KEY, received BIGINT NOT NULL, lo OID);
CREATE TABLE b_chunks (upload_id TEXT NOT NULL, chunk_offset BIGINT NOT NULL,
                       data BYTEA NOT NULL, PRIMARY KEY (upload_id, chunk_offset));
ALTER TABLE b_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
"""
MOVE = "UPDATE b_uploads SET received = received + $2 WHERE upload_id = $1 AND received = $3"


def write_file(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, data, offset)
        os.fdatasync(fd)
    finally:
        os.close(fd)


async def one_package(way: str, pool: asyncpg.Pool | None, files: ThreadPoolExecutor,
                      folder: Path, name: str, data: bytes, chunk: int) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    if pool is not None:
        async with pool.acquire() as conn:
            lo = await conn.fetchval("SELECT lo_create(0)") if way == "large object" else None
            await conn.execute("INSERT INTO b_uploads VALUES ($1, 0, $2)", name, lo)
    for offset in range(0, len(data), chunk):
        piece = data[offset : offset + chunk]
        if way in ("files", "floor"):
            await loop.run_in_executor(files, write_file, folder / name, offset, piece)
            if way == "floor":
                continue
        assert pool is not None
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(MOVE, name, len(piece), offset)
            if way == "bytea":
                await conn.execute("INSERT INTO b_chunks VALUES ($1, $2, $3)", name, offset, piece)
            elif way == "copy":
                await conn.copy_records_to_table("b_chunks", records=[(name, offset, piece)])
            elif way == "large object":
                await conn.execute("SELECT lo_put($1, $2, $3)", lo, offset, piece)


async def round_of(way: str, pool: asyncpg.Pool, packages: list[bytes], chunk: int) -> float:
    async with pool.acquire() as conn:
        await conn.execute(TABLES)
        await conn.execute("SELECT lo_unlink(oid) FROM pg_largeobject_metadata")
    with tempfile.TemporaryDirectory(prefix="bench-pg-bytes-", dir=Path.home()) as tmp, \
            ThreadPoolExecutor(16) as files:  # fmt: skip
        began = time.perf_counter()
        await asyncio.gather(*(
            one_package(way, None if way == "floor" else pool, files, Path(tmp), f"p{n}", data,
                        chunk)
            for n, data in enumerate(packages)))  # fmt: skip
        return time.perf_counter() - began


async def main_async(args: argparse.Namespace) -> int:
    size = int(args.mb * 1e6)
    packages = [os.urandom(size) for _ in range(args.packages)]
    pool = await asyncpg.create_pool(args.pg, min_size=2, max_size=args.packages)
    ways = ["floor", "bytea", "copy", "large object", "files"]
    seen: dict[str, list[float]] = {w: [] for w in ways}
    try:
        for _ in range(args.rounds):
            for way in ways:
                seen[way].append(await round_of(way, pool, packages, int(args.chunk_mb * 2**20)))
        async with pool.acquire() as conn:
            await conn.execute("DROP TABLE IF EXISTS b_uploads, b_chunks")
            await conn.execute("SELECT lo_unlink(oid) FROM pg_largeobject_metadata")
    finally:
        await pool.close()
    total = size * args.packages / 1e6
    floor = statistics.median(seen["floor"])
    print(f"{args.packages} packages x {args.mb} MB at once, {args.chunk_mb} MiB chunks, "
          f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    for way in ways:
        median = statistics.median(seen[way])
        print(f"  {way:<13} {median:6.3f} s  {total / median:7.1f} MB/s  "
              f"{floor / median:5.2f}x the floor   rounds: "
              + ", ".join(f"{s:.3f}" for s in seen[way]))  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=20)
    parser.add_argument("--mb", type=float, default=5.8)
    parser.add_argument("--chunk-mb", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=DEFAULT_PG)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
