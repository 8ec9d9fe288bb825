"""The venue API end to end: import, unlock 2-of-3, 50 candidates answer and submit."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from server.store import transaction
from server.venue import closer, keys
from server.venue.workspace import open_venue_db
from tests.server.conftest import (
    CANDIDATES,
    START,
    VenueKit,
    VenueTemplate,
    id_number,
    start_venue,
)


async def test_unlock_then_fifty_candidates_answer_and_submit(venue_kit: VenueKit) -> None:
    """Fifty candidates log in, get different variants, save answers and submit with receipts."""
    kit = venue_kit
    await kit.unlock()
    candidates = await asyncio.gather(*(kit.login_candidate(n) for n in range(1, CANDIDATES + 1)))
    kit.clock.set(START + timedelta(minutes=1))
    papers: list[dict[str, Any]] = []
    for c in candidates:
        resp = await kit.client.get("/api/v1/attempt/paper", headers=c.auth)
        assert resp.status == 200, await resp.text()
        papers.append(await resp.json())
    orders = {tuple(i["id"] for s in p["sections"] for i in s["items"]) for p in papers}
    assert len(orders) == CANDIDATES
    for c, paper in zip(candidates, papers, strict=True):
        item = next(
            i for s in paper["sections"] for i in s["items"] if i["type"] == "single_choice"
        )
        resp = await kit.client.put(
            "/api/v1/attempt/responses",
            json={"seq": 1, "responses": {item["id"]: [item["options"][0]["id"]]}},
            headers=c.auth,
        )
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"acked_seq": 1}
    kit.clock.set(START + timedelta(minutes=105))
    receipts = set()
    for c in candidates:
        resp = await kit.client.post("/api/v1/attempt/submit", headers=c.auth)
        assert resp.status == 200, await resp.text()
        receipts.add((await resp.json())["receipt"])
    assert len(receipts) > 1  # answers differ in canonical ids, so receipts differ
    status = await (await kit.client.get("/api/v1/attempt", headers=candidates[0].auth)).json()
    assert status["status"] == "submitted"


def walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (dotted key path, leaf value) of a JSON document."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [pair for v in value for pair in walk(v, f"{path}[]")]
    return [(path, value)]


async def test_paper_carries_no_keys_and_no_canonical_ids(venue_kit: VenueKit) -> None:
    """The paper endpoint sends opaque tokens only: no canonical item, option or blank id, no
    key or accepted answer; two candidates' tokens have nothing in common."""
    kit = venue_kit
    await kit.unlock()
    one, two = await kit.login_candidate(1), await kit.login_candidate(2)
    kit.clock.set(START)
    paper = kit.app[keys.LIVE].exam.paper  # type: ignore[union-attr]
    canonical = {i.item_id for i in paper.items()}
    canonical |= {b.blank_id for i in paper.items() for b in i.blanks}
    canonical |= {s.section_id for s in paper.sections}
    token_sets = []
    for c in (one, two):
        resp = await kit.client.get("/api/v1/attempt/paper", headers=c.auth)
        text = await resp.text()
        found = [x for x in canonical if re.search(rf"(?<![\w-]){re.escape(x)}(?![\w-])", text)]
        assert not found
        leaves = walk(json.loads(text))
        names = {p.rsplit(".", 1)[-1].rstrip("[]") for p, _ in leaves}
        assert not names & {
            "key",
            "accepted",
            "normalise",
            "scoring",
            "partial_points",
            "pass_mark",
        }
        ids = [v for p, v in leaves if p.endswith(".id") or p.endswith(".blanks[]")]
        assert len({len(v) for v in ids}) == 1 and len(ids[0]) >= 12  # opaque, never "a", "true"
        token_sets.append(set(ids))
    assert not token_sets[0] & token_sets[1]


async def test_heartbeat_reports_the_servers_time(venue_kit: VenueKit) -> None:
    """A heartbeat returns the status with server_time; the monitor sees it at once and the
    closer's pass writes it to the database."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(1)
    kit.clock.set(START + timedelta(minutes=3))
    resp = await kit.client.post("/api/v1/attempt/heartbeat", headers=c.auth)
    body = await resp.json()
    assert body["server_time"] == "2026-06-01T09:03:00.000Z"
    assert body["time_left_ms"] == 117 * 60_000
    room = await kit.client.get("/api/v1/staff/rooms/R1/status", headers=await kit.as_staff("inv1"))
    seat = next(x for x in (await room.json())["candidates"] if x["ticket"] == c.ticket)
    assert (seat["last_seen_at"], seat["seen_recently"]) == ("2026-06-01T09:03:00.000Z", True)
    assert await closer.flush_seen(kit.app) == 1  # what the closer's pass writes
    db = open_venue_db(kit.directory)
    with transaction(db):
        written = db.execute("SELECT last_seen_at FROM attempts WHERE ticket = ?", [c.ticket])
        assert written.fetchone()[0] == "2026-06-01T09:03:00.000Z"
    db.close()


async def test_request_log_has_one_line_per_request_and_no_secrets(
    venue_template: VenueTemplate,
    tmp_path: Path,
    aiohttp_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each request logs one line with method, path and status; never the token, the ID
    number or an answer."""
    kit = await start_venue(venue_template, tmp_path, aiohttp_client, log_requests=True)
    await kit.unlock()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="server.venue.requests"):
        c = await kit.login_candidate(3)
        kit.clock.set(START)
        paper = await (await kit.client.get("/api/v1/attempt/paper", headers=c.auth)).json()
        essay = next(i for s in paper["sections"] for i in s["items"] if i["type"] == "essay")
        answer = "my secret essay answer"
        resp = await kit.client.put(
            "/api/v1/attempt/responses",
            json={"seq": 1, "responses": {essay["id"]: answer}},
            headers=c.auth,
        )
        assert resp.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "server.venue.requests"]
    assert len(lines) == 3
    assert "method=PUT path=/api/v1/attempt/responses status=200" in lines[2]
    for secret in (c.token, c.token.split(".")[1], id_number(3), answer, essay["id"]):
        assert secret not in caplog.text


async def test_tokens_are_stored_only_as_hashes(venue_kit: VenueKit) -> None:
    """The bearer token never reaches the disk; its SHA-256 does."""
    kit = venue_kit
    await kit.unlock()
    c = await kit.login_candidate(4)
    stored = b"".join(p.read_bytes() for p in kit.directory.rglob("venue.db*") if p.is_file())
    assert c.token.encode() not in stored
    assert c.token.split(".")[1].encode() not in stored
    assert hashlib.sha256(c.token.encode()).hexdigest().encode() in stored
