"""The exam room by the regulation in a real Chromium, in Chinese and in English: the identity
check (art. 30) and bounded time (art. 31), with screenshots for the runbook.

The venue is the browser tests' sample venue packed with the regulation's defaults (checked
before answering) and the roster's photos imported from beside examples/roster.csv."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paperpack.approval import issue_delay_approval
from paperpack.authority import load_authority
from server.clock import SettableClock
from server.venue.workspace import init_venue
from tests.client.conftest import (
    SESSION_ID,
    START,
    VENUE_ID,
    ExamVenue,
    LiveVenue,
    _pack_sample,
    _set_up_venue,
)
from tests.client.test_staff_console import sign_in
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.browser
LANGS = {"zh-CN": "zh", "en": "en"}


@pytest.fixture(scope="module")
def checked_exam(tmp_path_factory: pytest.TempPathFactory) -> ExamVenue:
    root = tmp_path_factory.mktemp("checked-venue")
    venue = init_venue(root / "venue", VENUE_ID, "北京 第一考点", now=START - timedelta(days=5))
    package_dir, cards, code = _pack_sample(root, venue.wrap_public, rules={})
    shutil.copy(root / "authority-sign.pub", venue.keys_dir / "authority-sign.pub")
    _set_up_venue(venue.directory)
    assert len(list((venue.photos_dir / SESSION_ID).glob("*.jpg"))) == 10  # from the roster
    with (EXAMPLES / "roster.csv").open(encoding="utf-8-sig") as handle:
        candidates = list(csv.DictReader(handle))
    return ExamVenue(venue.directory, package_dir, cards, code, candidates)


@pytest.fixture
def live(checked_exam: ExamVenue, tmp_path: Path) -> Iterator[LiveVenue]:
    directory = tmp_path / "venue"
    shutil.copytree(checked_exam.directory, directory)
    venue = LiveVenue(directory, SettableClock(START - timedelta(minutes=30)), checked_exam)
    venue.start()
    yield venue
    venue.stop()


def room_of(live: LiveVenue, ticket: str) -> str:
    _, status, _ = live.call("GET", "/api/v1/staff/status", None, live.staff("chief"))
    return str(next(c["room_id"] for c in status["candidates"] if c["ticket"] == ticket))


def candidate_page(browser: Any, live: LiveVenue, n: int, lang: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 760}, locale=lang)
    page = context.new_page()
    page.goto(f"{live.url}/?lang={lang}")
    candidate = live.candidate(n)
    page.fill("#ticket", candidate["ticket"])
    page.fill("#id-number", candidate["id_number"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#screen-waiting:not([hidden])", timeout=15000)
    return context, page


def staff_page(browser: Any, live: LiveVenue, login: str, lang: str) -> tuple[Any, Any]:
    context, page = sign_in(browser, live, login)
    page.goto(f"{live.url}/staff?lang={lang}")
    page.wait_for_selector("#view-dashboard:not([hidden])", timeout=15000)
    page.click("a[data-tab=monitor]")
    page.wait_for_selector("#mon-grid button.seat")
    return context, page


def open_seat(page: Any, room: str, ticket: str) -> None:
    page.select_option("#mon-room", room)
    page.wait_for_selector(f"#mon-grid button.seat[aria-label*='{ticket}']")
    page.click(f"#mon-grid button.seat[aria-label*='{ticket}']")
    page.wait_for_selector("#mon-forms:not([hidden])")


@pytest.mark.parametrize("lang", list(LANGS))
def test_art30_the_identity_check_in_the_browser(
    browser: Any, live: LiveVenue, screenshot_dir: Path | None, lang: str
) -> None:
    """The candidate waits for the identity check (the catalogue's words); the invigilator's
    monitor shows the seat's photo, name and masked ID, and one click verifies: the audit
    names who, and the candidate's exam opens."""
    live.unlock()
    live.clock.set(START + timedelta(minutes=1))
    n = 0 if lang == "zh-CN" else 3  # both have a roster photo
    ticket = live.candidate(n)["ticket"]
    cand, cpage = candidate_page(browser, live, n, lang)
    cpage.wait_for_selector("#waiting-identity:not([hidden])")
    words = cpage.text_content("#waiting-identity") or ""
    assert (
        "监考员核验您的身份" if lang == "zh-CN" else "an invigilator checks your identity"
    ) in words
    if screenshot_dir:
        cpage.screenshot(path=str(screenshot_dir / f"identity-wait-{LANGS[lang]}.png"))

    room = room_of(live, ticket)
    staff, page = staff_page(browser, live, "chief", lang)
    open_seat(page, room, ticket)
    page.wait_for_function(
        "() => { const i = document.getElementById('act-photo');"
        " return !i.hidden && i.complete && i.naturalWidth > 0; }"
    )
    masked = live.candidate(n)["id_number"][:3]
    assert (page.text_content("#act-id") or "").startswith(masked)
    assert live.candidate(n)["id_number"] not in (page.content())
    pending = "身份尚未核验" if lang == "zh-CN" else "ID not checked yet"
    assert page.text_content("#act-identity-state") == pending
    if screenshot_dir:
        page.screenshot(
            path=str(screenshot_dir / f"identity-check-{LANGS[lang]}.png"), full_page=True
        )
    page.click("#act-verify")
    verified = "身份已核验" if lang == "zh-CN" else "ID verified by chief"
    page.wait_for_function(
        f"() => document.getElementById('act-identity-state').textContent.includes('{verified}')"
    )
    cpage.wait_for_selector("#screen-exam:not([hidden])", timeout=20000)
    _, audit, _ = live.call("GET", "/api/v1/staff/audit", None, live.staff("chief"))
    events = [e for e in audit["events"] if e["action"] == "identity.verified"]
    assert [(e["actor"], e["object"].rsplit(":", 1)[-1]) for e in events] == [("chief", ticket)]
    staff.close()
    cand.close()


def _approval(live: LiveVenue, minutes: int) -> str:
    authority = load_authority(live.exam.directory.parent / "authority")  # pack_for_venue's
    return issue_delay_approval(authority, SESSION_ID, VENUE_ID, minutes, now=live.clock.now())


@pytest.mark.parametrize("lang", list(LANGS))
def test_art31_time_bounds_and_the_room_wide_grant_in_the_browser(
    browser: Any, live: LiveVenue, screenshot_dir: Path | None, lang: str
) -> None:
    """An invigilator gives the whole room ten minutes with one action (a power cut): every
    seat of the room shows it and the room's time changes say 10 min. A 40-minute room pause
    then cannot be resumed: the refusal in the page's language asks for the centre's code,
    and with the code typed in the room resumes."""
    live.unlock()
    live.clock.set(START + timedelta(minutes=1))
    inv = live.staff("inv1")
    _, rooms, _ = live.call("GET", "/api/v1/staff/rooms", None, inv)
    room = "R101"
    assert room in {r["room_id"] for r in rooms}
    _, status, _ = live.call("GET", f"/api/v1/staff/rooms/{room}/status", None, inv)
    tickets = [c["ticket"] for c in status["candidates"]]
    for row in live.exam.candidates:
        if row["ticket"] in tickets[:4]:
            code, body, _ = live.call(
                "POST",
                "/api/v1/candidate/login",
                {"ticket": row["ticket"], "id_number": row["id_number"]},
            )
            assert code == 200, body
    context, page = staff_page(browser, live, "inv1", lang)
    page.select_option("#mon-room", room)
    page.fill("#mon-room-grant-minutes", "10")
    page.fill("#mon-room-grant-reason", "停电 / power cut")
    page.click("#mon-room-grant button[type=submit]")
    done = "完成" if lang == "zh-CN" else "Done"
    page.wait_for_function(
        f"() => document.getElementById('mon-message').textContent.includes('{done}')"
    )
    total = "本考场时间变更：10 分钟" if lang == "zh-CN" else "This room's time changes: 10 min"
    page.wait_for_function(
        "(total) => document.getElementById('mon-time-total').textContent === total", arg=total
    )
    note = "补时 10 分钟" if lang == "zh-CN" else "+10 min"
    granted = page.locator("#mon-grid button.seat", has_text=note)
    assert granted.count() == 4  # the four logged in, and nobody else
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / f"room-grant-{LANGS[lang]}.png"), full_page=True)

    page.click("#mon-pause")
    page.wait_for_selector("#mon-paused:not([hidden])")
    live.clock.set(START + timedelta(minutes=41))
    page.click("#mon-resume")
    page.wait_for_function("() => document.getElementById('mon-message').className === 'error'")
    refusal = page.text_content("#mon-message") or ""
    if lang == "zh-CN":
        assert "50 分钟" in refusal and "批准码" in refusal, refusal
    else:
        assert "50 min" in refusal and "approval code" in refusal, refusal
    page.wait_for_selector("#mon-time-needs:not([hidden])")
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / f"time-bounds-{LANGS[lang]}.png"), full_page=True)
    page.fill("#mon-approval", _approval(live, 50))
    page.click("#mon-resume")
    page.wait_for_function("() => document.getElementById('mon-message').className === 'ok'")
    page.wait_for_selector("#mon-paused", state="hidden")
    context.close()
