"""Receiving the package and the inspection in a real Chromium (art. 23(4), 21(3), 27): the
administrator's import waits on the dashboard until a second person confirms it there; the
ceremony tab shows the centre's checklist, which two logins sign off; a real ceremony opened
without a passed dry run shows the warning; the dashboard shows the backup and the outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.client.conftest import INSPECTION, SESSION_ID, LiveVenue
from tests.client.test_staff_console import sign_in

pytestmark = pytest.mark.browser


def wait_text(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([s, t]) => (document.querySelector(s)?.textContent || '').includes(t)",
        arg=[selector, text],
        timeout=15000,
    )


def sign_off(browser: Any, live: LiveVenue, login: str, expect: str) -> tuple[Any, Any]:
    context, page = sign_in(browser, live, login)
    page.click("a[data-tab=ceremony]")
    page.fill("#insp-session", SESSION_ID)
    page.click("#insp-form button[type=submit]")
    wait_text(page, "#insp-state", INSPECTION[0])
    page.click("#insp-sign")
    wait_text(page, "#insp-state", expect)
    return context, page


def test_art_23_4_and_21_3_receiving_and_the_inspection_in_the_console(
    browser: Any, live_venue: LiveVenue, screenshot_dir: Path | None
) -> None:
    status, staged, _ = live_venue.call(
        "POST", "/api/v1/staff/packages", {"path": str(live_venue.exam.package_dir)},
        live_venue.staff("admin"),
    )  # fmt: skip
    assert status == 201 and staged["status"] == "pending", staged

    admin, page = sign_in(browser, live_venue, "admin")
    wait_text(page, "#dash-packages", "等待第二人确认")
    wait_text(page, "#dash-packages", "须由另一名工作人员以本人账号确认")  # not the importer
    assert page.locator("#dash-packages button").count() == 0
    admin.close()

    chief, page = sign_in(browser, live_venue, "chief")
    wait_text(page, "#dash-outbox", "待发送队列：0 个答卷包")
    wait_text(page, "#dash-backup", "持续备份")
    page.click("#dash-packages button")
    wait_text(page, "#dash-confirm-message", "已生效")
    wait_text(page, "#dash-packages", "生效中")
    assert "admin 导入，chief 确认" in (page.text_content("#dash-packages") or "")
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "dashboard-receiving.png"), full_page=True)
    chief.close()

    chief, page = sign_off(browser, live_venue, "chief", "chief（1/2）")
    assert page.locator("#insp-sign").is_hidden()  # the same person cannot sign twice
    chief.close()
    admin, page = sign_off(browser, live_venue, "admin", "chief, admin（2/2）")
    assert "尚无通过的模拟演练" in (page.text_content("#insp-state") or "")
    page.fill("#cer-session", SESSION_ID)
    page.click("#cer-open button[type=submit]")
    page.wait_for_selector("#insp-warning:not([hidden])", timeout=15000)
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "ceremony-inspection.png"), full_page=True)
    page.goto(f"{live_venue.url}/staff?lang=en#ceremony")
    wait_text(page, "#insp-state", "Signed off by: chief, admin (2 of 2)")
    wait_text(page, "#insp-warning", "Warning: the inspection sign-off or a passed dry run")
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "ceremony-inspection-en.png"), full_page=True)
    admin.close()
