"""The live line from the venue to the centre (issue 14, point 4; art. 26, 31).

A real venue app (`cbt venue serve --central-url`, a short CBT_HEARTBEAT_S) and a real central
app: the central status page shows the venue's counts soon after they change, a serious
violation arrives at once, and messages queued while the centre is out of reach arrive later
in order, each stored once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from paperpack.authority import Authority
from server.central.app import create_app as create_central_app
from server.central.keys import STORAGE
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.clock import SettableClock, iso
from server.protocol import heartbeat as protocol
from server.venue.heartbeat import waiting
from server.venue.workspace import load_venue, open_venue_db
from tests.server.central.conftest import Central
from tests.server.conftest import IN_WINDOW, VenueKit, VenueTemplate, start_venue, ticket

BEAT_S = 0.2  # the test's heartbeat interval (CBT_HEARTBEAT_S; 60 in production)
BOUND_S = 10.0  # how long a test waits for a change to show (the acceptance bound is 2 min)


async def _register(storage: Any, kit: VenueKit) -> None:
    venue = load_venue(kit.directory)
    await storage.add_venue(
        VenueRecord(venue.venue_id, venue.name, venue.sign_public, venue.wrap_public,
                    iso(IN_WINDOW))
    )  # fmt: skip


async def _until(check: Any, bound_s: float = BOUND_S) -> float:
    """Poll `check()` (async) until true; how long it took (fails past `bound_s`)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while not await check():
        assert loop.time() - began < bound_s, "not seen at the centre within the bound"
        await asyncio.sleep(0.05)
    return loop.time() - began


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_status_page_shows_a_venues_live_counts_and_serious_violations(
    central: Central, venue_template: VenueTemplate, tmp_path: Path, aiohttp_client: Any
) -> None:
    """Art. 26, 31: logins and a serious violation at the venue show on the central status
    page (JSON and HTML) within seconds with a short interval (bound: 2 min at 60 s)."""
    central.clock.set(IN_WINDOW)  # the venue signs at its own time; the centre allows a skew
    kit = await start_venue(
        venue_template, tmp_path, aiohttp_client, central_url=central.url, heartbeat_s=BEAT_S
    )
    await _register(central.storage, kit)
    await kit.unlock()
    staff = await central.as_staff()

    async def live_row() -> dict[str, Any] | None:
        resp = await central.client.get("/api/v1/status", headers=staff)
        assert resp.status == 200
        rows = (await resp.json())["live"]
        return rows[0] if rows else None

    def logged_in(count: int) -> Any:
        async def check() -> bool:
            row = await live_row()
            return row is not None and row["counts"].get("logged_in") == count

        return check

    await kit.login_candidate(1)
    await _until(logged_in(1))
    await kit.login_candidate(2)  # a change: how long until the centre shows it
    took = await _until(logged_in(2))
    row = await live_row()
    assert row is not None
    venue_id = load_venue(kit.directory).venue_id
    assert (row["venue_id"], row["session_id"], row["state"]) == (venue_id, "S1", "unlocked")
    # the same counts as the chief examiner's monitor (server.venue.invigilate.room_status)
    resp = await kit.client.get("/api/v1/staff/status", headers=await kit.as_staff("chief"))
    summary = (await resp.json())["summary"]
    assert {k: row["counts"][k] for k in summary} == summary
    assert row["serious"] == []

    resp = await kit.client.post(
        f"/api/v1/staff/candidates/{ticket(2)}/violations",
        json={"kind": "impersonation", "text": "photo does not match"},
        headers=await kit.as_staff("inv1"),
    )
    assert resp.status in (200, 201), await resp.text()

    async def serious_seen() -> bool:
        row = await live_row()
        return row is not None and [s["ticket"] for s in row["serious"]] == [ticket(2)]

    await _until(serious_seen)
    db = open_venue_db(kit.directory)
    try:  # a serious violation goes up as a message of its own, at once
        kinds = [r[0] for r in db.execute("SELECT kind FROM heartbeat_queue ORDER BY seq")]
    finally:
        db.close()
    assert kinds.count("serious") == 1 and "heartbeat" in kinds

    html = await central.client.get("/status?lang=en", headers=staff)
    page = await html.text()
    assert "Live from the venues" in page and "Impersonation" in page
    assert 'data-count="logged_in">2<' in page
    print(f"live counts at the centre after {took:.2f} s (interval {BEAT_S} s)")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the queue, not the store
