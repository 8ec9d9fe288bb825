"""The staff console in a real Chromium: the unlock ceremony and the room monitor."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paperpack.shamir import Share
from paperpack.sharecards import card_code, parse_card
from tests.client.conftest import PASSWORD, START, LiveVenue

pytestmark = pytest.mark.browser


def sign_in(browser: Any, live: LiveVenue, login: str) -> tuple[Any, Any]:
    """One staff member's own browser, signed in to the console."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live.url}/staff")
    page.fill("#staff-login-name", login)
    page.fill("#staff-password", PASSWORD)
    page.click("#staff-login button[type=submit]")
    page.wait_for_selector("#view-dashboard:not([hidden])", timeout=15000)
    return context, page


def forged_card(card_text: str) -> str:
    """A card of the right set and holder whose share bytes are wrong (checksums still fine)."""
    parsed = parse_card(card_text)
    wrong = bytes([parsed.data[0] ^ 0x5A]) + parsed.data[1:]
    return card_code(parsed.set_id, Share(parsed.x, wrong))


def enter_share(page: Any, code: str) -> str:
    page.fill("#cer-share-code", code)
    page.click("#cer-share button[type=submit]")
    page.wait_for_function("() => document.getElementById('cer-message').textContent.length > 0")
    return page.text_content("#cer-message") or ""


def test_supervisors_unlock_through_the_console_and_a_wrong_share_is_named(
    browser: Any, live_venue: LiveVenue, screenshot_dir: Path | None
) -> None:
    """Admin opens; a wrong share is rejected naming its holder; two supervisors unlock."""
    live_venue.import_package()
    admin, page = sign_in(browser, live_venue, "admin")
    page.click("a[data-tab=ceremony]")
    page.fill("#cer-session", "2026H2-27-AM")
    page.click("#cer-open button[type=submit]")
    page.wait_for_selector("#cer-state progress")
    admin.close()

    chief, page = sign_in(browser, live_venue, "chief")
    page.click("a[data-tab=ceremony]")
    page.wait_for_selector("#cer-share:not([hidden])")
    message = enter_share(page, forged_card(live_venue.exam.cards[2]))
    assert "2" in message and ("holder" in message or "持有" in message), message
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "ceremony-wrong-share.png"), full_page=True)
    assert enter_share(page, live_venue.exam.cards[1]) == "份额已接受。"
    page.wait_for_function(
        "() => document.getElementById('cer-state').textContent.includes('已输入 1 / 2')"
    )
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "ceremony.png"), full_page=True)
    assert page.locator("#cer-share").is_hidden()  # the same person cannot enter twice
    chief.close()

    invigilator, page = sign_in(browser, live_venue, "inv1")
    page.click("a[data-tab=ceremony]")
    enter_share(page, live_venue.exam.cards[2])
    invigilator.close()

    admin, page = sign_in(browser, live_venue, "admin")
    page.click("a[data-tab=ceremony]")
    page.wait_for_selector("#cer-release:not([hidden])")
    page.fill("#cer-release-code", live_venue.exam.release_code)
    page.click("#cer-release button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('cer-state').textContent.includes('试卷已开启')"
    )
    assert "30" in (page.text_content("#cer-state") or "")  # variants for all 30 candidates
    admin.close()


def test_room_monitor_shows_seats_and_records_a_time_grant(
    browser: Any, live_venue: LiveVenue, screenshot_dir: Path | None
) -> None:
    """The seat grid shows who answers; an invigilator grants time to a selected candidate."""
    live_venue.unlock()
    live_venue.clock.set(START + timedelta(minutes=2))
    for n in range(6):
        candidate = live_venue.candidate(n)
        status, body, _ = live_venue.call(
            "POST",
            "/api/v1/candidate/login",
            {"ticket": candidate["ticket"], "id_number": candidate["id_number"]},
        )
        assert status == 200, body
    context, page = sign_in(browser, live_venue, "inv1")
    page.click("a[data-tab=monitor]")
    page.wait_for_selector("#mon-grid .seat")
    present = page.locator("#mon-grid button.seat:not(.st-not_logged_in)")
    assert present.count() >= 1  # the six logged in are spread over two rooms
    present.first.click()
    page.wait_for_selector("#mon-forms:not([hidden])")
    page.fill("#act-grant-minutes", "7")
    page.fill("#act-grant-reason", "计算机故障，更换座位 / PC failed, moved")
    page.click("#act-grant button[type=submit]")
    page.wait_for_function("() => document.getElementById('mon-message').textContent.length > 0")
    assert page.text_content("#mon-message") == "已完成。"
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "monitor.png"), full_page=True)
    context.close()

    chief, page = sign_in(browser, live_venue, "chief")  # the audit log is the chief's view
    page.click("a[data-tab=audit]")
    page.wait_for_selector("#aud-table tbody tr")
    assert "哈希链完整" in (page.text_content("#aud-chain") or "")
    assert "time.granted" in (page.text_content("#aud-table") or "")
    chief.close()
