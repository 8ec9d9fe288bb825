"""The venue API end to end: import, unlock 2-of-3, 50 candidates answer and submit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tests.server.conftest import CANDIDATES, START, VenueKit


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
