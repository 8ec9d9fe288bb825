"""Issue 16, F6 in the browser: the venue's disk fills up mid-exam (a real tmpfs). The page
keeps the answers on the computer, says so calmly (no "server not reachable" banner), retries
by itself, and every answer reaches the server once there is space again."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from server.clock import SettableClock
from tests.client.conftest import START, ExamVenue, LiveVenue
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
