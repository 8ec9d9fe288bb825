"""Issue 16, F6: a full disk gives a clean, retryable refusal, loses nothing acknowledged, and
everything carries on by itself once there is space again.

The venue runs on a real, small tmpfs (mounted here; root only) filled to the last byte by a
filler file: saves and logins get 503 problem+json `storage-full` with Retry-After, never a
500; the continuous backup fails quietly (no "cannot rollback - no transaction is active")
and catches up when the filler is deleted; every save acknowledged before, during and after
is in the journal and in the backup.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from server.venue import keys
from server.venue.backup import backup_status
from server.venue.workspace import open_venue_db
from tests.fulldisk import fill, small_disk
from tests.server.conftest import (
    CANDIDATES,
    PASSWORD,
    START,
    VenueKit,
    VenueTemplate,
    id_number,
    start_venue,
    ticket,
)

DISK_MB = 24


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", DISK_MB) as mount:
        yield mount


async def problem_of(resp: Any) -> dict[str, Any]:
    text = await resp.text()
    assert resp.status == 503, text
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert body["type"].endswith("/storage-full") and body["status"] == 503
    assert int(resp.headers["Retry-After"]) == body["retry_after_s"] > 0
    return body


async def test_f6_a_full_disk_refuses_cleanly_loses_nothing_and_recovers(
    venue_template: VenueTemplate,
    disk: Path,
    aiohttp_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kit: VenueKit = await start_venue(venue_template, disk, aiohttp_client)
    await kit.unlock()
    candidates = [await kit.login_candidate(n) for n in range(1, 6)]
    kit.clock.set(START + timedelta(minutes=2))
    paper = await (await kit.client.get("/api/v1/attempt/paper", headers=candidates[0].auth)).json()
    essay = next(i for s in paper["sections"] for i in s["items"] if i["type"] == "essay")["id"]
    acked: dict[str, set[int]] = {}  # ticket -> the seqs acknowledged

    async def save(n: int, seq: int) -> Any:
        c = candidates[n]
        # Each candidate's paper has its own tokens; the essay's is looked up per candidate.
        resp = await kit.client.put(
            "/api/v1/attempt/responses",
            json={"seq": seq, "responses": {tokens[n]: f"answer {seq} " + "x" * 3000}},
            headers=c.auth,
        )
        if resp.status == 200:
            acked.setdefault(c.ticket, set()).add(seq)
        return resp

    tokens: list[str] = []
    for c in candidates:
        own = await (await kit.client.get("/api/v1/attempt/paper", headers=c.auth)).json()
        tokens.append(
            next(i for s in own["sections"] for i in s["items"] if i["type"] == "essay")["id"]
        )
    assert tokens[0] == essay
    for seq in range(1, 4):
        for n in range(len(candidates)):
            assert (await save(n, seq)).status == 200
    caplog.set_level(logging.WARNING)
    filler = fill(disk)

    # Full: saves go on until SQLite needs a page it cannot have, then 503 storage-full.
    seq, refused = 4, None
    while refused is None and seq < 200:
        for n in range(len(candidates)):
            resp = await save(n, seq)
            if resp.status != 200:
                refused = (n, seq, await problem_of(resp))
                break
        else:
            seq += 1
    assert refused is not None, "the disk never filled"
    assert "answers are kept" not in refused[2]["detail"]  # the server says what it knows
    await problem_of(await save(refused[0], refused[1]))  # the same save again: still full
    login = await kit.client.post(
        "/api/v1/candidate/login", json={"ticket": ticket(9), "id_number": id_number(9)}
    )
    await problem_of(login)
    staff = await kit.client.post(
        "/api/v1/staff/login", json={"login": "inv2", "password": PASSWORD}
    )
    await problem_of(staff)
    await asyncio.sleep(2.5)  # a backup pass or two meets the full disk
    assert "no transaction is active" not in caplog.text  # the backup's old second error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]

    # Space again: the page's retry of the refused save is acknowledged, logins work, the
    # backup catches up by itself.
    filler.unlink()
    for n in range(len(candidates)):  # each page sends what it holds: the refused round, then on
        for again in (seq, seq + 1):
            assert (await save(n, again)).status == 200
    assert sum(len(seqs) for seqs in acked.values()) == 5 * (seq + 1)
    assert (await kit.login_candidate(9)).ticket == ticket(9)
    store = kit.app[keys.STORE]
    target = kit.directory / "backup" / "continuous.db"
    for _ in range(100):
        status = await backup_status(store, target)
        if status["complete"]:
            break
        await asyncio.sleep(0.1)
    assert status["complete"], status

    db = open_venue_db(kit.directory)
    try:
        for c in candidates:
            saved = {
                r[0]
                for r in db.execute(
                    "SELECT j.seq FROM journal j JOIN attempts a USING (attempt_id)"
                    " WHERE a.ticket = ?",
                    (c.ticket,),
                )
            }
            assert acked[c.ticket] <= saved, c.ticket
    finally:
        db.close()


async def test_f6_the_dashboard_warns_below_the_threshold_in_exam_minutes(
    venue_template: VenueTemplate, disk: Path, aiohttp_client: Any
) -> None:
    """The staff dashboard gives the free space of the venue's disk and the exam-minutes of
    journal it holds: before any save from the estimate (a save every 10 s), then from the
    saves of the last 10 minutes; doubled because the backup is on the same disk. Below
    `disk_warn_mb` it is `low`."""
    kit = await start_venue(venue_template, disk, aiohttp_client, disk_warn_mb=8)
    await kit.unlock()
    chief = await kit.as_staff("chief")

    async def dashboard_disk() -> dict[str, Any]:
        resp = await kit.client.get("/api/v1/staff/dashboard", headers=chief)
        assert resp.status == 200, await resp.text()
        found: dict[str, Any] = (await resp.json())["disk"]
        return found

    before = await dashboard_disk()
    assert before["free_bytes"] > 8 << 20 and not before["low"]
    assert before["candidates"] == CANDIDATES and before["backup_on_same_disk"]
    assert not before["measured"]
    assert before["journal_bytes_per_minute"] == CANDIDATES * 6 * 1000 * 2
    # Leave 3 MiB: low, and the minutes follow from the free space.
    room = shutil.disk_usage(disk).free - (3 << 20)
    (disk / "filler").write_bytes(b"\0" * room)
    low = await dashboard_disk()
    assert low["low"] and low["free_bytes"] < 8 << 20
    assert low["exam_minutes"] == low["free_bytes"] // low["journal_bytes_per_minute"] == 5
    # Saves of 5 candidates in the last 10 minutes set the rate.
    kit.clock.set(START + timedelta(minutes=2))
    for n in range(1, 6):
        c = await kit.login_candidate(n)
        paper = await (await kit.client.get("/api/v1/attempt/paper", headers=c.auth)).json()
        essay = next(i for s in paper["sections"] for i in s["items"] if i["type"] == "essay")
        resp = await kit.client.put(
            "/api/v1/attempt/responses",
            json={"seq": 1, "responses": {essay["id"]: "x" * 2000}},
            headers=c.auth,
        )
        assert resp.status == 200
    measured = await dashboard_disk()
    assert measured["measured"]
    per_candidate_minute = measured["journal_bytes_per_minute"] / CANDIDATES / 2
    assert 200 < per_candidate_minute < 300  # one ~2,000-byte save + 400 in 10 minutes
