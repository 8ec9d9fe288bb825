"""Every page, used as people use it, logs nothing wrong in the browser.

The candidate page (login, waiting, exam, submit, receipt), the staff console (sign-in and
each tab) and the central console (sign-in, status) in Chromium: no console error, no
uncaught exception, no failed request and no response of 400 or more, icons included; the
icons every page links, and /favicon.ico, answer 200 with an image.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.client.conftest import CENTRAL_PASSWORD, PASSWORD, START, LiveVenue
from tests.client.test_candidate_page import answer_current, wait_saved

pytestmark = pytest.mark.browser


def watch(page: Any) -> list[str]:
    """A list that fills with everything the page reports as wrong, as it happens."""
    trouble: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error":
            trouble.append(f"console error: {message.text} ({message.location.get('url')})")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            trouble.append(f"{response.status} for {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: trouble.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda r: trouble.append(f"failed: {r.method} {r.url} {r.failure}"))
    page.on("response", on_response)
    return trouble


def assert_icons(page: Any) -> None:
    """The page links the icon, and each linked icon and /favicon.ico is an image."""
    links = page.eval_on_selector_all("link[rel=icon]", "links => links.map(l => l.href)")
    assert len(links) == 2, links
    for url in [*links, page.evaluate("location.origin") + "/favicon.ico"]:
        response = page.request.get(url)
        assert response.status == 200, url
        assert response.headers["content-type"].startswith("image/"), url


def test_the_candidate_page_logs_nothing_wrong(browser: Any, live_venue: LiveVenue) -> None:
    """Login, waiting, exam with answers saved, submit and receipt: a clean console."""
    live_venue.unlock()
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    trouble = watch(page)
    page.goto(live_venue.url)
    page.wait_for_selector("#screen-login:not([hidden])")
    assert_icons(page)
    candidate = live_venue.candidate(0)
    page.fill("#ticket", candidate["ticket"])
    page.fill("#id-number", candidate["id_number"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#screen-waiting:not([hidden])", timeout=15000)
    live_venue.clock.set(START + timedelta(minutes=1))
    page.wait_for_selector("#screen-exam:not([hidden])", timeout=30000)
    answer_current(page)
    page.click("#next-item")
    answer_current(page)
    wait_saved(page)
    live_venue.clock.set(START + timedelta(minutes=121))  # past the sealed period
    page.reload()
    page.wait_for_selector("#submit-button:not([hidden])", timeout=15000)
    page.click("#submit-button")
    page.wait_for_selector("#confirm-dialog[open]")
    page.click("#confirm-ok")
    page.wait_for_selector("#screen-done:not([hidden])", timeout=15000)
    assert not trouble, "\n".join(trouble)
    context.close()


def test_the_staff_console_logs_nothing_wrong(browser: Any, live_venue: LiveVenue) -> None:
    """Sign-in page, then every tab each role is shown, during an exam; the audit log's tab is
    shown only to the roles that may read it."""
    live_venue.unlock()
    live_venue.clock.set(START + timedelta(minutes=5))
    everything = ["dashboard", "ceremony", "monitor", "audit"]
    for login, tabs in (("admin", everything), ("chief", everything), ("inv1", everything[:3])):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        trouble = watch(page)
        page.goto(f"{live_venue.url}/staff")
        page.wait_for_selector("#staff-login:not([hidden])")
        assert_icons(page)
        page.fill("#staff-login-name", login)
        page.fill("#staff-password", PASSWORD)
        page.click("#staff-login button[type=submit]")
        page.wait_for_selector("#view-dashboard:not([hidden])", timeout=15000)
        shown = page.eval_on_selector_all(
            "#tabs a:not([hidden])", "tabs => tabs.map(a => a.dataset.tab)"
        )
        assert shown == tabs, login
        for tab in shown:
            page.click(f"a[data-tab={tab}]")
            page.wait_for_selector(f"#view-{tab}:not([hidden])")
            page.wait_for_load_state("networkidle")
        assert not trouble, f"{login}: " + "\n".join(trouble)
        context.close()


def test_the_central_console_logs_nothing_wrong(browser: Any, central_url: str) -> None:
    """The sign-in page and the status page, in both languages."""
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    page = context.new_page()
    trouble = watch(page)
    page.goto(f"{central_url}/status")
    page.wait_for_selector("#login")
    assert_icons(page)
    page.fill("#login", "li.na")
    page.fill("#password", CENTRAL_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{central_url}/status")
    assert_icons(page)
    page.click("text=English")
    page.wait_for_url(f"{central_url}/status?lang=en")
    page.wait_for_load_state("networkidle")
    assert not trouble, "\n".join(trouble)
    context.close()
