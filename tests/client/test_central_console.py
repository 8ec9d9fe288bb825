"""The central console in Chromium: sign in, see the status page, switch language, sign out.

The real central app on a real loopback port (SQLite, from a background thread) with one
operator account; the browser follows the redirect to the login page (in Chinese), is refused
a wrong password, signs in, switches to English, and is back on the login page after signing
out.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from paperpack import crypto
from paperpack.authority import init_authority, load_authority
from server.central.app import create_app, open_storage
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.staffauth import hash_password

PASSWORD = "operator-pass-2026"


async def _add_operator(database: Path) -> None:
    """One operator, two registered venues, and one release served (a row on the status page)."""
    storage = open_storage(str(database))
    await storage.open()
    try:
        await storage.add_staff(
            "li.na", "李娜 / Li Na", "operator", hash_password(PASSWORD), "cli:test",
            "2026-11-01T00:00:00.000Z",
        )  # fmt: skip
        for venue_id in ("BJ-001", "BJ-002"):
            signing, wrapping = crypto.generate_signing_key(), crypto.generate_wrapping_key()
            await storage.add_venue(
                VenueRecord(
                    venue_id, venue_id, crypto.public_key_text(signing.public_key()),
                    crypto.public_key_text(wrapping.public_key()), "2026-11-01T00:00:00.000Z",
                )
            )  # fmt: skip
        at = "2026-11-07T00:45:00.000Z"
        await storage.record_release("2026H2-27-AM", "BJ-001", at, at)
    finally:
        await storage.close()


@pytest.fixture
def central_url(tmp_path: Path) -> Iterator[str]:
    """The central server with one operator (li.na), served for one test."""
    init_authority(tmp_path / "authority")
    authority = load_authority(tmp_path / "authority")
    settings = CentralSettings(directory=tmp_path, log_requests=False)
    ready, state = threading.Event(), {}

    async def serve() -> None:
        # In the server's own loop: Playwright's sync API keeps this thread's loop busy.
        await _add_operator(tmp_path / "central.db")
        runner = web.AppRunner(create_app(settings, authority=authority))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        state["port"] = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        state["runner"] = runner
        ready.set()

    loop = asyncio.new_event_loop()

    def run() -> None:
        loop.run_until_complete(serve())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the central server did not start"
    yield f"http://127.0.0.1:{state['port']}"
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()  # an unclosed loop warns when collected, in whichever test that happens


def test_an_operator_signs_in_to_the_status_page_and_out(
    browser: Any, central_url: str, screenshot_dir: Path | None
) -> None:
    """/status leads to the sign-in page, in Chinese; a wrong password is refused on the page;
    the right one leads back to /status with the operator's name and role; the "English" link
    switches every label and is remembered; sign out returns to the sign-in page."""
    page = browser.new_page(viewport={"width": 1100, "height": 720})
    page.goto(f"{central_url}/status")
    assert page.url == f"{central_url}/login?next=/status"
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.inner_text("h1") == "考试中心工作人员登录"
    page.fill("#login", "li.na")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert page.inner_text(".error") == "账号或密码错误。"
    assert page.input_value("#login") == "li.na"
    if screenshot_dir is not None:
        page.screenshot(path=str(screenshot_dir / "central-login.png"))
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{central_url}/status")
    assert page.inner_text("h1") == "状态总览"
    assert "li.na，操作员" in page.inner_text(".who")
    assert page.inner_text("tbody tr td:nth-child(5)") == "未上传"
    if screenshot_dir is not None:
        page.screenshot(path=str(screenshot_dir / "central-status.png"))
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["cbt_central"]["httpOnly"] and cookies["cbt_central"]["sameSite"] == "Strict"
    page.click("text=English")
    page.wait_for_url(f"{central_url}/status?lang=en")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == "Central status"
    assert "li.na, operator" in page.inner_text(".who")
    assert page.inner_text("tbody tr td:nth-child(5)") == "no"
    page.click("text=Sign out")
    page.wait_for_url(f"{central_url}/login")
    assert page.inner_text("h1") == "Central staff sign-in"  # the cookie kept the language
    page.goto(f"{central_url}/status")
    assert page.url.startswith(f"{central_url}/login")
    page.close()
