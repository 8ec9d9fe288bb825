"""The centre's half of the fault suite (loadtests/faults.py): upload cuts through a proxy at
random byte offsets, and the central server killed and restarted in the middle of an upload.

Both run against a real `cbt central serve` process on loopback (SQLite in a temporary
directory), with the venue's own uploader (`server.venue.upload.upload_package`, signed with
the venue's key). What counts: every package ends with a receipt that verifies and exactly one
byte-identical copy at the centre (lost: a package without a receipt or whose bytes differ;
duplicated: a package held more than once), and every refusal the uploader saw on the way is
problem+json.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from paperpack.authority import Authority, init_authority, load_authority
from server.central.app import open_storage
from server.protocol.receipts import verify_receipt
from server.venue.upload import Backoff, upload_package
from tests.server.central.conftest import VenueKeys, make_package, new_venue
from tests.server.central.test_faults import CuttingProxy

FAST = Backoff(first_s=0.005, max_s=0.05, attempts=60)
PATIENT = Backoff(first_s=0.05, max_s=0.5, attempts=200)  # outlasts a central restart


@dataclass
class Outcome:
    """One attack's row of the table."""

    attack: str
    expected: str
    seen: str = ""
    lost: int = 0
    duplicated: int = 0
    refusals: Counter[str] = field(default_factory=Counter)  # "status slug" -> count
    not_problem: int = 0  # refusals that were not problem+json
    ok: bool = True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cbt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


