"""Refusals and states in the reader's language, in a real Chromium against the real venue.

The pages say a refusal from the catalogue (not the server's English `detail`), with times in
the session's local time (Beijing here: the exam starts 01:00 UTC = 09:00), formatted for
people. The ceremony shows the set code the cards print and each step's state; after the end
the room monitor keeps the room's final state.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paperpack.sharecards import card_code, parse_card
from server.venue.workspace import open_venue_db
from tests.client.conftest import SESSION_ID, START, LiveVenue
from tests.client.test_staff_console import enter_share, sign_in

pytestmark = pytest.mark.browser


def try_login(browser: Any, live: LiveVenue, n: int) -> tuple[Any, Any, str]:
    """A candidate's PC (Chinese page) tries to log in; returns the refusal shown."""
    context = browser.new_context(viewport={"width": 1280, "height": 760})
    page = context.new_page()
    page.goto(f"{live.url}/?lang=zh-CN")
    candidate = live.candidate(n)
    page.fill("#ticket", candidate["ticket"])
    page.fill("#id-number", candidate["id_number"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])", timeout=15000)
    return context, page, page.text_content("#login-error") or ""


def test_the_entry_cut_off_refusal_is_in_chinese_with_beijing_time(
    browser: Any, live_venue: LiveVenue, screenshot_dir: Path | None
) -> None:
    """A first login six minutes after the start is refused in Chinese, naming 09:05 (local
    time of the 01:05 UTC cut-off), and no ISO timestamp or English reaches the page."""
    live_venue.unlock()
    live_venue.clock.set(START + timedelta(minutes=6))
    context, page, text = try_login(browser, live_venue, 3)
    assert "入场已于" in text and "09:05" in text and "5 分钟" in text, text
    assert "T01:05" not in text and "entry closed" not in text, text
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "login-entry-closed.png"), full_page=True)
    context.close()


def test_a_login_after_the_end_says_the_exam_has_ended(
    browser: Any, live_venue: LiveVenue, screenshot_dir: Path | None
) -> None:
    """Once the session is over, the right ticket and ID are told the exam ended at 11:30
    Beijing time (not that they do not match the roster)."""
    live_venue.unlock()
    live_venue.clock.set(START + timedelta(hours=4))
    context, page, text = try_login(browser, live_venue, 4)
    assert "考试已于" in text and "11:30" in text and "结束" in text, text
    assert "不匹配" not in text, text
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "login-exam-ended.png"), full_page=True)
    context.close()


def mistyped(card_text: str) -> str:
    """The card's code with one character of its second group changed (a typing slip)."""
    parsed = parse_card(card_text)
    groups = card_code(parsed.set_id, parsed.share).split("-")
    groups[1] = ("B" if groups[1][0] == "A" else "A") + groups[1][1:]
    return "-".join(groups)


def test_the_ceremony_shows_the_set_code_steps_and_a_mistyped_share_in_chinese(
    browser: Any, live_venue: LiveVenue, screenshot_dir: Path | None
) -> None:
    """The set code on screen is the one on the cards; a mistyped group is named in Chinese;
    the release form waits for the shares; after the last share the holder is told the next
    step, and the chief then sees the release form."""
    live_venue.import_package()
    set_code = parse_card(live_venue.exam.cards[1]).set_id
    admin, page = sign_in(browser, live_venue, "admin")
    page.click("a[data-tab=ceremony]")
    page.fill("#cer-session", SESSION_ID)
    page.click("#cer-open button[type=submit]")
    page.wait_for_selector("#cer-set-code")
    assert page.text_content("#cer-set-code") == set_code
    assert page.locator("#cer-release").is_hidden()  # no share is in yet
    admin.close()

    chief, page = sign_in(browser, live_venue, "chief")
    page.click("a[data-tab=ceremony]")
    page.wait_for_selector("#cer-share:not([hidden])")
    assert page.locator("#cer-release").is_hidden()  # the chief may release, but not yet
    message = enter_share(page, mistyped(live_venue.exam.cards[1]))
    assert "第 2 组" in message and "校验未通过" in message, message
    assert "group" not in message, message
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "ceremony-mistyped-share.png"), full_page=True)
    assert enter_share(page, live_venue.exam.cards[1]) == "份额已接受。"
    page.wait_for_function(
        "() => document.querySelector('.cer-steps li[data-state=next]')"
        "?.textContent.includes('份额 2 / 2')"
    )
    assert page.locator("#cer-release").is_hidden()
    steps = page.text_content(".cer-steps") or ""
    assert "由 chief 输入（持有人 1）" in steps and "仪式由 admin 开启" in steps, steps
    assert "您的份额已输入" in (page.text_content(".next-step") or "")
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "ceremony-set-code.png"), full_page=True)

    invigilator, page2 = sign_in(browser, live_venue, "inv1")
    page2.click("a[data-tab=ceremony]")
    assert page2.text_content("#cer-set-code") == set_code
    enter_share(page2, live_venue.exam.cards[2])
    page2.wait_for_function(
        "() => document.querySelector('.next-step')?.textContent.includes('份额已齐全')"
    )
    assert "主考或系统管理员" in (page2.text_content(".next-step") or "")
    assert page2.locator("#cer-release").is_hidden()  # an invigilator does not release
    if screenshot_dir:
        page2.screenshot(path=str(screenshot_dir / "ceremony-shares-complete.png"), full_page=True)
    invigilator.close()

    page.wait_for_selector("#cer-release:not([hidden])", timeout=10000)  # the chief's turn
    assert "请在下方输入时间释放码" in (page.text_content(".next-step") or "")
    chief.close()


