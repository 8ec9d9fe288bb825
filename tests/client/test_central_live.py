"""The live line on the central status page, in Chromium (issue 14, point 4; art. 26, 31).

A real venue server (`cbt venue serve --central-url`, heartbeat every 0.2 s instead of 60 s)
and a real central server, each on a loopback port: candidates log in, one answers and
submits, the chief examiner records a serious violation; the operator's status page shows the
venue's counts and the violation within the bound. `CBT_SCREENSHOTS=docs/screenshots` keeps
the page as central-live.png.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from paperpack.authority import init_authority, load_authority
from server.central.app import create_app as create_central_app
from server.central.app import open_storage
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.clock import SettableClock
from server.staffauth import hash_password
from server.venue.workspace import load_venue
from tests.client.conftest import CENTRAL_PASSWORD, START, ExamVenue, LiveVenue

BOUND_S = 20.0  # the acceptance bound is 2 minutes at the default 60 s interval


async def _prepare(database: Path, venue_dir: Path) -> None:
    storage = open_storage(str(database))
    await storage.open()
    try:
        await storage.add_staff(
            "li.na", "李娜 / Li Na", "operator", hash_password(CENTRAL_PASSWORD), "cli:test",
            "2026-11-01T00:00:00.000Z",
        )  # fmt: skip
        venue = load_venue(venue_dir)
        await storage.add_venue(
            VenueRecord(venue.venue_id, venue.name, venue.sign_public, venue.wrap_public,
                        "2026-11-01T00:00:00.000Z")
        )  # fmt: skip
    finally:
        await storage.close()


@pytest.fixture
def line(exam_venue: ExamVenue, tmp_path: Path) -> Iterator[tuple[str, LiveVenue]]:
    """(central URL, venue) sharing one clock, the venue sending its heartbeat there."""
    clock = SettableClock(START - timedelta(minutes=30))
    directory = tmp_path / "venue"
    shutil.copytree(exam_venue.directory, directory)
    init_authority(tmp_path / "authority")
    settings = CentralSettings(directory=tmp_path / "central", log_requests=False)
    settings.directory.mkdir()
    ready, state = threading.Event(), {}

    async def serve() -> None:
        await _prepare(settings.directory / "central.db", directory)
        app = create_central_app(
            settings, clock=clock, authority=load_authority(tmp_path / "authority")
        )
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        state["port"] = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        state["runner"] = runner
        ready.set()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert ready.wait(30), "the central server did not start"
    url = f"http://127.0.0.1:{state['port']}"
    venue = LiveVenue(directory, clock, exam_venue, settings={"central_url": url,
                                                               "heartbeat_s": 0.2})  # fmt: skip
    venue.start()
    try:
        yield url, venue
    finally:
        venue.stop()
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def test_the_status_page_shows_the_venue_live(
    browser: Any, line: tuple[str, LiveVenue], screenshot_dir: Path | None
) -> None:
    """Art. 26, 31: the operator sees the venue's logins, answers, a submission and a serious
    violation on /status within the bound after they happen at the venue (measured from the
    operator's sign-in; the venue sends every 0.2 s here, every 60 s by default)."""
    central_url, live = line
    live.unlock()
    people = live.exam.candidates[:3]
    tokens = []
    for person in people:
        code, body, _ = live.call(
            "POST", "/api/v1/candidate/login",
            {"ticket": person["ticket"], "id_number": person["id_number"]},
        )  # fmt: skip
        assert code == 200, body
        tokens.append({"Authorization": f"Bearer {body['token']}"})
    live.clock.set(START + timedelta(minutes=3))
    code, paper, _ = live.call("GET", "/api/v1/attempt/paper", None, tokens[0])
    assert code == 200, paper
    item = paper["sections"][0]["items"][0]
    answer = [item["options"][0]["id"]] if item.get("options") else "x"
    code, body, _ = live.call(
        "PUT", "/api/v1/attempt/responses", {"seq": 1, "responses": {item["id"]: answer}},
        tokens[0],
    )  # fmt: skip
    assert code == 200, body
    code, body, _ = live.call(
        "POST", f"/api/v1/staff/candidates/{people[1]['ticket']}/violations",
        {"kind": "impersonation", "text": "照片与本人不符"}, live.staff("chief"),
    )  # fmt: skip
    assert code in (200, 201), body
    live.clock.set(START + timedelta(minutes=121))  # past the sealed period: one submits
    code, body, _ = live.call("POST", "/api/v1/attempt/submit", {}, tokens[2])
    assert code == 200, body

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{central_url}/status")
    page.fill("#login", "li.na")
    page.fill("#password", CENTRAL_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{central_url}/status")
    began = time.monotonic()
    row = "#live tbody tr[data-session]"
    while True:
        cells = page.locator(row)
        if (
            cells.count()
            and cells.first.locator("[data-count=submitted]").inner_text() == "1"
            and cells.first.locator(".problem").count() == 1
        ):
            break
        assert time.monotonic() - began < BOUND_S, page.locator("#live").inner_text()
        time.sleep(0.3)
        page.reload()
    first = page.locator(row).first
    assert first.get_attribute("data-venue") == load_venue(live.directory).venue_id
    assert first.locator("[data-count=logged_in]").inner_text() == "3"
    assert first.locator("[data-count=answering]").inner_text() == "1"
    assert first.locator("[data-count=violations]").inner_text() == "1"
    assert first.locator(".problem").count() == 1
    assert people[1]["ticket"] in first.locator(".problem").inner_text()
    print(f"the status page showed the venue's changes after {time.monotonic() - began:.1f} s")
    if screenshot_dir is not None:
        page.screenshot(path=str(screenshot_dir / "central-live.png"), full_page=True)
    page.close()
