"""The candidate's exam page in a real Chromium against the real venue server."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paperpack.paperfile import load_paper
from server.venue.journal import current_responses
from server.venue.workspace import open_venue_db
from tests.client.conftest import START, LiveVenue
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.browser


def open_exam(browser: Any, live: LiveVenue, n: int, *, lang: str = "zh-CN") -> tuple[Any, Any]:
    """A fresh browser context (one candidate's PC) logged in and on the exam screen."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{live.url}/?lang={lang}")
    candidate = live.candidate(n)
    page.fill("#ticket", candidate["ticket"])
    page.fill("#id-number", candidate["id_number"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#screen-exam:not([hidden])", timeout=15000)
    return context, page


def started(live: LiveVenue, minutes: float = 1) -> None:
    """Unlock through the API and move the server's clock past the start."""
    live.unlock()
    live.clock.set(START + timedelta(minutes=minutes))


def answer_current(page: Any) -> str:
    """Answer whatever item is shown, the way its type asks; returns the item type seen."""
    if page.locator("#item textarea").count():
        page.fill("#item textarea", "项目管理需要平衡范围、进度和成本。Scope, time and cost.")
        return "essay"
    blanks = page.locator("#item .blanks input")
    if blanks.count():
        for i in range(blanks.count()):
            blanks.nth(i).fill(f"答案{i + 1}")
        return "fill_blank"
    page.locator("#item .option-row label").first.click()
    return "choice"


def wait_saved(page: Any) -> None:
    page.wait_for_function(
        "() => document.getElementById('save-status').dataset.status === 'saved'",
        timeout=30000,
    )


def server_answers(live: LiveVenue, ticket: str) -> dict[str, Any]:
    """The answers the venue's database holds for one candidate, by canonical item id."""
    db = open_venue_db(live.directory)
    try:
        row = db.execute("SELECT attempt_id FROM attempts WHERE ticket = ?", [ticket]).fetchone()
        return current_responses(db, row[0]) if row else {}
    finally:
        db.close()


def item_count() -> int:
    return len(load_paper(EXAMPLES / "paper.yaml").items())


def test_candidate_completes_an_exam_end_to_end(
    browser: Any, live_venue: LiveVenue, screenshot_dir: Path | None
) -> None:
    """Log in, answer every item of every type, submit after the sealed period, get a receipt."""
    started(live_venue)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(live_venue.url)
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "login.png"))
    candidate = live_venue.candidate(0)
    page.fill("#ticket", candidate["ticket"])
    page.fill("#id-number", candidate["id_number"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#screen-exam:not([hidden])", timeout=15000)
    total = item_count()
    seen = set()
    for index in range(total):
        seen.add(answer_current(page))
        if index == 1 and screenshot_dir:
            page.wait_for_timeout(300)
            page.screenshot(path=str(screenshot_dir / "exam.png"))
        if index < total - 1:
            page.click("#next-item")
    assert seen == {"choice", "fill_blank", "essay"}
    wait_saved(page)
    assert len(server_answers(live_venue, candidate["ticket"])) == total
    # The sealed period ends 2 h after the start of this 150-minute exam (art. 29(3)).
    assert page.locator("#submit-button").is_hidden()
    live_venue.clock.set(START + timedelta(minutes=121))
    page.reload()
    page.wait_for_selector("#submit-button:not([hidden])", timeout=15000)
    page.click("#submit-button")
    page.wait_for_selector("#confirm-dialog[open]")
    assert "所有题目均已作答" in page.text_content("#confirm-summary")
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "submit.png"))
    page.click("#confirm-ok")
    page.wait_for_selector("#screen-done:not([hidden])", timeout=15000)
    receipt = page.text_content("#done-receipt") or ""
    assert re.fullmatch(r"[0-9a-f]{64}", receipt.strip()), receipt
    code = page.text_content("#done-receipt-code") or ""
    assert re.fullmatch(r"[0-9A-Z]{6}-[0-9A-Z]{6}", code.strip()), code
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "receipt.png"))
    context.close()


