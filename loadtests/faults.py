"""The fault suite (issue 16, item 8): attacks on a running venue and centre, one table.

    python loadtests/faults.py --short          # about a minute: what CI runs
    python loadtests/faults.py                  # the long run: 50 kills, 3 disk-full
                                                # cycles, 100 upload cuts, 5 central restarts
    python loadtests/faults.py --kills 10 --disk-cycles 1 --cuts 20 --restarts 2 --seed 7

Everything runs on loopback in a temporary directory, bounded in time (each attack has a
deadline), with the real programs: `cbt venue serve` set up with the CLI and unlocked over
HTTP (tests/server/test_kill9.py's set-up), candidates saving as the page does (a save that
got no answer is sent again with the same seq and content), `cbt central serve` and the
venue's own signed uploader. The attacks:

- kill -9 of the venue every 1-3 s under saving load, restarted each time;
- a full disk: the venue's directory on a small tmpfs filled to the last byte while
  candidates save, then freed (needs root to mount; said in the table otherwise);
- a corrupt database: random bytes over venue.db's pages after a clean stop; the server
  must refuse to start, `cbt venue restore` must bring back every acknowledged save;
- upload cuts through a loopback proxy at random byte offsets;
- the central server killed and restarted in the middle of an upload.

The table: attack, expected, seen, lost (must be 0), duplicated (must be 0), and the
refusals seen with whether each was problem+json. Exit 1 if anything was lost or duplicated,
a refusal was not problem+json, or an attack did not do what was expected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlite_utils import Database  # noqa: E402

from loadtests.faults_central import Outcome, central_restarts, upload_cuts  # noqa: E402
from server.venue.journal import JournalError, verify_chain  # noqa: E402
from tests.server.test_kill9 import (  # noqa: E402
    Setup,
    build_venue,
    free_port,
    start_server,
    unlock,
)

SAVE_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass
class Candidate:
    """One candidate's page: logs in, saves seq 1, 2, 3, ... and sends a save again (same seq,
    same answer) until it is acknowledged, as the exam page does."""

    ticket: str
    id_number: str
    token: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 1
    acked: set[int] = field(default_factory=set)

    def answer(self, seq: int) -> dict[str, list[str]]:
        item = self.items[seq % len(self.items)]
        return {item["id"]: [item["options"][seq % len(item["options"])]["id"]]}


@dataclass
class Load:
    """Candidates saving against one venue URL until stopped, counting every answer."""

    base: str
    candidates: list[Candidate]
    outcome: Outcome
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    statuses: Counter[int] = field(default_factory=Counter)
    retry_after_missing: int = 0

    @property
    def acked(self) -> int:
        return sum(len(c.acked) for c in self.candidates)

    async def _refused(self, resp: aiohttp.ClientResponse) -> str:
        slug = "-"
        if resp.content_type == "application/problem+json":
            try:
                slug = str((await resp.json()).get("type", "")).rsplit("/", 1)[-1]
            except (ValueError, aiohttp.ClientError):
                slug = "unreadable"
        else:
            self.outcome.not_problem += 1
        self.outcome.refusals[f"{resp.status} {slug}"] += 1
        if resp.status == 503 and "Retry-After" not in resp.headers:
            self.retry_after_missing += 1
        return slug

    async def _login(self, http: aiohttp.ClientSession, c: Candidate) -> None:
        async with http.post(
            f"{self.base}/api/v1/candidate/login",
            json={"ticket": c.ticket, "id_number": c.id_number},
        ) as resp:
            if resp.status != 200:
                await self._refused(resp)
                raise ConnectionError("login refused")
            c.token = (await resp.json())["token"]
        if not c.items:
            async with http.get(f"{self.base}/api/v1/attempt/paper", headers=self._auth(c)) as r:
                if r.status != 200:
                    await self._refused(r)
                    raise ConnectionError("paper refused")
                paper = await r.json()
            c.items = [i for s in paper["sections"] for i in s["items"]
                       if i["type"] == "single_choice"]  # fmt: skip

    @staticmethod
    def _auth(c: Candidate) -> dict[str, str]:
        return {"Authorization": f"Bearer {c.token}"}

    async def _run(self, c: Candidate) -> None:
        async with aiohttp.ClientSession(timeout=SAVE_TIMEOUT) as http:
            while not self.stop.is_set():
                try:
                    if c.token is None:
                        await self._login(http, c)
                    async with http.put(
                        f"{self.base}/api/v1/attempt/responses",
                        json={"seq": c.seq, "responses": c.answer(c.seq)},
                        headers=self._auth(c),
                    ) as resp:
                        self.statuses[resp.status] += 1
                        if resp.status == 200:
                            c.acked.add(int((await resp.json())["acked_seq"]))
                            c.seq += 1
                            continue
                        slug = await self._refused(resp)
                        if resp.status == 401:
                            c.token = None  # a new login, as the page does
                        wait = float(resp.headers.get("Retry-After", "0.2") or 0.2)
                        await asyncio.sleep(min(wait, 0.5) if slug else 0.2)
                except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError):
                    await asyncio.sleep(0.1)  # the server is down: the page keeps the answer

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._run(c)) for c in self.candidates]

    async def wait_for_acks(self, more: int, timeout_s: float) -> bool:
        """True once `more` further saves were acknowledged (False after `timeout_s`)."""
        target, deadline = self.acked + more, time.monotonic() + timeout_s
        while self.acked < target:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def stored_saves(venue_dir: Path) -> tuple[set[tuple[str, int]], int]:
    """(ticket, seq) of every journal row, and how many rows there are."""
    conn = sqlite3.connect(venue_dir / "venue.db")
    try:
        rows = conn.execute(
            "SELECT a.ticket, j.seq FROM journal j JOIN attempts a USING (attempt_id)"
        ).fetchall()
    finally:
        conn.close()
    return {(str(t), int(s)) for t, s in rows}, len(rows)


def broken_chains(venue_dir: Path) -> int:
    """Attempts whose journal hash chain does not verify."""
    db = Database(sqlite3.connect(venue_dir / "venue.db"))
    broken = 0
    try:
        for (attempt_id,) in db.execute("SELECT attempt_id FROM attempts").fetchall():
            try:
                verify_chain(db, attempt_id)
            except JournalError:
                broken += 1
    finally:
        db.close()
    return broken


def account(load: Load, venue_dir: Path, outcome: Outcome) -> None:
    """Lost: acknowledged but not in the journal; duplicated: a (ticket, seq) stored twice."""
    stored, rows = stored_saves(venue_dir)
    acked = {(c.ticket, s) for c in load.candidates for s in c.acked}
    outcome.lost = len(acked - stored)
    outcome.duplicated = rows - len(stored)
    broken = broken_chains(venue_dir)
    outcome.ok = outcome.ok and broken == 0
    outcome.seen = (
        f"{len(acked)} saves acknowledged, {len(stored)} stored, journal chains "
        f"{'intact' if not broken else f'BROKEN in {broken} attempts'}; " + outcome.seen
    )


def say(text: str) -> None:
    """Progress, on stderr (the table goes to stdout)."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def stop_gracefully(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def quietly(build: Any, root: Path) -> Setup:
    """The set-up's CLI commands print what they did: not into the suite's output."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        setup: Setup = build(root)
    return setup


def candidates_of(setup: Setup) -> list[Candidate]:
    return [Candidate(t, i) for t, i in setup.candidates]


async def kills(root: Path, count: int, rng: random.Random) -> tuple[Outcome, Setup, Load]:
    """kill -9 every 1-3 s under saving load; restart; saves resume each time."""
    outcome = Outcome(f"venue kill -9 under saving load ({count}x)",
                      "every acknowledged save kept; saves resume after each restart")  # fmt: skip
    setup = quietly(build_venue, root)
    port, log = free_port(), root / "serve.log"
    base = f"http://127.0.0.1:{port}"
    proc = await asyncio.to_thread(start_server, setup.venue_dir, port, log)
    await unlock(base, setup)
    load = Load(base, candidates_of(setup), outcome)
    tasks = load.start()
    stalled = 0
    try:
        if not await load.wait_for_acks(50, 60):
            raise SystemExit("the candidates could not save before the first kill: see " + str(log))
        for k in range(count):
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            say(f"kill {k + 1}/{count}: {load.acked} saves acknowledged so far")
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 30)
            proc = await asyncio.to_thread(start_server, setup.venue_dir, port, log)
            if not await load.wait_for_acks(len(load.candidates), 30):
                stalled += 1
    finally:
        load.stop.set()
        await asyncio.gather(*tasks)
        stop_gracefully(proc)
    account(load, setup.venue_dir, outcome)
    outcome.seen += f"{count} kills, saves resumed after {count - stalled}"
    outcome.ok = stalled == 0
    return outcome, setup, load


async def corrupt_database(setup: Setup, load: Load, rng: random.Random) -> Outcome:
    """Random bytes over venue.db after a clean stop: refused at start; restore keeps all."""
    outcome = Outcome("corrupt venue.db (random bytes over its pages)",
                      "start refused, one line, exit 1; restore brings back every ack")  # fmt: skip
    db = setup.venue_dir / "venue.db"
    size = db.stat().st_size
    with db.open("r+b") as handle:
        handle.seek(4096)
        handle.write(rng.randbytes(size - 4096))
    env = {**os.environ, "CBT_LOG_REQUESTS": "0"}
    started = subprocess.run(
        [sys.executable, "-m", "server.cli", "venue", "serve", str(setup.venue_dir),
         "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    lines = started.stderr.strip().splitlines()
    refused = started.returncode == 1 and len(lines) == 1 and "Traceback" not in started.stderr
    restored = subprocess.run(
        [sys.executable, "-m", "server.cli", "venue", "restore", str(setup.venue_dir)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    lost_lines = [line for line in restored.stdout.splitlines() if line.startswith("lost:")]
    if restored.returncode == 0:
        account(load, setup.venue_dir, outcome)
    else:
        outcome.lost = sum(len(c.acked) for c in load.candidates)
    said = "; ".join(line.removeprefix("lost: ") for line in lost_lines) or "nothing"
    said = said.replace(str(setup.venue_dir), "DIR")
    first = lines[0].replace(str(setup.venue_dir), "DIR") if lines else ""
    outcome.seen += (
        f"start exit {started.returncode}, {len(lines)} line: '{first}'; "
        f"restore exit {restored.returncode}, says lost: '{said}'"
    )
    outcome.ok = refused and restored.returncode == 0
    return outcome


async def full_disk(root: Path, cycles: int, size_mb: int) -> Outcome:
    """The venue's directory on a small tmpfs, filled while candidates save, then freed."""
    outcome = Outcome(
        f"full disk, tmpfs {size_mb} MiB ({cycles} cycles)",
        "503 storage-full + Retry-After while full; saves resume when freed",
    )
    mount = root / "disk"
    mount.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount)],
        capture_output=True, check=False,
    ).returncode == 0  # fmt: skip
    if not mounted:
        outcome.seen, outcome.ok = "not run: mounting a tmpfs needs root", False
        return outcome
    from tests.fulldisk import fill

    proc = None
    try:
        setup = quietly(build_venue, mount)
        port, log = free_port(), root / "disk-serve.log"
        base = f"http://127.0.0.1:{port}"
        proc = await asyncio.to_thread(start_server, setup.venue_dir, port, log)
        await unlock(base, setup)
        load = Load(base, candidates_of(setup)[:6], outcome)
        tasks = load.start()
        refused_each, resumed = [], 0
        try:
            await load.wait_for_acks(30, 60)
            for k in range(cycles):
                say(f"disk full {k + 1}/{cycles}: {load.acked} saves acknowledged so far")
                before = load.outcome.refusals["503 storage-full"]
                filler = await asyncio.to_thread(fill, mount)
                await asyncio.sleep(2.0)
                refused_each.append(load.outcome.refusals["503 storage-full"] - before)
                filler.unlink()
                if await load.wait_for_acks(len(load.candidates) * 3, 30):
                    resumed += 1
                await asyncio.sleep(1.0)
        finally:
            load.stop.set()
            await asyncio.gather(*tasks)
            stop_gracefully(proc)
        account(load, setup.venue_dir, outcome)
        outcome.seen += (
            f"503 storage-full per cycle {refused_each}, {load.retry_after_missing} without "
            f"Retry-After, saves resumed after {resumed} of {cycles}"
        )
        outcome.ok = resumed == cycles and all(refused_each) and not load.retry_after_missing
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        subprocess.run(["umount", "-l", str(mount)], check=False)
    return outcome