def test_the_monitor_keeps_the_rooms_final_state_after_the_end(
    browser: Any, live_venue: LiveVenue, screenshot_dir: Path | None
) -> None:
    """After every attempt closed and the session ended, the monitor still shows each seat
    with its final status, moves, incidents and time granted, and the room's counts."""
    live_venue.unlock()
    live_venue.clock.set(START + timedelta(minutes=2))
    for n in range(4):
        candidate = live_venue.candidate(n)
        status, body, _ = live_venue.call(
            "POST",
            "/api/v1/candidate/login",
            {"ticket": candidate["ticket"], "id_number": candidate["id_number"]},
        )
        assert status == 200, body
    first = live_venue.candidate(0)["ticket"]
    inv = live_venue.staff("chief")  # both rooms (an invigilator acts only on their own)
    absent = live_venue.candidate(29)["ticket"]
    for path, body in (
        (f"{first}/incidents", {"kind": "machine_failure", "text": "黑屏"}),
        (f"{first}/time-grants", {"granted_ms": 300000, "reason": "换机"}),
        (f"{absent}/absent", {}),
    ):
        status, reply, _ = live_venue.call("POST", f"/api/v1/staff/candidates/{path}", body, inv)
        assert status in (200, 201), reply
    live_venue.clock.set(START + timedelta(hours=3))  # past everyone's end
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the closer runs every second
        db = open_venue_db(live_venue.directory)
        try:
            state = db.execute("SELECT status FROM sessions").fetchone()[0]
        finally:
            db.close()
        if state == "ended":
            break
        time.sleep(0.3)
    assert state == "ended"

    _, venue_status, _ = live_venue.call("GET", "/api/v1/staff/status", None, inv)
    room = next(c["room_id"] for c in venue_status["candidates"] if c["ticket"] == first)
    context, page = sign_in(browser, live_venue, "inv1")
    page.click("a[data-tab=monitor]")
    page.wait_for_selector("#mon-ended:not([hidden])")
    page.select_option("#mon-room", room)
    page.wait_for_function(
        "() => document.querySelector('#mon-summary [data-count=incidents] strong')"
        "?.textContent === '1'"
    )
    seats = page.locator("#mon-grid button.seat")
    assert seats.count() >= 10  # the room's candidates are all still there
    summary = page.text_content("#mon-summary") or ""
    assert "事件: 1" in summary and "补时: 1" in summary, summary
    seat = page.locator(f"#mon-grid button.seat[aria-label*='{first}']")
    label = seat.get_attribute("aria-label") or ""
    assert "已结束" in label and "事件 1" in label and "补时 5 分钟" in label, label
    assert "补时 5 分钟" in (seat.text_content() or "")  # on the seat, not only for readers
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "monitor-after-end.png"), full_page=True)
    context.close()


def test_the_fifteen_minute_warning_goes_after_two_minutes(
    browser: Any, live_venue: LiveVenue
) -> None:
    """The 15-minute warning shows at 14 minutes left and is gone by 12:30 left (it stayed up
    at 11 minutes in the field); the 5-minute one then shows on time."""
    live_venue.unlock()
    live_venue.clock.set(START + timedelta(minutes=1))
    context = browser.new_context(viewport={"width": 1280, "height": 760})
    page = context.new_page()
    page.goto(f"{live_venue.url}/?lang=zh-CN")
    candidate = live_venue.candidate(8)
    page.fill("#ticket", candidate["ticket"])
    page.fill("#id-number", candidate["id_number"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#screen-exam:not([hidden])", timeout=15000)
    live_venue.clock.set(START + timedelta(minutes=150 - 14))
    page.reload()
    page.wait_for_selector("#alert:not([hidden])", timeout=15000)
    assert "15 分钟" in (page.text_content("#alert") or "")
    live_venue.clock.set(START + timedelta(minutes=150 - 12, seconds=30))  # seen at a heartbeat
    page.wait_for_selector("#alert", state="hidden", timeout=30000)
    live_venue.clock.set(START + timedelta(minutes=150 - 4, seconds=30))
    page.wait_for_selector("#alert:not([hidden])", timeout=30000)
    assert "5 分钟" in (page.text_content("#alert") or "")
    context.close()