def test_answers_made_offline_arrive_and_a_reload_loses_nothing(
    browser: Any, live_venue: LiveVenue
) -> None:
    """Offline 60 s while answering 10 items: all 10 reach the server; a reload keeps them."""
    started(live_venue)
    context, page = open_exam(browser, live_venue, 1)
    ticket = live_venue.candidate(1)["ticket"]
    context.set_offline(True)
    began = time.monotonic()
    for _ in range(10):
        answer_current(page)
        page.click("#next-item")
        page.wait_for_timeout(4000)
    page.wait_for_function(
        "() => document.getElementById('save-status').dataset.status === 'offline'",
        timeout=30000,
    )
    assert "本机" in page.text_content("#save-status")
    assert server_answers(live_venue, ticket) == {}
    remaining = 60 - (time.monotonic() - began)
    if remaining > 0:
        page.wait_for_timeout(remaining * 1000)
    context.set_offline(False)
    wait_saved(page)
    assert len(server_answers(live_venue, ticket)) == 10
    page.reload()
    page.wait_for_selector("#screen-exam:not([hidden])", timeout=15000)
    answered = page.locator(".palette-item.answered")
    answered.first.wait_for()
    assert answered.count() == 10
    context.close()


def test_a_reload_before_the_save_is_acknowledged_keeps_the_answer(
    browser: Any, live_venue: LiveVenue
) -> None:
    """An answer held only in IndexedDB (saves failing) survives a reload and is sent after."""
    started(live_venue)
    context, page = open_exam(browser, live_venue, 2)
    ticket = live_venue.candidate(2)["ticket"]

    def refuse_saves(route: Any) -> None:
        if route.request.method == "PUT":
            route.abort()
        else:
            route.continue_()

    page.route("**/api/v1/attempt/responses", refuse_saves)
    answer_current(page)
    page.wait_for_function(
        "() => document.getElementById('save-status').dataset.status === 'offline'",
        timeout=30000,
    )
    page.unroute("**/api/v1/attempt/responses")
    page.reload()
    page.wait_for_selector("#screen-exam:not([hidden])", timeout=15000)
    wait_saved(page)
    assert len(server_answers(live_venue, ticket)) == 1
    assert page.locator(".palette-item.answered").count() == 1
    context.close()


