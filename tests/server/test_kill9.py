"""kill -9: a real `cbt venue serve` process under concurrent saves is SIGKILLed mid-stream and
restarted; every save it acknowledged is in the database (both sides counted).

The set-up is the real one, end to end: a paper sealed with paperpack for a session that
started a minute ago, `cbt venue init / import / staff add / roster import / seats`, the unlock
ceremony over HTTP (two supervisors' shares and the release code), then candidates logging in,
fetching their variant and autosaving as fast as the server acknowledges.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlite_utils import Database

from paperpack.authority import init_authority, load_authority
from paperpack.crypto import public_key_text
from paperpack.pack import pack_venue
from paperpack.release import issue_release
from paperpack.session import session_from_dict
from paperpack.synthetic import synthetic_paper
from server.cli import main as cbt
from server.venue.journal import derive_responses, verify_chain
from tests.conftest import EXAMPLES

SESSION = "K9-27"
VENUE = "K9-01"
PASSWORD = "kill-nine-password"
CLIENTS = 12
SAVE_FOR_S = 2.5


@dataclasses.dataclass
class Setup:
    venue_dir: Path
    cards: dict[int, str]
    release_code: str
    candidates: list[tuple[str, str]]  # (ticket, id_number)


def build_venue(root: Path) -> Setup:
    """Seal a paper for a session that started a minute ago and set a venue up with the CLI."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=1)
    venue_dir = root / "venue"
    assert cbt(["venue", "init", str(venue_dir), "--venue-id", VENUE]) == 0
    wrap_public = json.loads((venue_dir / "venue.json").read_text())["wrap_public"]
    init_authority(root / "authority")
    authority = load_authority(root / "authority")
    paper = dataclasses.replace(synthetic_paper(12, seed=9), subject_code="27", duration_minutes=60)
    session = session_from_dict(
        {
            "session_id": SESSION,
            "subject": {"code": "27", "name": "IT project management"},
            "start": start.isoformat(),
            "duration_minutes": 60,
            "rules": {"identity_check": 0},  # candidates answer at once (art. 30 is not tested)
            "venues": [
                {
                    "id": VENUE,
                    "name": "Kill nine",
                    "public_key": wrap_public,
                    "supervisors": 3,
                    "threshold": 2,
                }
            ],
        }
    )
    packed = pack_venue(paper, session, session.venues[0], authority, root / "out", now=now)
    cards = {
        int(p.stem.split("-")[1]): p.read_text(encoding="utf-8")
        for p in sorted(packed.shares_dir.glob("holder-*.txt"))
    }
    release = issue_release(authority, SESSION, VENUE, now=now)
    pub = root / "authority-sign.pub"
    pub.write_text(public_key_text(authority.signing_public) + "\n")
    d = str(venue_dir)
    (root / "pw").write_text(PASSWORD + "\n")
    for login, role in (("admin", "system_administrator"), ("chief", "chief_examiner"),
                        ("inv1", "invigilator"), ("inv2", "invigilator")):  # fmt: skip
        assert cbt(["venue", "staff", "add", d, "--login", login, "--role", role,
                    "--name", login.title(), "--password-file", str(root / "pw")]) == 0  # fmt: skip
    pw = str(root / "pw")
    assert cbt(["venue", "import", d, str(packed.package_dir), "--authority-pub", str(pub),
                "--login", "admin", "--confirm-login", "chief", "--password-file", pw,
                "--confirm-password-file", pw]) == 0  # fmt: skip
    roster = EXAMPLES / "roster.csv"
    assert cbt(["venue", "roster", "import", d, str(roster), "--session", SESSION]) == 0
    assert cbt(["venue", "seats", d, "--session", SESSION,
                "--rooms", str(EXAMPLES / "rooms.yaml")]) == 0  # fmt: skip
    rows = [line.split(",") for line in roster.read_text(encoding="utf-8").splitlines()[1:]]
    return Setup(venue_dir, cards, release.code, [(r[0], r[2]) for r in rows[:CLIENTS]])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    venue_dir: Path, port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CBT_LOG_REQUESTS": "0", **(env or {})}
    command = [sys.executable, "-m", "server.cli", "venue", "serve", str(venue_dir)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                assert json.load(r) == {"ok": True}
                return proc
        except OSError:
            assert proc.poll() is None, f"the server exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"no answer in 30 s: {log.read_text()}"
            time.sleep(0.2)


async def staff_session(http: aiohttp.ClientSession, base: str, login: str) -> dict[str, str]:
    async with http.post(
        f"{base}/api/v1/staff/login", json={"login": login, "password": PASSWORD}
    ) as resp:
        assert resp.status == 200, await resp.text()
        csrf = (await resp.json())["csrf_token"]
        cookie = resp.cookies["cbt_staff"].value
    return {"Cookie": f"cbt_staff={cookie}", "X-CSRF-Token": csrf}


async def unlock(base: str, setup: Setup) -> None:
    """The ceremony over HTTP: admin opens it, chief and inv1 enter cards 1 and 2, the code."""
    jar = aiohttp.DummyCookieJar()  # each person's cookie travels only in their own headers
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        people = {p: await staff_session(http, base, p) for p in ("admin", "chief", "inv1")}
        steps: list[tuple[str, str, dict[str, Any], int]] = [
            ("admin", "/api/v1/staff/ceremony", {"session_id": SESSION}, 201),
            ("chief", "/api/v1/staff/ceremony/shares", {"share": setup.cards[1]}, 200),
            ("inv1", "/api/v1/staff/ceremony/shares", {"share": setup.cards[2]}, 200),
            ("admin", "/api/v1/staff/ceremony/release", {"code": setup.release_code}, 200),
        ]
        for who, path, body, status in steps:
            async with http.post(base + path, json=body, headers=people[who]) as resp:
                assert resp.status == status, await resp.text()


@dataclasses.dataclass
class Tally:
    acked: set[tuple[str, int]] = dataclasses.field(default_factory=set)
    sent: set[tuple[str, int]] = dataclasses.field(default_factory=set)


async def candidate(base: str, ticket: str, id_number: str, tally: Tally, stop_at: float) -> None:
    """Log in, fetch the paper, then save seq 1, 2, 3... until the server goes away."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.post(
            f"{base}/api/v1/candidate/login", json={"ticket": ticket, "id_number": id_number}
        ) as resp:
            assert resp.status == 200, await resp.text()
            auth = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        async with http.get(f"{base}/api/v1/attempt/paper", headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            paper = await resp.json()
        items = [i for s in paper["sections"] for i in s["items"] if i["type"] == "single_choice"]
        seq = 0
        try:
            while time.monotonic() < stop_at:
                seq += 1
                item = items[seq % len(items)]
                option = item["options"][seq % len(item["options"])]["id"]
                tally.sent.add((ticket, seq))
                async with http.put(
                    f"{base}/api/v1/attempt/responses",
                    json={"seq": seq, "responses": {item["id"]: [option]}},
                    headers=auth,
                ) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
                    assert body == {"acked_seq": seq}
                    tally.acked.add((ticket, seq))
        except (TimeoutError, aiohttp.ClientError):
            return  # the server was killed under this save: it may or may not have committed


async def save_until_killed(base: str, setup: Setup, proc: subprocess.Popen[bytes]) -> Tally:
    tally = Tally()
    stop_at = time.monotonic() + 30  # the kill ends the clients long before this
    clients = [
        asyncio.create_task(candidate(base, t, i, tally, stop_at)) for t, i in setup.candidates
    ]
    deadline = time.monotonic() + 60
    while len(tally.acked) < 50:  # every client is logged in and saving
        await asyncio.sleep(0.05)
        failed = [c.exception() for c in clients if c.done() and c.exception()]
        assert not failed, failed[0]
        assert time.monotonic() < deadline, "the clients did not get 50 saves acknowledged"
    await asyncio.sleep(SAVE_FOR_S)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    await asyncio.wait_for(asyncio.gather(*clients), timeout=30)
    return tally


def journal_by_ticket(db_path: Path) -> set[tuple[str, int]]:
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT a.ticket, j.seq FROM journal j JOIN attempts a USING (attempt_id)"
        ).fetchall()
    finally:
        conn.close()
    return {(str(t), int(s)) for t, s in rows}


@pytest.mark.slow
def test_every_acknowledged_save_survives_kill_9(tmp_path: Path) -> None:
    """SIGKILL under concurrent saves, restart: acked <= stored <= sent, every ack is stored."""
    setup = build_venue(tmp_path)
    port, log = free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    proc = start_server(setup.venue_dir, port, log)
    try:
        asyncio.run(unlock(base, setup))
        tally = asyncio.run(save_until_killed(base, setup, proc))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    restarted = start_server(setup.venue_dir, port, log)  # recovers the WAL on start-up
    restarted.terminate()
    restarted.wait(timeout=30)

    stored = journal_by_ticket(setup.venue_dir / "venue.db")
    missing = tally.acked - stored
    print(f"sent {len(tally.sent)}, acknowledged {len(tally.acked)}, stored {len(stored)}")
    assert not missing, f"{len(missing)} acknowledged saves lost, e.g. {sorted(missing)[:5]}"
    assert stored <= tally.sent  # nothing stored that was never sent
    assert len(tally.acked) >= 50 and len(stored) >= len(tally.acked)
    db = Database(sqlite3.connect(setup.venue_dir / "venue.db"))
    for (attempt_id,) in db.execute("SELECT attempt_id FROM attempts").fetchall():
        verify_chain(db, attempt_id)
        current = dict(
            db.execute(
                "SELECT item_id, answer FROM responses WHERE attempt_id = ?", (attempt_id,)
            ).fetchall()
        )
        assert {k: json.loads(v) for k, v in current.items()} == derive_responses(db, attempt_id)
    db.close()
