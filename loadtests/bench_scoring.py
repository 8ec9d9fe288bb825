"""Benchmark of central scoring: candidate-papers of 100 items scored per minute, one core.

Three figures, side by side in one run (PERFORMANCE.md target: >= 200,000 per minute; the
PostgreSQL back-end within 2x of SQLite):

- core: the scoring path alone, per candidate: recompute the variant from the variant secret
  and compare its digest with the venue's, map the token answers back to canonical ids,
  apply the compiled key table (`server.scoring.engine.AttemptScorer.score`);
- session on SQLite / on PostgreSQL: `server.scoring.pipeline.score_session` end to end on a
  really packed session: the venue's signed, encrypted response package read from the central
  store, verified, decrypted, every candidate scored, totals and statuses finalised.

Run:  python loadtests/bench_scoring.py [--candidates 3000] [--rounds 3] [--pg DSN] [--out FILE]
Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from paperpack import crypto
from paperpack.authority import Authority, init_authority, load_authority
from paperpack.canonical import canonical_hash, canonical_json
from paperpack.model import CHOICE_TYPES, Paper
from paperpack.pack import pack_venue
from paperpack.session import session_from_dict
from paperpack.synthetic import synthetic_paper
from paperpack.variants import VariantPlan, paused_gc, to_canonical, to_display
from server.central import keys
from server.central.app import create_app, open_storage
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.clock import SettableClock, iso
from server.protocol import response_package
from server.protocol.journal_chain import GENESIS, link_hash
from server.scoring.engine import AttemptScorer, CandidateScore
from server.scoring.material import open_material
from server.scoring.pipeline import score_session
from server.venue.export import split_evidence
from server.venue.upload import upload_package

TARGET_PER_MINUTE = 200_000
PG_WITHIN = 2.0
START = datetime(2026, 6, 13, 1, 0, tzinfo=UTC)
SESSION_ID = "BENCH"
VENUE_ID = "V1"
DEFAULT_PG = os.environ.get("CBT_TEST_PG_DSN", "postgresql:///postgres?host=/var/run/postgresql")


def random_answers(paper: Paper, rng: random.Random) -> dict[str, Any]:
    """A plausible canonical answer to most items: right about two times in three."""
    out: dict[str, Any] = {}
    for item in paper.items():
        if rng.random() < 0.03:
            continue
        if item.type in CHOICE_TYPES:
            ids = [o.option_id for o in item.options]
            out[item.item_id] = item.key if rng.random() < 0.66 else (rng.choice(ids),)
        elif item.type == "fill_blank":
            out[item.item_id] = tuple(
                b.accepted[0] if rng.random() < 0.66 else "x" for b in item.blanks
            )
        else:
            out[item.item_id] = "答案" * rng.randint(5, 50)
    return out


def attempts_for(
    paper: Paper, secret: bytes, n: int, answers_form: str, seed: int = 1, saves: int = 0
) -> list[dict[str, Any]]:
    """What a venue exports: per ticket the variant digest and the answers, as the browser's
    tokens or (answers_form "canonical") already mapped to canonical ids by the venue; with
    `saves`, a hash-chained journal of that many one-answer saves as well."""
    rng = random.Random(seed)
    plan = VariantPlan(paper)
    out = []
    with paused_gc():
        for k in range(n):
            ticket = f"{k:08d}"
            variant = plan.build(secret, SESSION_ID, ticket)
            canonical = random_answers(paper, rng)
            if answers_form == "canonical":
                tokens = {k: v if isinstance(v, str) else list(v) for k, v in canonical.items()}
            else:
                tokens = to_display(variant, canonical)
            out.append(
                {"ticket": ticket, "status": "submitted", "answers_form": answers_form,
                 "attempt_id": f"att{k}", "journal": journal_of(f"att{k}", tokens, saves),
                 "variant": {"ticket": ticket, "digest": variant.digest, "form": None},
                 "final_answers": tokens,
                 "submission": {"receipt": canonical_hash(tokens), "final_seq": 1,
                                "submitted_at": iso(START), "how": "candidate"}}
            )  # fmt: skip
    return out


def journal_of(attempt_id: str, answers: dict[str, Any], saves: int) -> list[dict[str, Any]]:
    """`saves` one-answer saves chained as the venue's journal chains them (answers cycled)."""
    out: list[dict[str, Any]] = []
    previous, items = GENESIS, list(answers.items())
    for seq in range(1, saves + 1):
        item_id, answer = items[(seq - 1) % len(items)]
        responses = {item_id: answer}
        at = iso(START + timedelta(seconds=seq))
        digest = link_hash(attempt_id, seq, seq, at, canonical_json(responses).decode(), previous)
        out.append({"seq": seq, "position": seq, "saved_at": at, "responses": responses,
                    "prev_hash": previous, "hash": digest})  # fmt: skip
        previous = digest
    return out


