"""Issue 16, F6 in the browser: the venue's disk fills up mid-exam (a real tmpfs). The page
keeps the answers on the computer, says so calmly (no "server not reachable" banner), retries
by itself, and every answer reaches the server once there is space again."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from server.clock import SettableClock
from tests.client.conftest import PASSWORD, START, ExamVenue, LiveVenue
from tests.client.test_candidate_page import answer_current, open_exam, server_answers, started
from tests.fulldisk import fill, small_disk

pytestmark = pytest.mark.browser


@pytest.fixture
def venue_on_small_disk(exam_venue: ExamVenue, tmp_path: Path) -> Iterator[LiveVenue]:
    with small_disk(tmp_path / "disk", 24) as disk:
        directory = disk / "venue"
        shutil.copytree(exam_venue.directory, directory)
        live = LiveVenue(directory, SettableClock(START - timedelta(minutes=30)), exam_venue)
        live.start()
        yield live
        live.stop()


def save_status(page: Any, status: str) -> None:
    page.wait_for_function(
        f"() => document.getElementById('save-status').dataset.status === '{status}'",
        timeout=40000,
    )


def test_f6_the_page_keeps_answers_through_a_full_disk(
    browser: Any, venue_on_small_disk: LiveVenue, screenshot_dir: Path | None
) -> None:
    live = venue_on_small_disk
    started(live)
    context, page = open_exam(browser, live, 3)
    ticket = live.candidate(3)["ticket"]
    answer_current(page)
    page.click("#next-item")
    save_status(page, "saved")
    filler = fill(live.directory.parent)
    for _ in range(3):
        answer_current(page)
        page.click("#next-item")
    save_status(page, "storage")
    assert "本机" in page.text_content("#save-status")
    assert page.locator("#offline-banner").is_hidden()  # the server is there: no alarm
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "storage-full.png"))
    assert len(server_answers(live, ticket)) == 1
    filler.unlink()
    save_status(page, "saved")  # retried by itself after the server's Retry-After
    assert len(server_answers(live, ticket)) == 4
    context.close()


def test_f6_the_dashboard_warns_of_low_disk_space_in_exam_minutes(
    browser: Any, venue_on_small_disk: LiveVenue, screenshot_dir: Path | None
) -> None:
    """The venue's disk (24 MiB) is under the 1 GiB threshold: the chief's dashboard warns,
    in Chinese and in English, with the exam-minutes of answers the space still holds."""
    live = venue_on_small_disk
    for lang, words in (("zh-CN", "磁盘空间不足"), ("en", "Disk space is low")):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{live.url}/staff?lang={lang}")
        page.fill("#staff-login-name", "chief")
        page.fill("#staff-password", PASSWORD)
        page.click("#staff-login button[type=submit]")
        page.wait_for_selector("#dash-disk:not([hidden])", timeout=15000)
        text = page.text_content("#dash-disk") or ""
        assert words in text and "MB" in text, text
        assert re.search(r"\d+ (exam-minutes|分钟)", text), text
        assert "urgent" in (page.get_attribute("#dash-disk", "class") or "")
        if screenshot_dir:
            page.screenshot(path=str(screenshot_dir / f"disk-low-{lang}.png"))
        context.close()
