"""A venue restart in a real browser: the real `cbt venue serve` process is SIGKILLed mid-exam
and started again; the candidates' pages heal by themselves (no reload), every answer typed
during the outage reaches the server, and nobody loses time, to the second.

Two ways the paper comes back: a new unlock ceremony (a venue with `CBT_REOPEN_SEALED=0`), and
the chosen path, the paper key sealed to this machine (docs/sealing.md), which reopens it at
start-up. The set-up is the kill -9 test's: a paper sealed for a session that started a minute
ago and a venue made with the CLI, on the real clock.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from server.clock import parse_time
from tests.client.test_candidate_page import answer_current
from tests.server.test_kill9 import (
    PASSWORD,
    Setup,
    build_venue,
    free_port,
    start_server,
    unlock,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CANDIDATES = 2
ANSWERED_BEFORE = 2  # items answered (and saved) before the kill, per candidate
ANSWERED_DURING = 3  # items answered while the server is down, per candidate


@dataclass
class Seat:
    """One candidate's PC: a browser context on the exam page."""

    ticket: str
    context: Any
    page: Any

    @property
    def token(self) -> str:
        return str(self.page.evaluate("() => sessionStorage.getItem('cbt.token')"))


def ceremony(base: str, setup: Setup) -> None:
    """The unlock ceremony over HTTP (admin, two card holders, the release code), run in its
    own thread: Playwright's sync API keeps an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, unlock(base, setup)).result(timeout=120)


def get_attempt(base: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 (loopback URL built here)
        base + "/api/v1/attempt", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return dict(json.load(response))


def stored_answers(venue_dir: Path) -> dict[str, int]:
    """Items answered per ticket as the venue's database holds them."""
    conn = sqlite3.connect(venue_dir / "venue.db")
    try:
        rows = conn.execute(
            "SELECT a.ticket, COUNT(*) FROM responses r JOIN attempts a USING (attempt_id)"
            " GROUP BY a.ticket"
        ).fetchall()
    finally:
        conn.close()
    return {str(t): int(n) for t, n in rows}