class Rate:
    """Best rate per minute over rounds, by wall clock and by this process's CPU time; the
    first round's CPU rate too (a session's first scoring also re-chains the journals)."""

    def __init__(self, n: int) -> None:
        self.n, self.wall, self.cpu, self.first_cpu = n, 0.0, 0.0, 0.0

    def __enter__(self) -> Rate:
        self.began, self.began_cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.began
        cpu = time.process_time() - self.began_cpu
        self.wall = max(self.wall, self.n / wall * 60)
        self.cpu = max(self.cpu, self.n / cpu * 60)
        self.first_cpu = self.first_cpu or self.n / cpu * 60


def calibrate() -> float:
    """CPU seconds this machine takes for 10 million pure-Python additions (idle: ~0.4 s)."""
    began, total = time.process_time(), 0
    for i in range(10_000_000):
        total += i
    return time.process_time() - began


def bench_core(paper: Paper, secret: bytes, attempts: list[dict[str, Any]], rounds: int) -> Rate:
    """The per-candidate scoring path, best of `rounds` runs."""
    scorer = AttemptScorer(paper, secret, SESSION_ID)
    rate = Rate(len(attempts))
    for _ in range(rounds):
        with rate, paused_gc():
            for attempt in attempts:
                scorer.score(attempt, CandidateScore(VENUE_ID, attempt["ticket"]))
    return rate


def breakdown(paper: Paper, secret: bytes, attempts: list[dict[str, Any]]) -> dict[str, float]:
    """CPU microseconds per candidate of each step of the core path, measured one by one."""
    scorer = AttemptScorer(paper, secret, SESSION_ID)
    n = len(attempts)
    with paused_gc():
        began = time.process_time()
        variants = [scorer.plan.build(secret, SESSION_ID, a["ticket"]) for a in attempts]
        built = time.process_time()
        canonical = [
            to_canonical(v, a["final_answers"]) for v, a in zip(variants, attempts, strict=True)
        ]
        mapped = time.process_time()
        for answers in canonical:
            scorer.table.earned(answers)
        scored = time.process_time()
    return {
        "variant_build_us": (built - began) / n * 1e6,
        "inverse_us": (mapped - built) / n * 1e6,
        "key_table_us": (scored - mapped) / n * 1e6,
    }


def pack(root: Path, paper: Paper, venue_wrap: crypto.X25519PublicKey) -> Authority:
    init_authority(root / "authority")
    authority = load_authority(root / "authority")
    session = session_from_dict(
        {"session_id": SESSION_ID, "subject": {"code": paper.subject_code, "name": "bench"},
         "start": START.isoformat(), "duration_minutes": paper.duration_minutes,
         "venues": [{"id": VENUE_ID, "name": "Bench", "supervisors": 3, "threshold": 2,
                     "public_key": crypto.public_key_text(venue_wrap)}]}
    )  # fmt: skip
    pack_venue(paper, session, session.venues[0], authority, root / "out", now=START)
    return authority