def test_two_candidates_see_different_orders_and_no_keys_reach_the_browser(
    browser: Any, live_venue: LiveVenue
) -> None:
    """Each candidate's paper has its own order and tokens; nothing of the key is sent."""
    started(live_venue)
    paper = load_paper(EXAMPLES / "paper.yaml")
    canonical_item_ids = {i.item_id for i in paper.items()}
    canonical_option_ids = {o.option_id for i in paper.items() for o in i.options}
    bodies: list[str] = []
    papers: list[dict[str, Any]] = []

    def capture(response: Any) -> None:
        if "/api/" in response.url and response.ok:
            bodies.append(response.text())
            if response.url.endswith("/api/v1/attempt/paper"):
                papers.append(json.loads(bodies[-1]))

    orders = []
    for n in (3, 4):
        context = browser.new_context()
        page = context.new_page()
        page.on("response", capture)
        page.goto(live_venue.url)
        candidate = live_venue.candidate(n)
        page.fill("#ticket", candidate["ticket"])
        page.fill("#id-number", candidate["id_number"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#screen-exam:not([hidden])", timeout=15000)
        page.wait_for_timeout(500)
        bodies.append(page.content())
        orders.append([item["stem"] for s in papers[-1]["sections"] for item in s["items"]])
        context.close()
    assert orders[0] != orders[1]
    assert sorted(orders[0]) == sorted(orders[1])
    everything = "\n".join(bodies)
    for field in ('"key"', '"accepted"', '"pass_mark"', '"scoring"', '"partial_points"'):
        assert field not in everything
    leaked = {i for i in canonical_item_ids if re.search(rf"\b{re.escape(i)}\b", everything)}
    assert not leaked
    tokens = [{i["id"] for s in served["sections"] for i in s["items"]} for served in papers]
    assert not tokens[0] & tokens[1]
    for served in papers:
        for item in (i for section in served["sections"] for i in section["items"]):
            assert item["id"] not in canonical_item_ids
            for option in item.get("options", []):
                assert option["id"] not in canonical_option_ids
                assert len(option["id"]) >= 8  # an opaque token, not a letter


def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector` (as a keyboard user would)."""
    for _ in range(limit):
        if page.evaluate(f"() => document.activeElement?.matches({json.dumps(selector)})"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def answer_by_keyboard(page: Any) -> None:
    if page.locator("#item textarea").count():
        tab_to(page, "#item textarea")
        page.keyboard.type("用键盘作答。Answered with the keyboard.")
    elif page.locator("#item .blanks input").count():
        tab_to(page, "#item .blanks input")
        for blank in range(page.locator("#item .blanks input").count()):
            if blank:
                page.keyboard.press("Tab")  # the next blank comes next in the tab order
            page.keyboard.type("EV")
    else:
        tab_to(page, "#item input")
        page.keyboard.press("Space")


def test_an_exam_can_be_done_with_the_keyboard_only(browser: Any, live_venue: LiveVenue) -> None:
    """Login, every item, submission and confirmation, reached and operated by keys alone."""
    started(live_venue)
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_venue.url)
    candidate = live_venue.candidate(5)
    tab_to(page, "#ticket")
    page.keyboard.type(candidate["ticket"])
    page.keyboard.press("Tab")
    page.keyboard.type(candidate["id_number"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen-exam:not([hidden])", timeout=15000)
    total = item_count()
    for index in range(total):
        answer_by_keyboard(page)
        if index < total - 1:
            tab_to(page, "#next-item")
            page.keyboard.press("Enter")
    wait_saved(page)
    assert page.locator(".palette-item.answered").count() == total
    live_venue.clock.set(START + timedelta(minutes=121))
    page.reload()
    page.wait_for_selector("#submit-button:not([hidden])", timeout=15000)
    tab_to(page, "#submit-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#confirm-dialog[open]")
    tab_to(page, "#confirm-ok")
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen-done:not([hidden])", timeout=15000)
    context.close()


def test_the_exam_page_reads_at_200_percent_zoom(browser: Any, live_venue: LiveVenue) -> None:
    """At 200% zoom (half the CSS width) nothing needs sideways scrolling and controls stay."""
    started(live_venue)
    context = browser.new_context(viewport={"width": 640, "height": 800}, device_scale_factor=2)
    page = context.new_page()
    page.goto(live_venue.url)
    candidate = live_venue.candidate(6)
    page.fill("#ticket", candidate["ticket"])
    page.fill("#id-number", candidate["id_number"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#screen-exam:not([hidden])", timeout=15000)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1
    for control in ("#next-item", "#flag-item", ".palette-item"):
        assert page.locator(control).first.is_visible()
    context.close()


def test_the_timer_warns_and_the_server_ends_the_exam(browser: Any, live_venue: LiveVenue) -> None:
    """15 minutes before the end the page warns; past the end it shows the server closed it."""
    started(live_venue)
    context, page = open_exam(browser, live_venue, 7)
    answer_current(page)
    wait_saved(page)
    live_venue.clock.set(START + timedelta(minutes=150 - 14))
    page.reload()
    page.wait_for_selector("#alert:not([hidden])", timeout=15000)
    assert "15 分钟" in (page.text_content("#alert") or "")
    assert (page.text_content("#time-left") or "").startswith("00:1")
    live_venue.clock.set(START + timedelta(minutes=150, seconds=1))
    page.reload()
    page.wait_for_selector("#screen-done:not([hidden])", timeout=15000)
    assert "考试已结束" in (page.text_content("#done-message") or "")
    context.close()