def table(outcomes: list[Outcome]) -> str:
    rows = [("attack", "expected", "seen", "lost", "dup", "refusals (status slug: n)", "ok")]
    for o in outcomes:
        refusals = ", ".join(f"{k}: {n}" for k, n in sorted(o.refusals.items())) or "none"
        if o.not_problem:
            refusals += f"; NOT problem+json: {o.not_problem}"
        else:
            refusals += "; all problem+json"
        good = o.ok and o.lost == 0 and o.duplicated == 0 and o.not_problem == 0
        rows.append((o.attack, o.expected, o.seen, str(o.lost), str(o.duplicated), refusals,
                     "yes" if good else "NO"))  # fmt: skip
    return "\n".join("| " + " | ".join(r) + " |" for r in [rows[0], tuple("---" for _ in rows[0]),
                                                           *rows[1:]])  # fmt: skip


async def run(args: argparse.Namespace, root: Path) -> list[Outcome]:
    rng = random.Random(args.seed)
    outcomes: list[Outcome] = []
    began = time.monotonic()
    say(f"fault suite in {root}")
    if args.kills:
        killed, setup, load = await kills(root / "kill", args.kills, rng)
        outcomes.append(killed)
        say("corrupt database")
        outcomes.append(await corrupt_database(setup, load, rng))
    if args.disk_cycles:
        outcomes.append(await full_disk(root, args.disk_cycles, args.disk_mb))
    if args.cuts:
        say(f"{args.cuts} upload cuts")
        outcomes.append(await upload_cuts(root / "cuts", args.cuts, args.seed))
    if args.restarts:
        say(f"{args.restarts} central restarts")
        outcomes.append(await central_restarts(root / "restarts", args.restarts, args.seed))
    print(f"fault suite: {time.monotonic() - began:.0f} s", flush=True)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the CI run: about a minute")
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--disk-cycles", type=int, default=3)
    parser.add_argument("--disk-mb", type=int, default=48)
    parser.add_argument("--cuts", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261205)
    args = parser.parse_args(argv)
    if args.short:
        args.kills, args.disk_cycles, args.cuts, args.restarts = 3, 1, 10, 1
    with tempfile.TemporaryDirectory(prefix="cbt-faults-") as tmp:
        outcomes = asyncio.run(run(args, Path(tmp)))
    print(table(outcomes))
    bad = [o for o in outcomes if not (o.ok and o.lost == 0 and o.duplicated == 0
                                       and o.not_problem == 0)]  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