async def upload(
    database: str,
    folder: Path,
    authority: Authority,
    package: bytes,
    venue_key: crypto.Ed25519PrivateKey,
) -> None:
    """Register the venue and upload its package to the central app on a loopback port."""
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    folder.mkdir(parents=True, exist_ok=True)
    settings = CentralSettings(directory=folder, database=database, log_requests=False)
    app = create_app(settings, clock=SettableClock(START + timedelta(hours=3)), authority=authority)
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as http:
        signing = crypto.public_key_text(venue_key.public_key())
        wrapping = crypto.public_key_text(crypto.generate_wrapping_key().public_key())
        await app[keys.STORAGE].add_venue(VenueRecord(VENUE_ID, "B", signing, wrapping, iso(START)))
        url = str(server.make_url("")).rstrip("/")
        await upload_package(
            http, url, package, authority.signing_public, venue_key=venue_key,
            clock=app[keys.CLOCK],
        )  # fmt: skip


async def bench_session(
    database: str,
    authority: Authority,
    package: bytes,
    venue_key: crypto.Ed25519PrivateKey,
    folder: Path,
    rounds: int,
    n: int,
) -> Rate:
    await upload(database, folder, authority, package, venue_key)
    storage = open_storage(database, pg_pool_size=2)
    await storage.open()
    try:
        rate = Rate(n)
        for _ in range(rounds):
            # Each round starts from a collected heap, as a `cbt central score` process does;
            # the last round's results are dropped before, not during, the next round.
            scored = None
            gc.collect()
            with rate:
                scored = await score_session(
                    storage, authority, SESSION_ID, START + timedelta(days=1), folder
                )
            assert len(scored.results) == n
        return rate
    finally:
        await storage.close()


async def pg_database(dsn: str, suffix: str) -> str | None:
    """A fresh database on the server at `dsn`, or None when it cannot be reached."""
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    name = f"cbt_bench_scoring_{os.getpid()}_{suffix}"
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{name}{query}"


