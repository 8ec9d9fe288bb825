"""axe-core finds no serious or critical accessibility violation on any page people use.

axe-core (bundled by axe-playwright-python) runs in Debian's Chromium over each page in the
states people meet it: the candidate page (login and its error, waiting, each item type,
the confirmation dialog, the receipt), the staff console (sign-in, dashboard, each step of
the ceremony, the room monitor with seats in several states, the audit log) and the central
console (sign-in, status in both languages, a real verification report). Each test walks its
pages first and fails at the end listing every serious or critical violation of every page,
so one run names all of them. The per-page counts by impact are printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.client.conftest import CENTRAL_PASSWORD, SESSION_ID, START, LiveVenue
from tests.client.test_candidate_page import answer_current, wait_saved
from tests.client.test_staff_console import enter_share, forged_card, sign_in

pytestmark = pytest.mark.browser

BLOCKING = ("serious", "critical")


class AxeLedger:
    """What axe-core found on each page visited, by impact; fails listing the blocking ones."""

    def __init__(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()
        self.counts: dict[str, Counter[str]] = {}
        self.rules: dict[str, list[str]] = {}
        self.blocking: list[str] = []

    def check(self, page: Any, name: str) -> None:
        page.wait_for_timeout(150)  # let a re-render triggered by the last action settle
        violations = self.axe.run(page).response["violations"]
        self.counts[name] = Counter(v["impact"] for v in violations)
        self.rules[name] = sorted(f"{v['id']} ({v['impact']})" for v in violations)
        for v in violations:
            if v["impact"] in BLOCKING:
                targets = "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
                self.blocking.append(f"{name}: {v['id']} ({v['impact']}): {v['help']} [{targets}]")

    def finish(self) -> None:
        for name, counts in self.counts.items():
            impacts = ("critical", "serious", "moderate", "minor")
            shown = ", ".join(f"{k} {counts[k]}" for k in impacts)
            print(f"\naxe {name}: {shown}", *self.rules[name], sep="; ", end="")
        print()
        assert not self.blocking, "\n".join(self.blocking)


def test_candidate_pages_pass_axe(browser: Any, live_venue: LiveVenue) -> None:
    """Login (and a refused login), waiting, every item type, the warnings, the confirmation
    dialog and the receipt, in Chinese and English."""
    ledger = AxeLedger()
    live_venue.unlock()
    for n, lang in ((0, "zh-CN"), (1, "en")):
        live_venue.clock.set(START - timedelta(minutes=10))
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.goto(f"{live_venue.url}/?lang={lang}")
        page.wait_for_selector("#screen-login:not([hidden])")
        ledger.check(page, f"candidate login [{lang}]")
        candidate = live_venue.candidate(n)
        page.fill("#ticket", candidate["ticket"])
        page.fill("#id-number", "000000000000000000")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#login-error:not([hidden])", timeout=15000)
        ledger.check(page, f"candidate login refused [{lang}]")
        page.fill("#id-number", candidate["id_number"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#screen-waiting:not([hidden])", timeout=15000)
        ledger.check(page, f"candidate waiting [{lang}]")
        live_venue.clock.set(START + timedelta(minutes=1))
        page.wait_for_selector("#screen-exam:not([hidden])", timeout=30000)
        seen: set[str] = set()
        while True:
            kind = answer_current(page)
            if kind not in seen:
                seen.add(kind)
                page.click("#flag-item")
                ledger.check(page, f"candidate exam, {kind} item [{lang}]")
            every_type = seen == {"choice", "fill_blank", "essay"}
            if every_type or page.locator("#next-item").is_disabled():
                break
            page.click("#next-item")
        wait_saved(page)
        context.set_offline(True)  # answers kept on this computer: the save status says so
        answer_current(page)
        page.wait_for_function(
            "() => document.getElementById('save-status').dataset.status === 'offline'",
            timeout=30000,
        )
        ledger.check(page, f"candidate exam, offline [{lang}]")
        context.set_offline(False)
        wait_saved(page)
        live_venue.clock.set(START + timedelta(minutes=150 - 14))  # the 15-minute warning
        page.reload()
        page.wait_for_selector("#alert:not([hidden])", timeout=15000)
        page.wait_for_selector("#submit-button:not([hidden])", timeout=15000)
        ledger.check(page, f"candidate exam, 15-minute warning [{lang}]")
        page.click("#submit-button")
        page.wait_for_selector("#confirm-dialog[open]")
        ledger.check(page, f"candidate submit dialog [{lang}]")
        page.click("#confirm-ok")
        page.wait_for_selector("#screen-done:not([hidden])", timeout=15000)
        ledger.check(page, f"candidate receipt [{lang}]")
        context.close()
    ledger.finish()


def _seats_in_several_states(live: LiveVenue) -> str:
    """In room 1 (seats of the first candidates): some logged in, one answering, one
    submitted, one marked absent; the rest not logged in."""
    room = live.call("GET", "/api/v1/staff/rooms", None, live.staff("chief"))[1][0]["room_id"]
    status = live.call("GET", f"/api/v1/staff/rooms/{room}/status", None, live.staff("chief"))[1]
    tickets = [c["ticket"] for c in status["candidates"]]
    people = {c["ticket"]: c for c in live.exam.candidates}
    tokens = []
    for ticket in tickets[:4]:
        code, body, _ = live.call(
            "POST",
            "/api/v1/candidate/login",
            {"ticket": ticket, "id_number": people[ticket]["id_number"]},
        )
        assert code == 200, body
        tokens.append({"Authorization": f"Bearer {body['token']}"})
    live.clock.set(START + timedelta(minutes=3))
    for auth in tokens[1:3]:
        code, paper, _ = live.call("GET", "/api/v1/attempt/paper", None, auth)
        assert code == 200, paper
        item = paper["sections"][0]["items"][0]
        answer = [item["options"][0]["id"]] if item.get("options") else "x"
        batch = {"seq": 1, "responses": {item["id"]: answer}}
        code, body, _ = live.call("PUT", "/api/v1/attempt/responses", batch, auth)
        assert code == 200, body
    live.clock.set(START + timedelta(minutes=121))
    code, body, _ = live.call("POST", "/api/v1/attempt/submit", {}, tokens[2])
    assert code == 200, body
    code, body, _ = live.call(
        "POST", f"/api/v1/staff/candidates/{tickets[5]}/absent", {}, live.staff("inv1")
    )
    assert code in (200, 201), body
    return str(room)


def assert_seat_states_in_words(page: Any, required: set[str]) -> None:
    """Every seat says its state in words and with an icon, one of each per state; different
    states never share either, so no one needs the colours to tell them apart."""
    seats = page.eval_on_selector_all(
        "#mon-grid button.seat",
        """seats => seats.map(s => [
            [...s.classList].find(c => c.startsWith("st-")),
            s.querySelector(".state").innerText,
            getComputedStyle(s.querySelector(".state"), "::before").content,
        ])""",
    )
    words: dict[str, set[str]] = {}
    icons: dict[str, set[str]] = {}
    for state, text, icon in seats:
        assert text.strip() and icon not in ("", "none", "normal"), (state, text, icon)
        words.setdefault(state, set()).add(text)
        icons.setdefault(state, set()).add(icon)
    assert required <= set(words), words
    assert all(len(w) == 1 for w in words.values()), words
    assert len({w for ws in words.values() for w in ws}) == len(words), words
    assert len({i for icon in icons.values() for i in icon}) == len(icons), icons


def test_staff_console_passes_axe(
    browser: Any, live_venue: LiveVenue, screenshot_dir: Path | None
) -> None:
    """Sign-in (and a refused one), dashboard, each ceremony step, the monitor with seats in
    several states and the actions open, and the audit log."""
    ledger = AxeLedger()
    live_venue.import_package()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_venue.url}/staff")
    page.wait_for_selector("#staff-login:not([hidden])")
    ledger.check(page, "staff sign-in")
    page.fill("#staff-login-name", "admin")
    page.fill("#staff-password", "wrong password")
    page.click("#staff-login button[type=submit]")
    page.wait_for_selector("#staff-login-error:not([hidden])")
    ledger.check(page, "staff sign-in refused")
    context.close()
    admin, page = sign_in(browser, live_venue, "admin")
    ledger.check(page, "staff dashboard")
    page.click("a[data-tab=ceremony]")
    page.wait_for_selector("#cer-open:not([hidden])")
    ledger.check(page, "ceremony, before opening")
    page.fill("#cer-session", SESSION_ID)
    page.click("#cer-open button[type=submit]")
    page.wait_for_selector("#cer-state progress")
    ledger.check(page, "ceremony, opened (administrator)")
    admin.close()
    chief, page = sign_in(browser, live_venue, "chief")
    page.click("a[data-tab=ceremony]")
    page.wait_for_selector("#cer-share:not([hidden])")
    ledger.check(page, "ceremony, share form")
    enter_share(page, forged_card(live_venue.exam.cards[2]))
    ledger.check(page, "ceremony, wrong share")
    enter_share(page, live_venue.exam.cards[1])
    ledger.check(page, "ceremony, one share in")
    chief.close()
    inv, page = sign_in(browser, live_venue, "inv1")
    page.click("a[data-tab=ceremony]")
    enter_share(page, live_venue.exam.cards[2])
    inv.close()
    chief, page = sign_in(browser, live_venue, "chief")
    page.click("a[data-tab=ceremony]")
    page.wait_for_selector("#cer-release:not([hidden])")
    ledger.check(page, "ceremony, release form")
    page.fill("#cer-release-code", live_venue.exam.release_code)
    page.click("#cer-release button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('cer-state').textContent.includes('试卷已开启')"
    )
    ledger.check(page, "ceremony, unlocked")
    room = _seats_in_several_states(live_venue)
    page.click("a[data-tab=monitor]")
    page.wait_for_selector("#mon-grid .seat.st-submitted")
    ledger.check(page, "monitor")
    states = {"st-not_logged_in", "st-logged_in", "st-answering", "st-submitted", "st-absent"}
    assert_seat_states_in_words(page, states)
    assert page.locator("#mon-grid .seat.stale .stale-note").count() >= 1
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "monitor-states.png"), full_page=True)
    page.click("#mon-grid button.seat.st-answering")
    page.wait_for_selector("#mon-forms:not([hidden])")
    page.fill("#act-grant-minutes", "5")
    page.fill("#act-grant-reason", "PC failed")
    page.click("#act-grant button[type=submit]")
    page.wait_for_function("() => document.getElementById('mon-message').textContent.length > 0")
    ledger.check(page, "monitor, candidate selected, time granted")
    page.click("#mon-pause")
    page.wait_for_selector("#mon-paused:not([hidden])")
    ledger.check(page, "monitor, room paused")
    page.click("#mon-resume")
    page.wait_for_selector("#mon-paused", state="hidden")
    page.click("a[data-tab=dashboard]")
    page.wait_for_selector("#dash-rooms table")
    ledger.check(page, "staff dashboard during the exam")
    page.click("a[data-tab=audit]")
    page.wait_for_selector("#aud-table tbody tr")
    ledger.check(page, "audit log")
    chief.close()
    live_venue.clock.set(START + timedelta(hours=3))  # past everyone's end: the closer ends it
    live_venue.staff_headers.clear()  # three idle hours end the staff's sessions: sign in again
    deadline = time.monotonic() + 60
    ended = False
    while not ended and time.monotonic() < deadline:
        time.sleep(0.3)
        path = f"/api/v1/staff/rooms/{room}/status"
        ended = bool(live_venue.call("GET", path, None, live_venue.staff("chief"))[1].get("ended"))
    assert ended, "the venue did not end the session"
    chief, page = sign_in(browser, live_venue, "chief")
    page.click("a[data-tab=monitor]")
    page.select_option("#mon-room", room)
    page.wait_for_selector("#mon-ended:not([hidden])", timeout=15000)
    page.wait_for_selector("#mon-grid .seat.st-closed")
    ledger.check(page, "monitor after the end")
    assert_seat_states_in_words(
        page, {"st-not_logged_in", "st-submitted", "st-closed", "st-absent"}
    )
    chief.close()
    ledger.finish()


def _write_a_real_report(directory: Path) -> None:
    """Score the scoring tests' packed session (two venues, planted anomalies) with the real
    pipeline and leave its report where the console serves it, as `cbt central score` does."""
    from paperpack.authority import load_authority
    from server.central.app import open_storage
    from server.scoring.pipeline import results_dir, score_session
    from server.scoring.report import build_report
    from server.scoring.results import write_atomic
    from tests.server.scoring.conftest import (
        AFTER_END,
        build_packed_session,
        upload_all,
    )
    from tests.server.scoring.conftest import SESSION_ID as SCORED

    work = directory / "scoring"
    packed = build_packed_session(work)
    authority = load_authority(packed.authority_dir)

    async def score() -> dict[str, Any]:
        database = str(work / "central.db")
        await upload_all(database, work, authority, packed)
        storage = open_storage(database)
        await storage.open()
        try:
            scored = await score_session(storage, authority, SCORED, AFTER_END, work)
        finally:
            await storage.close()
        return build_report(scored, AFTER_END)

    result: dict[str, Any] = {}
    # Playwright's sync API holds this thread's event loop: the scoring gets a thread of its own.
    worker = threading.Thread(target=lambda: result.update(report=asyncio.run(score())))
    worker.start()
    worker.join(300)
    data = json.dumps(result["report"]).encode()
    write_atomic(results_dir(directory, SCORED) / "report.json", data)


def test_central_console_passes_axe(browser: Any, central_url: str, tmp_path: Path) -> None:
    """Sign-in (and a refused one), status in Chinese and English, a verification report."""
    from tests.server.scoring.conftest import SESSION_ID as SCORED

    ledger = AxeLedger()
    _write_a_real_report(tmp_path)
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    page = context.new_page()
    page.goto(f"{central_url}/status")
    page.wait_for_selector("#login")
    ledger.check(page, "central sign-in")
    page.fill("#login", "li.na")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    page.wait_for_selector(".error")
    ledger.check(page, "central sign-in refused")
    page.fill("#password", CENTRAL_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{central_url}/status")
    ledger.check(page, "central status [zh-CN]")
    page.click("text=English")
    page.wait_for_url(f"{central_url}/status?lang=en")
    ledger.check(page, "central status [en]")
    page.goto(f"{central_url}/results/{SCORED}/report")
    page.wait_for_selector("svg")
    ledger.check(page, "central verification report")
    context.close()
    ledger.finish()