async def test_cut_network_queues_messages_and_restoring_delivers_each_once(
    venue_template: VenueTemplate, authority: Authority, tmp_path: Path, aiohttp_client: Any,
    database: str,
) -> None:  # fmt: skip
    """The centre out of reach: the venue queues its heartbeats (the exam goes on); the centre
    back: they arrive in order, each stored once, a message sent twice counted once."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    kit = await start_venue(
        venue_template, tmp_path, aiohttp_client, central_url=url, heartbeat_s=BEAT_S
    )
    await kit.login_staff("admin")  # the venue works with the centre away

    def queued() -> list[tuple[int, str]]:
        db = open_venue_db(kit.directory)
        try:
            return waiting(db)
        finally:
            db.close()

    async def three_queued() -> bool:
        return len(queued()) >= 3

    await _until(three_queued)
    assert [seq for seq, _ in queued()][:3] == [1, 2, 3]

    settings = CentralSettings(directory=tmp_path / "central", database=database,
                               log_requests=False)  # fmt: skip
    settings.directory.mkdir()
    clock = SettableClock(IN_WINDOW)
    server = TestServer(create_central_app(settings, clock=clock, authority=authority), port=port)
    await server.start_server()
    try:
        storage = server.app[STORAGE]
        await _register(storage, kit)

        async def drained() -> bool:
            return not queued()

        await _until(drained)
        venue_id = load_venue(kit.directory).venue_id
        seqs = await storage.heartbeat_seqs(venue_id)
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 3

        # An answer lost after the centre stored it: the venue sends the message again.
        db = open_venue_db(kit.directory)
        try:
            db.execute("UPDATE heartbeat_queue SET sent_at = NULL WHERE seq = 1")
            db.conn.commit()
        finally:
            db.close()
        await _until(drained)
        again = await storage.heartbeat_seqs(venue_id)
        assert again[: len(seqs)] == seqs and len(again) == len(set(again))
    finally:
        await server.close()


async def test_the_endpoint_refuses_unsigned_foreign_and_malformed_messages(
    central: Central,
) -> None:
    """Only a registered venue speaks for itself; a repeat of (venue, seq) is stored once."""
    from tests.server.central.conftest import new_venue

    venue, other = new_venue("V7"), new_venue("V8")
    await central.register(venue)
    await central.register(other)
    message = protocol.build_message("V7", 1, "heartbeat", iso(central.clock.now()), [])
    body = protocol.encode(message)

    async def post(as_venue: Any, data: bytes) -> Any:
        headers = central.signed(as_venue, "POST", protocol.PATH, hashlib.sha256(data).hexdigest())
        return await central.client.post(protocol.PATH, data=data, headers=headers)

    assert (await central.client.post(protocol.PATH, data=body)).status == 401
    resp = await post(other, body)  # V8 cannot send V7's counts
    assert resp.status == 400 and "V8 signed it" in (await resp.json())["detail"]
    bad = protocol.encode({**message, "version": 99})
    assert (await post(venue, bad)).status == 400
    first, second = await post(venue, body), await post(venue, body)
    assert (first.status, second.status) == (200, 200)
    assert [(await first.json())["duplicate"], (await second.json())["duplicate"]] == [False, True]
    assert await central.storage.heartbeat_seqs("V7") == [1]
    assert json.loads(body)["format"] == "cbt-heartbeat"