async def drop_pg(dsn: str, url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1].split("?")[0]}" WITH (FORCE)'
        )
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL DSN ('' to skip)")
    parser.add_argument("--out", type=Path, default=Path("loadtests/results/bench_scoring.json"))
    parser.add_argument(
        "--saves", type=int, default=100,
        help="journal saves per candidate for the extra with-journals figure (0: skip it)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    paper = synthetic_paper(100, seed=3)
    figures: dict[str, Any] = {"candidates": args.candidates, "items": len(paper.items())}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        device = crypto.generate_wrapping_key()
        venue_key = crypto.generate_signing_key()
        authority = pack(root, paper, device.public_key())
        secret = open_material(authority, SESSION_ID, VENUE_ID).variant_secret
        figures["calibration_cpu_s"] = calibrate()
        for answers_form in ("tokens", "canonical"):
            attempts = attempts_for(paper, secret, args.candidates, answers_form)
            if answers_form == "tokens":
                figures["core_breakdown"] = breakdown(paper, secret, attempts)
            rates = {"core": bench_core(paper, secret, attempts, args.rounds)}
            package = venue_package(authority, venue_key, attempts)
            figures[f"{answers_form}_package_bytes"] = len(package)
            del attempts  # the centre holds only the package: the inputs are not its memory
            gc.collect()
            rates["sqlite"] = asyncio.run(bench_session(
                str(root / f"central-{answers_form}.db"), authority, package, venue_key,
                root / f"results-{answers_form}", args.rounds, args.candidates))  # fmt: skip
            url = asyncio.run(pg_database(args.pg, answers_form)) if args.pg else None
            if url is not None:
                try:
                    rates["postgres"] = asyncio.run(bench_session(
                        url, authority, package, venue_key, root / f"pg-{answers_form}",
                        args.rounds, args.candidates))  # fmt: skip
                finally:
                    asyncio.run(drop_pg(args.pg, url))
            for name, rate in rates.items():
                figures[f"{answers_form}_{name}"] = {"per_minute_wall": rate.wall,
                                                     "per_minute_cpu": rate.cpu}  # fmt: skip
        if args.saves:
            figures["journal_saves"] = args.saves
            attempts = attempts_for(paper, secret, args.candidates, "canonical", saves=args.saves)
            package = venue_package(authority, venue_key, attempts)
            figures["journal_package_bytes"] = len(package)
            del attempts
            gc.collect()
            rate = asyncio.run(bench_session(
                str(root / "central-journals.db"), authority, package, venue_key,
                root / "results-journals", args.rounds, args.candidates))  # fmt: skip
            figures["journals_sqlite"] = {"per_minute_wall": rate.wall,
                                          "per_minute_cpu": rate.cpu,
                                          "first_run_per_minute_cpu": rate.first_cpu}  # fmt: skip
    return report(figures, args.out)


def venue_package(
    authority: Authority, venue_key: crypto.Ed25519PrivateKey, attempts: list[dict[str, Any]]
) -> bytes:
    """The package as the venue export seals it: journals and audit log in the evidence."""
    collected = {"session": {"session_id": SESSION_ID}, "attempts": attempts,
                 "seating": [], "absences": [], "violations": [], "audit": []}  # fmt: skip
    contents, evidence = split_evidence(collected)
    return response_package.build_response_package(
        contents, evidence=evidence, session_id=SESSION_ID, venue_id=VENUE_ID, export_seq=1,
        created_at=iso(START), venue_key=venue_key,
        central_wrap_public=authority.wrapping_public,
    )  # fmt: skip


def report(figures: dict[str, Any], out: Path) -> int:
    """Print the table, write the JSON; targets are checked on CPU time (one core's worth)."""
    labels = {"core": "core (variant, inverse, key table)",
              "sqlite": "session on SQLite (read, verify, decrypt, score)",
              "postgres": "session on PostgreSQL (same)"}  # fmt: skip
    checks: dict[str, bool] = {}
    print(f"{'answers as':<10}{'what':<50}{'per min (wall)':>15}{'per min (CPU)':>15}")
    for answers_form in ("tokens", "canonical"):
        for key, label in labels.items():
            found = figures.get(f"{answers_form}_{key}")
            if found is None:
                continue
            wall, cpu = found["per_minute_wall"], found["per_minute_cpu"]
            print(f"{answers_form:<10}{label:<50}{wall:>15,.0f}{cpu:>15,.0f}")
            checks[f"{answers_form} {key} >= 200,000/min of CPU"] = cpu >= TARGET_PER_MINUTE
        pg, lite = figures.get(f"{answers_form}_postgres"), figures[f"{answers_form}_sqlite"]
        if pg is not None:
            checks[f"{answers_form}: PostgreSQL within 2x of SQLite"] = (
                pg["per_minute_cpu"] * PG_WITHIN >= lite["per_minute_cpu"]
            )
    journals = figures.get("journals_sqlite")
    if journals is not None:
        label = f"session on SQLite, {figures['journal_saves']} journal saves each"
        wall, cpu = journals["per_minute_wall"], journals["per_minute_cpu"]
        print(f"{'canonical':<10}{label:<50}{wall:>15,.0f}{cpu:>15,.0f}")
        first = journals["first_run_per_minute_cpu"]
        label = "  its first run (every save re-chained once)"
        print(f"{'canonical':<10}{label:<50}{'':>15}{first:>15,.0f}")
    print(f"calibration: 10M Python additions took {figures['calibration_cpu_s']:.2f} s of CPU")
    parts = ", ".join(f"{k} {v:.0f}" for k, v in figures["core_breakdown"].items())
    print(f"core per candidate, token answers (CPU): {parts}")
    figures["checks"] = checks
    figures["measured_at"] = iso(datetime.now(UTC))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'MISS'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
