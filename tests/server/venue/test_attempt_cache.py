"""The in-memory attempt cache behind candidate authentication: it spares the database read on
repeated requests, every change that matters to a candidate's authorization shows at once,
and even a cache that was left stale on purpose cannot get a save accepted after a
submission, a close at time or a move to another computer."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from server.store import Store, routine_write, transaction
from server.venue import candidate_auth, closer, keys
from server.venue.workspace import open_venue_db
from tests.server.conftest import START, Candidate, VenueKit

from .test_api_rules import first_item, save, status


def cache_of(kit: VenueKit) -> candidate_auth.AttemptCache:
    return kit.app[keys.ATTEMPT_CACHE]


def freeze_stale(kit: VenueKit, stale: dict[str, candidate_auth.AttemptAuth]) -> None:
    """Put entries read before a change back into the cache as if they were still valid: what
    a missed invalidation would leave behind."""
    cache = cache_of(kit)
    cache.generation = kit.app[keys.STORE].generation
    cache.entries.update(stale)


async def answering(kit: VenueKit, n: int = 1) -> tuple[Candidate, dict[str, Any]]:
    """Candidate `n` logged in, 20 minutes into the exam, with one acknowledged save (seq 1)."""
    c = await kit.login_candidate(n)
    kit.clock.set(START + timedelta(minutes=20))
    item = await first_item(kit, c)
    assert await save(kit, c, 1, item, 0) == 200
    return c, item


async def test_repeated_requests_are_served_from_the_cache(venue_kit: VenueKit) -> None:
    """Once an attempt has been read, its next requests and saves do not read it again."""
    kit = venue_kit
    await kit.unlock()
    c, item = await answering(kit)
    await status(kit, c)
    cache = cache_of(kit)
    misses = cache.misses
    for seq in range(2, 6):
        assert await save(kit, c, seq, item, seq % 2) == 200
        await status(kit, c)
    assert cache.misses == misses
    assert cache.hits >= 8


async def test_status_shows_the_acked_seq_of_a_save_just_made(venue_kit: VenueKit) -> None:
    """A save leaves the cache valid but raises the acked seq the status reports."""
    kit = venue_kit
    await kit.unlock()
    c, item = await answering(kit)
    assert (await status(kit, c))["acked_seq"] == 1
    assert await save(kit, c, 2, item, 1) == 200
    assert (await status(kit, c))["acked_seq"] == 2


async def test_after_submission_a_save_is_refused_even_from_a_stale_cache(
    venue_kit: VenueKit,
) -> None:
    """After submitting, the status says submitted at once, and a save refused: also when the
    cache still holds the attempt as it was before the submission."""
    kit = venue_kit
    kit.clock.set(START - timedelta(minutes=5))
    await kit.unlock()
    c, item = await answering(kit)
    stale = dict(cache_of(kit).entries)
    kit.clock.set(START + timedelta(minutes=105))
    resp = await kit.client.post("/api/v1/attempt/submit", headers=c.auth)
    assert resp.status == 200, await resp.text()
    assert (await status(kit, c))["status"] == "submitted"
    assert await save(kit, c, 2, item, 1) == 409
    freeze_stale(kit, stale)
    assert (await status(kit, c))["status"] == "answering"  # the cache really is stale
    resp = await kit.client.put(
        "/api/v1/attempt/responses",
        json={"seq": 2, "responses": {item["id"]: [item["options"][1]["id"]]}},
        headers=c.auth,
    )
    assert resp.status == 409
    assert (await resp.json())["type"].endswith("/attempt-submitted")
    assert journal_seqs(kit) == [1]


async def test_after_the_close_at_time_a_save_is_refused_even_from_a_stale_cache(
    venue_kit: VenueKit,
) -> None:
    """An attempt closed at time by the closer (a grant kept it open past the plain end) takes
    no save, also when the cache still holds it open."""
    kit = venue_kit
    await kit.unlock()
    c, item = await answering(kit)
    resp = await kit.client.post(
        f"/api/v1/staff/candidates/{c.ticket}/time-grants",
        json={"granted_ms": 600_000, "reason": "machine failure"},
        headers=await kit.as_staff("inv1"),
    )
    assert resp.status == 200, await resp.text()
    kit.clock.set(START + timedelta(minutes=125))
    assert await save(kit, c, 2, item, 1) == 200  # the grant shows: 5 minutes are left
    stale = dict(cache_of(kit).entries)
    kit.clock.set(START + timedelta(minutes=130))
    assert await closer.close_due_attempts(kit.app) == 1
    assert (await status(kit, c))["status"] == "closed"
    freeze_stale(kit, stale)
    # The stale entry still ends at 11:10; move the clock back inside it to reach the store.
    kit.clock.set(START + timedelta(minutes=126))
    assert (await status(kit, c))["status"] == "answering"
    assert await save(kit, c, 3, item, 0) == 409
    assert journal_seqs(kit) == [1, 2]


async def test_after_a_seat_move_the_old_token_is_refused_even_from_a_stale_cache(
    venue_kit: VenueKit,
) -> None:
    """The login on the new computer ends the old token at once; a stale cache entry for the
    old token cannot save either, while the new token can."""
    kit = venue_kit
    await kit.unlock()
    c, item = await answering(kit)
    stale = dict(cache_of(kit).entries)
    resp = await kit.client.post(
        f"/api/v1/staff/candidates/{c.ticket}/seat",
        json={"room_id": "R1", "seat_no": 55, "reason": "screen failed"},
        headers=await kit.as_staff("inv2"),
    )
    assert resp.status == 200, await resp.text()
    assert (await status(kit, c))["seat_no"] == 55  # the move shows at once
    moved = await kit.login_candidate(1)
    old = await kit.client.get("/api/v1/attempt", headers=c.auth)
    assert old.status == 401
    freeze_stale(kit, stale)
    resp = await kit.client.put(
        "/api/v1/attempt/responses",
        json={"seq": 2, "responses": {item["id"]: [item["options"][1]["id"]]}},
        headers=c.auth,
    )
    assert resp.status == 401
    assert (await resp.json())["type"].endswith("/token-ended")
    assert await save(kit, moved, 2, item, 1) == 200
    assert journal_seqs(kit) == [1, 2]


async def test_pause_grant_and_resume_show_at_once(venue_kit: VenueKit) -> None:
    """A cached attempt shows a room pause, its resumption and a time grant on the very next
    request."""
    kit = venue_kit
    await kit.unlock()
    c, _ = await answering(kit)
    before = await status(kit, c)
    inv = await kit.as_staff("inv1")
    resp = await kit.client.post(
        "/api/v1/staff/pauses", json={"room_id": "R1", "reason": "fire alarm"}, headers=inv
    )
    assert resp.status == 200, await resp.text()
    assert (await status(kit, c))["status"] == "paused"
    kit.clock.advance(minutes=3)
    assert (await status(kit, c))["ends_at"] != before["ends_at"]  # the end moves with the pause
    resp = await kit.client.post("/api/v1/staff/pauses/resume", json={"room_id": "R1"}, headers=inv)
    assert resp.status == 200, await resp.text()
    resumed = await status(kit, c)
    assert resumed["status"] == "answering"
    resp = await kit.client.post(
        f"/api/v1/staff/candidates/{c.ticket}/time-grants",
        json={"granted_ms": 60_000, "reason": "lost a minute"},
        headers=inv,
    )
    assert resp.status == 200, await resp.text()
    after = await status(kit, c)
    assert after["time_left_ms"] == resumed["time_left_ms"] + 60_000


async def test_a_change_written_by_another_process_shows_within_the_watch_interval(
    venue_kit: VenueKit,
) -> None:
    """A roster correction by the CLI (another connection) reaches the cached attempt."""
    kit = venue_kit
    await kit.unlock()
    c, _ = await answering(kit)
    assert (await status(kit, c))["name"] == "Candidate 1"
    db = open_venue_db(kit.directory)
    with transaction(db):
        db.execute("UPDATE candidates SET name = 'Corrected Name' WHERE ticket = ?", [c.ticket])
    db.close()
    store = kit.app[keys.STORE]
    await asyncio.sleep(store.watch_interval_s * 2 + 0.2)
    assert (await status(kit, c))["name"] == "Corrected Name"


def journal_seqs(kit: VenueKit) -> list[int]:
    db = open_venue_db(kit.directory)
    try:
        return [row[0] for row in db.execute("SELECT seq FROM journal ORDER BY position")]
    finally:
        db.close()


# --- the store's generation ---------------------------------------------------------------


def change_a_row(db: Any) -> None:
    db.execute("UPDATE sessions SET title = title || '!' WHERE session_id = 'S1'")


@routine_write
def change_a_row_routinely(db: Any) -> None:
    change_a_row(db)


def change_nothing(db: Any) -> None:
    db.execute("SELECT COUNT(*) FROM sessions").fetchone()


async def test_the_generation_moves_only_when_a_watched_write_changed_rows(
    store: Store, make_attempts: Any
) -> None:
    """A write that changes rows moves the generation before its caller resumes; a routine
    write or a write that changed nothing leaves it alone."""
    make_attempts(1)
    await store.write(change_nothing)  # the other connection's commit is noticed first
    before = store.generation
    await store.write(change_nothing)
    await store.write(change_a_row_routinely)
    assert store.generation == before
    await store.write(change_a_row)
    assert store.generation == before + 1
