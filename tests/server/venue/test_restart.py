"""A venue restart during an exam costs no one time (server.venue.restart).

The real app is stopped and a new one started on the same venue directory with the same
injected clock, so every figure is exact to the millisecond.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from server.clock import iso
from server.venue.app import create_app
from server.venue.closer import close_due_attempts
from server.venue.restart import paper_key_path, write_alive
from server.venue.settings import Settings
from server.venue.workspace import open_venue_db
from tests.server.conftest import SESSION_ID, START, Candidate, VenueKit, start_venue


async def restart(kit: VenueKit, aiohttp_client: Any, down_for: timedelta, **settings: Any) -> None:
    """Stop the app (a clean stop), let `down_for` pass, start a new one on the same directory."""
    await kit.client.close()
    kit.clock.advance(seconds=down_for.total_seconds())
    options = {"log_requests": False, "close_interval_s": 3600, **settings}
    app = create_app(Settings(venue_dir=kit.directory, **options), clock=kit.clock)
    kit.client = await aiohttp_client(app)
    kit.staff.clear()


async def attempt(kit: VenueKit, who: Candidate) -> dict[str, Any]:
    resp = await kit.client.get("/api/v1/attempt", headers=who.auth)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def save(kit: VenueKit, who: Candidate, seq: int) -> tuple[int, dict[str, Any]]:
    resp = await kit.client.get("/api/v1/attempt/paper", headers=who.auth)
    if resp.status != 200:
        return resp.status, dict(await resp.json())
    item = (await resp.json())["sections"][0]["items"][0]
    answer = [item["options"][seq % len(item["options"])]["id"]]
    resp = await kit.client.put(
        "/api/v1/attempt/responses", json={"seq": seq, "responses": {item["id"]: answer}},
        headers=who.auth,
    )  # fmt: skip
    return resp.status, dict(await resp.json())


def rows(kit: VenueKit, sql: str) -> list[tuple[Any, ...]]:
    db = open_venue_db(kit.directory)
    try:
        return [tuple(r) for r in db.execute(sql).fetchall()]
    finally:
        db.close()


async def started_exam(kit: VenueKit, others: int = 0) -> list[Candidate]:
    await kit.unlock()
    kit.clock.set(START + timedelta(minutes=1))
    people = [await kit.login_candidate(n) for n in range(1, 2 + others)]
    kit.clock.set(START + timedelta(minutes=10))
    who = people[0]
    assert (await save(kit, who, 1))[0] == 200
    await close_due_attempts(kit.app)  # keeps the sealed paper key, now that the exam started
    return people


async def test_the_paper_comes_back_by_itself_and_no_one_loses_time(
    venue_kit: VenueKit, aiohttp_client: Any
) -> None:
    """Down 95 s: at start-up the paper reopens from its sealed key; time left is exactly what
    it was, saves go on, one incident and one grant per open attempt record it."""
    who, other = await started_exam(venue_kit, others=1)
    before = (await attempt(venue_kit, who))["time_left_ms"]
    assert paper_key_path(venue_kit.directory, SESSION_ID).exists()

    await restart(venue_kit, aiohttp_client, timedelta(seconds=95))

    now = await attempt(venue_kit, who)
    assert now["status"] == "answering" and now["paper_ready"]
    assert now["time_left_ms"] == before
    assert (await save(venue_kit, who, 2)) == (200, {"acked_seq": 2})
    grants = rows(venue_kit, "SELECT granted_ms, reason, granted_by FROM time_grants")
    assert [g[0] for g in grants] == [95_000, 95_000]  # both candidates who had logged in
    assert all(g[1].startswith("venue-restart") and g[2] == "system" for g in grants)
    assert (await attempt(venue_kit, other))["time_left_ms"] == before
    incidents = rows(venue_kit, "SELECT kind, ticket, room_id, recorded_by FROM incidents")
    assert incidents == [("server_restart", None, None, "system")]
    outage = rows(venue_kit, "SELECT reopened_by, granted_ms, attempts FROM outages")
    assert outage == [("sealed-key", 95_000, 2)]
    monitor = await venue_kit.client.get(
        "/api/v1/staff/status", headers=await venue_kit.as_staff("chief")
    )
    seats = {c["ticket"]: c for c in (await monitor.json())["candidates"]}
    assert seats[who.ticket]["time_granted_ms"] == 95_000  # the time-change total counts it


async def test_with_the_ceremony_the_clock_stands_still_until_the_paper_is_open(
    venue_kit: VenueKit, aiohttp_client: Any
) -> None:
    """Without a sealed key the exam is paused (not waiting), saves say so (not 'not
    started'), the clock stands still, and the ceremony gives the whole span back."""
    (who,) = await started_exam(venue_kit)
    before = (await attempt(venue_kit, who))["time_left_ms"]

    await restart(venue_kit, aiohttp_client, timedelta(seconds=40), reopen_sealed=False)
    assert not paper_key_path(venue_kit.directory, SESSION_ID).exists()  # destroyed at start
    paused = await attempt(venue_kit, who)
    assert (paused["status"], paused["paused_reason"]) == ("paused", "restart")
    assert paused["time_left_ms"] == before
    status, problem = await save(venue_kit, who, 2)
    assert status == 409 and problem["type"].endswith("/exam-paused"), problem
    assert "kept on this computer" in problem["detail"]
    dashboard = await venue_kit.client.get(
        "/api/v1/staff/dashboard", headers=await venue_kit.as_staff("admin")
    )
    outage = (await dashboard.json())["outage"]
    assert outage["session_id"] == SESSION_ID and outage["reopened_at"] is None
    venue_kit.clock.advance(seconds=70)  # staff gather for the ceremony
    assert (await attempt(venue_kit, who))["time_left_ms"] == before
    await close_due_attempts(venue_kit.app)

    await venue_kit.unlock()
    back = await attempt(venue_kit, who)
    assert (back["status"], back["paused_reason"]) == ("answering", None)
    assert back["time_left_ms"] == before
    assert (await save(venue_kit, who, 2)) == (200, {"acked_seq": 2})
    assert rows(venue_kit, "SELECT granted_ms FROM time_grants") == [(110_000,)]
    assert rows(venue_kit, "SELECT reopened_by FROM outages")[0][0].startswith("ceremony:")
    dashboard = await venue_kit.client.get(
        "/api/v1/staff/dashboard", headers=await venue_kit.as_staff("admin")
    )
    outage = (await dashboard.json())["outage"]
    assert (outage["granted_ms"], outage["attempts"]) == (110_000, 1)
    assert len(rows(venue_kit, "SELECT 1 FROM incidents")) == 1


async def test_after_a_crash_the_clock_stops_at_the_last_alive_mark(
    venue_kit: VenueKit, aiohttp_client: Any
) -> None:
    """A kill leaves only the alive mark: the outage starts there, never later."""
    (who,) = await started_exam(venue_kit)
    mark = venue_kit.clock.now()
    before = (await attempt(venue_kit, who))["time_left_ms"]
    await restart(venue_kit, aiohttp_client, timedelta(seconds=0))  # reopened at once
    await venue_kit.client.close()
    # What a kill -9 leaves: the mark of the last beat, no clean stop; then 30 s dark.
    write_alive(venue_kit.directory, mark)
    venue_kit.clock.advance(seconds=30)
    app = create_app(
        Settings(venue_dir=venue_kit.directory, log_requests=False, close_interval_s=3600),
        clock=venue_kit.clock,
    )
    venue_kit.client = await aiohttp_client(app)
    assert (await attempt(venue_kit, who))["time_left_ms"] == before
    down = rows(venue_kit, "SELECT down_at FROM outages ORDER BY outage_id")
    assert down[-1][0] == iso(mark)


async def test_the_sealed_key_is_kept_from_the_start_to_the_end_only(
    venue_kit: VenueKit,
) -> None:
    """Unlocked before the start: nothing on disk; from the start: the sealed key, mode 0600,
    no key in clear; at the session's end: overwritten and removed."""
    await venue_kit.unlock()
    path = paper_key_path(venue_kit.directory, SESSION_ID)
    await close_due_attempts(venue_kit.app)
    assert not path.exists()
    venue_kit.clock.set(START)
    await close_due_attempts(venue_kit.app)
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600
    document = json.loads(path.read_text())
    assert document["format"] == "cbt-paper-key" and document["session_id"] == SESSION_ID
    venue_kit.clock.set(START + timedelta(minutes=venue_kit.template.duration_minutes, seconds=1))
    await close_due_attempts(venue_kit.app)
    assert not path.exists()


async def test_a_venue_that_keeps_no_key_writes_none(
    venue_template: Any, tmp_path: Path, aiohttp_client: Any
) -> None:
    """reopen_sealed=False: the paper key never reaches the disk."""
    kit = await start_venue(venue_template, tmp_path, aiohttp_client, reopen_sealed=False)
    await kit.unlock()
    kit.clock.set(START + timedelta(minutes=1))
    await close_due_attempts(kit.app)
    assert not list((kit.directory / "run").glob("paper-key-*"))


async def test_a_restart_before_the_start_costs_nothing_and_grants_nothing(
    venue_kit: VenueKit, aiohttp_client: Any
) -> None:
    """Down and back before the start: no time to give back, still one incident."""
    await venue_kit.unlock()
    who = await venue_kit.login_candidate(3)
    await restart(venue_kit, aiohttp_client, timedelta(minutes=5), reopen_sealed=False)
    waiting = await attempt(venue_kit, who)
    assert waiting["status"] == "waiting"
    await venue_kit.unlock()
    assert rows(venue_kit, "SELECT granted_ms, attempts FROM outages") == [(0, 0)]
    assert rows(venue_kit, "SELECT COUNT(*) FROM time_grants") == [(0,)]


async def test_a_pause_open_across_the_restart_is_not_counted_twice(
    venue_kit: VenueKit, aiohttp_client: Any
) -> None:
    """The venue was paused when the server went down: the pause already stopped the clock,
    so the outage gives nothing more back, and time left after the resume is as before."""
    (who,) = await started_exam(venue_kit)
    before = (await attempt(venue_kit, who))["time_left_ms"]
    chief = await venue_kit.as_staff("chief")
    resp = await venue_kit.client.post(
        "/api/v1/staff/pauses", json={"room_id": None, "reason": "fire alarm"}, headers=chief
    )
    assert resp.status == 200, await resp.text()
    venue_kit.clock.advance(seconds=20)
    await restart(venue_kit, aiohttp_client, timedelta(seconds=40))
    assert (await attempt(venue_kit, who))["time_left_ms"] == before  # still paused, once
    venue_kit.clock.advance(seconds=30)
    resp = await venue_kit.client.post(
        "/api/v1/staff/pauses/resume", json={"room_id": None},
        headers=await venue_kit.as_staff("chief"),
    )  # fmt: skip
    assert resp.status == 200, await resp.text()
    assert (await attempt(venue_kit, who))["time_left_ms"] == before
    assert rows(venue_kit, "SELECT COUNT(*) FROM time_grants") == [(0,)]
    assert len(rows(venue_kit, "SELECT 1 FROM incidents WHERE kind = 'server_restart'")) == 1


async def test_a_damaged_sealed_key_leaves_the_exam_paused_for_the_ceremony(
    venue_kit: VenueKit, aiohttp_client: Any, caplog: Any
) -> None:
    """A sealed key file that does not open is named in the log (no key material), the exam
    stays paused with its clock stopped, and the ceremony brings it back with the time."""
    (who,) = await started_exam(venue_kit)
    before = (await attempt(venue_kit, who))["time_left_ms"]
    path = paper_key_path(venue_kit.directory, SESSION_ID)
    document = json.loads(path.read_text())
    sealed = bytearray(base64.b64decode(document["sealed_key"]))
    sealed[-1] ^= 1
    path.write_text(json.dumps({**document, "sealed_key": base64.b64encode(sealed).decode()}))
    with caplog.at_level(logging.WARNING, logger="server.venue.restart"):
        await restart(venue_kit, aiohttp_client, timedelta(seconds=30))
    failed = [r.getMessage() for r in caplog.records if "reopen_failed" in r.getMessage()]
    assert failed and "does not open on this machine" in failed[0]
    assert document["sealed_key"] not in caplog.text
    paused = await attempt(venue_kit, who)
    assert (paused["status"], paused["paused_reason"]) == ("paused", "restart")
    await venue_kit.unlock()
    assert (await attempt(venue_kit, who))["time_left_ms"] == before