def outage(venue_dir: Path) -> dict[str, Any]:
    conn = sqlite3.connect(venue_dir / "venue.db")
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM outages").fetchall()]
        grants = conn.execute("SELECT COUNT(*) FROM time_grants").fetchone()[0]
        incidents = conn.execute(
            "SELECT COUNT(*) FROM incidents WHERE kind = 'server_restart'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert len(rows) == 1, rows
    return {**rows[0], "grants": grants, "incidents": incidents}


def sit_down(browser: Any, base: str, ticket: str, id_number: str, lang: str) -> Seat:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{base}/?lang={lang}")
    page.fill("#ticket", ticket)
    page.fill("#id-number", id_number)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#screen-exam:not([hidden])", timeout=20000)
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads
    return Seat(ticket, context, page)


def answer_next(seat: Seat, *, first: bool = False) -> None:
    if not first:
        seat.page.click("#next-item")
    answer_current(seat.page)


def status_is(seat: Seat, status: str, timeout: float = 20000) -> None:
    seat.page.wait_for_function(
        f"() => document.getElementById('save-status').dataset.status === {json.dumps(status)}",
        timeout=timeout,
    )


def run_restart(
    browser: Any,
    tmp_path: Path,
    *,
    sealed: bool,
    screenshot_dir: Path | None,
) -> dict[str, float]:
    """Kill the server under two candidates, answer during the outage, start it again, bring
    the paper back by the chosen path; returns the figures, after asserting them."""
    setup: Setup = build_venue(tmp_path)
    port, log = free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    env = {"CBT_REOPEN_SEALED": "1" if sealed else "0"}
    proc = start_server(setup.venue_dir, port, log, env)
    restarted = None
    seats: list[Seat] = []
    try:
        ceremony(base, setup)
        time.sleep(1.5)  # the closer's pass keeps the sealed key, now that the exam runs
        for n, (ticket, id_number) in enumerate(setup.candidates[:CANDIDATES]):
            seats.append(sit_down(browser, base, ticket, id_number, "zh-CN" if n == 0 else "en"))
        for seat in seats:
            for i in range(ANSWERED_BEFORE):
                answer_next(seat, first=i == 0)
            status_is(seat, "saved")
        assert stored_answers(setup.venue_dir) == {s.ticket: ANSWERED_BEFORE for s in seats}

        # The crash: each candidate's time left just before it, then SIGKILL.
        before = {}
        for seat in seats:
            reply = get_attempt(base, seat.token)
            before[seat.ticket] = (reply["time_left_ms"], time.monotonic())
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(timeout=10)
        left_at_crash = {t: ms - (killed_at - at) * 1000 for t, (ms, at) in before.items()}

        # The outage: the pages say so and keep every answer on the PC.
        for seat in seats:
            for _ in range(ANSWERED_DURING):
                answer_next(seat)
            seat.page.wait_for_selector("#offline-banner:not([hidden])", timeout=20000)
            assert seat.page.locator("#next-item").is_enabled()
        if screenshot_dir:
            seats[0].page.screenshot(path=str(screenshot_dir / "restart-offline.png"))
        assert stored_answers(setup.venue_dir) == {s.ticket: ANSWERED_BEFORE for s in seats}
        time.sleep(3)

        # The restart: a new process on the same directory and port.
        spawned = time.monotonic()
        restarted = start_server(setup.venue_dir, port, log, env)
        if not sealed:
            # The page shows the exam paused (not waiting), its answers safe on this PC.
            for seat in seats:
                seat.page.wait_for_selector("#restart-banner:not([hidden])", timeout=20000)
                status_is(seat, "paused")
                assert seat.page.locator("#screen-exam").is_visible()
            if screenshot_dir:
                names = ("restart-paused.png", "restart-paused-en.png")
                for seat, name in zip(seats, names, strict=True):
                    seat.page.screenshot(path=str(screenshot_dir / name))
            # The chief's console says what happened and what to do.
            console = browser.new_context(viewport={"width": 1280, "height": 700})
            staff_page = console.new_page()
            staff_page.goto(f"{base}/staff?lang=zh-CN")
            staff_page.fill("#staff-login-name", "chief")
            staff_page.fill("#staff-password", PASSWORD)
            staff_page.click("#staff-login button[type=submit]")
            staff_page.wait_for_selector("#dash-outage:not([hidden])", timeout=15000)
            assert "解锁仪式" in (staff_page.text_content("#dash-outage") or "")
            if screenshot_dir:
                staff_page.screenshot(path=str(screenshot_dir / "restart-console.png"))
            console.close()
            frozen = get_attempt(base, seats[0].token)
            assert (frozen["status"], frozen["paused_reason"]) == ("paused", "restart")
            time.sleep(2)  # staff gather; the clock stands still
            still = get_attempt(base, seats[0].token)["time_left_ms"]
            assert abs(still - frozen["time_left_ms"]) <= 1  # whole ms of two sums
            ceremony(base, setup)  # the ceremony again: two cards and the release

        # The pages resume by themselves and send what they held.
        for seat in seats:
            status_is(seat, "saved", timeout=30000)
            seat.page.wait_for_selector("#restart-banner", state="hidden")
            seat.page.wait_for_selector("#offline-banner", state="hidden")
        answering_s = time.monotonic() - spawned
        total = ANSWERED_BEFORE + ANSWERED_DURING
        assert stored_answers(setup.venue_dir) == {s.ticket: total for s in seats}
        for seat in seats:
            assert seat.page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
            assert seat.page.locator(".palette-item.answered").count() == total

        # Nobody lost time: time left when the paper was open again = time left at the crash.
        record = outage(setup.venue_dir)
        reopened = parse_time(record["reopened_at"])
        assert record["reopened_by"] == ("sealed-key" if sealed else "ceremony:2")
        counts = (record["attempts"], record["grants"], record["incidents"])
        assert counts == (CANDIDATES, CANDIDATES, 1)
        lost = {}
        for seat in seats:
            reply = get_attempt(base, seat.token)
            assert reply["status"] == "answering"
            since_reopen_ms = (parse_time(reply["server_time"]) - reopened).total_seconds() * 1000
            left_at_reopen = reply["time_left_ms"] + since_reopen_ms
            lost[seat.ticket] = (left_at_crash[seat.ticket] - left_at_reopen) / 1000
            shown = seat.page.text_content("#time-left") or ""
            h, m, s = (int(x) for x in shown.split(":"))
            assert abs((h * 3600 + m * 60 + s) * 1000 - reply["time_left_ms"]) <= 1500, shown
        # Zero lost, to the second: the clock stops at the last alive mark (at most one
        # second before the kill), so a candidate may gain up to a second, never lose one.
        assert all(-1.0 <= v <= 0.05 for v in lost.values()), lost
        print(
            f"sealed={sealed} restart->answering {answering_s:.1f} s; outage "
            f"{record['granted_ms'] / 1000:.3f} s given back to {record['attempts']} attempts; "
            f"seconds lost per candidate {lost}"
        )
        return {"answering_s": answering_s, **{f"lost_{t}": v for t, v in lost.items()}}
    finally:
        for seat in seats:
            seat.context.close()
        for process in (proc, restarted):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def test_after_a_kill_and_a_new_ceremony_the_pages_resume_and_no_one_loses_time(
    browser: Any, tmp_path: Path, screenshot_dir: Path | None
) -> None:
    """Kill -9 mid-exam, answers typed offline, a new process, the exam shown paused (not
    waiting), the ceremony again: the pages resume by themselves with every answer, and each
    candidate's time left is what it was at the crash."""
    run_restart(browser, tmp_path, sealed=False, screenshot_dir=screenshot_dir)


def test_after_a_kill_the_sealed_paper_key_brings_the_exam_back_by_itself(
    browser: Any, tmp_path: Path
) -> None:
    """The chosen path: the paper key sealed to this machine reopens the paper at start-up,
    the pages resume within seconds with every answer, and no one loses time."""
    figures = run_restart(browser, tmp_path, sealed=True, screenshot_dir=None)
    assert figures["answering_s"] < 30