class CentralProcess:
    """`cbt central serve` on a fixed loopback port, started and killed at will."""

    def __init__(self, directory: Path, port: int, log: Path) -> None:
        self.directory, self.port, self.log = directory, port, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "central", "serve", str(self.directory),
                 "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"cbt central serve exited: see {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"cbt central serve did not start in 60 s: see {self.log}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@dataclass
class Centre:
    directory: Path
    authority: Authority
    venue: VenueKeys
    server: CentralProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


def make_centre(root: Path) -> Centre:
    """An authority, a central directory with one registered venue, the server started."""
    init_authority(root / "auth")
    authority = load_authority(root / "auth")
    directory = root / "central"
    done = cbt("central", "init", str(directory), "--authority", str(root / "auth"))
    if done.returncode:
        raise SystemExit(done.stderr)
    venue = new_venue("V-FAULTS")
    record = venue.record()
    keys_file = root / "venue-keys.json"
    keys = {"venue_id": venue.venue_id, "sign_public": record.signing_public,
            "wrap_public": record.wrap_public}  # fmt: skip
    keys_file.write_text(json.dumps(keys))
    done = cbt("central", "venues", "add", str(directory), "--venue-id", venue.venue_id,
               "--public-key", str(keys_file))  # fmt: skip
    if done.returncode:
        raise SystemExit(done.stderr)
    server = CentralProcess(directory, free_port(), root / "central.log")
    server.start()
    return Centre(directory, authority, venue, server)


class RefusalLog:
    """Counts the 4xx/5xx answers the uploader got (aiohttp trace), and which were not
    problem+json."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_end.append(self._seen)

    async def _seen(self, session: Any, context: Any, params: Any) -> None:
        response = params.response
        if response.status < 400:
            return
        kind = response.headers.get("Content-Type", "")
        slug = "HEAD"  # a HEAD answer has no body: its Content-Type must still say problem+json
        if not kind.startswith("application/problem+json"):
            self.outcome.not_problem += 1
            slug = "not problem+json"
        elif params.method != "HEAD":
            slug = await problem_slug(response)
        self.outcome.refusals[f"{response.status} {slug}"] += 1


async def problem_slug(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return "unreadable"
    return str(body.get("type", "")).rsplit("/", 1)[-1]


async def check_held(centre: Centre, sent: dict[str, bytes], outcome: Outcome) -> None:
    """Lost: sent but not held byte-identical; duplicated: held more than once."""
    storage = open_storage(str(centre.directory / "central.db"))
    await storage.open()
    try:
        held = await storage.list_packages()
        counts = Counter(p.package_sha256 for p in held)
        sessions = Counter((p.session_id, p.venue_id) for p in held)
        outcome.duplicated = sum(n - 1 for n in counts.values() if n > 1) + sum(
            n - 1 for n in sessions.values() if n > 1
        )
        for digest, data in sent.items():
            if counts.get(digest) != 1 or await storage.package_data(digest) != data:
                outcome.lost += 1
        positions = [p.log_position for p in held]
        if positions != list(range(1, len(held) + 1)):
            outcome.ok = False
            outcome.seen += f"; log positions not gap-free: {positions[:5]}..."
    finally:
        await storage.close()


async def upload_cuts(root: Path, cuts: int, seed: int) -> Outcome:
    """Each package's upload is cut once at a random byte of its traffic (request or answer)."""
    outcome = Outcome(
        f"upload cut at a random byte ({cuts}x)",
        "resume after HEAD; 1 identical copy + a valid receipt each",
    )
    centre = make_centre(root)
    proxy = CuttingProxy(centre.server.port)
    await proxy.start()
    rng = random.Random(seed)
    sent: dict[str, bytes] = {}
    refusals = RefusalLog(outcome)
    public = centre.authority.signing_public
    try:
        url = f"http://127.0.0.1:{proxy.port}"
        async with aiohttp.ClientSession(trace_configs=[refusals.trace]) as http:
            calibration = make_package(centre.venue, centre.authority, session_id="S-cal")
            proxy.arm(None)
            await upload_package(
                http, url, calibration, centre.authority.signing_public,
                venue_key=centre.venue.signing, chunk_size=2048, backoff=FAST,
            )  # fmt: skip
            sent[hashlib.sha256(calibration).hexdigest()] = calibration
            traffic = proxy.seen
            retries = 0
            for n in range(cuts):
                data = make_package(centre.venue, centre.authority, session_id=f"S{n}", seed=n)
                proxy.arm(rng.randint(1, traffic))
                result = await upload_package(
                    http, url, data, centre.authority.signing_public,
                    venue_key=centre.venue.signing, chunk_size=2048, backoff=FAST,
                )  # fmt: skip
                verify_receipt(result.receipt, public, result.package_sha256)
                sent[result.package_sha256] = data
                retries += result.attempts - 1
        await check_held(centre, sent, outcome)
        outcome.seen = (
            f"{proxy.cuts} cuts, {retries} retries, {len(sent)} receipts verified" + outcome.seen
        )
    finally:
        await proxy.close()
        centre.server.stop()
    return outcome


async def central_restarts(root: Path, restarts: int, seed: int) -> Outcome:
    """The central server is SIGKILLed while a package is on its way, and started again."""
    outcome = Outcome(
        f"central kill -9 + restart mid-upload ({restarts}x)",
        "the venue resumes; 1 identical copy + a valid receipt each",
    )
    centre = make_centre(root)
    rng = random.Random(seed)
    sent: dict[str, bytes] = {}
    refusals = RefusalLog(outcome)
    public = centre.authority.signing_public
    killed_at: list[int] = []
    try:
        async with aiohttp.ClientSession(trace_configs=[refusals.trace]) as http:
            for n in range(restarts):
                data = make_package(centre.venue, centre.authority, session_id=f"R{n}",
                                    candidates=120, seed=n)  # fmt: skip
                cut = rng.uniform(0.2, 0.8)
                moved = asyncio.Event()

                def progress(done: int, total: int, cut: float = cut, moved: Any = moved) -> None:
                    if done >= total * cut:
                        moved.set()

                task = asyncio.create_task(upload_package(
                    http, centre.url, data, centre.authority.signing_public,
                    venue_key=centre.venue.signing, chunk_size=4096, backoff=PATIENT,
                    progress=progress,
                ))  # fmt: skip
                await asyncio.wait({task, asyncio.create_task(moved.wait())},
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if not task.done():
                    killed_at.append(round(cut * 100))
                    centre.server.kill()
                    await asyncio.sleep(rng.uniform(0.1, 1.0))
                    await asyncio.to_thread(centre.server.start)
                result = await task
                verify_receipt(result.receipt, public, result.package_sha256)
                sent[result.package_sha256] = data
        await check_held(centre, sent, outcome)
        outcome.seen = (
            f"{len(killed_at)} kills mid-upload (at {min(killed_at, default=0)}-"
            f"{max(killed_at, default=0)}% of the bytes), {len(sent)} receipts verified"
            + outcome.seen
        )
    finally:
        centre.server.stop()
    return outcome
