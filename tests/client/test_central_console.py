"""The central console in Chromium: sign in, see the status page, switch language, sign out.

The real central app on a real loopback port (SQLite, from a background thread) with one
operator account; the browser follows the redirect to the login page (in Chinese), is refused
a wrong password, signs in, switches to English, and is back on the login page after signing
out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.client.conftest import CENTRAL_PASSWORD as PASSWORD


def test_an_operator_signs_in_to_the_status_page_and_out(
    browser: Any, central_url: str, screenshot_dir: Path | None
) -> None:
    """/status leads to the sign-in page, in Chinese; a wrong password is refused on the page;
    the right one leads back to /status with the operator's name and role; the "English" link
    switches every label and is remembered; sign out returns to the sign-in page."""
    page = browser.new_page(viewport={"width": 1100, "height": 720})
    page.goto(f"{central_url}/status")
    assert page.url == f"{central_url}/login?next=/status"
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.inner_text("h1") == "考试中心工作人员登录"
    page.fill("#login", "li.na")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert page.inner_text(".error") == "账号或密码错误。"
    assert page.input_value("#login") == "li.na"
    if screenshot_dir is not None:
        page.screenshot(path=str(screenshot_dir / "central-login.png"))
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{central_url}/status")
    assert page.inner_text("h1") == "状态总览"
    assert "li.na，操作员" in page.inner_text(".who")
    assert page.inner_text("tbody tr td:nth-child(5)") == "未上传"
    if screenshot_dir is not None:
        page.screenshot(path=str(screenshot_dir / "central-status.png"))
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["cbt_central"]["httpOnly"] and cookies["cbt_central"]["sameSite"] == "Strict"
    page.click("text=English")
    page.wait_for_url(f"{central_url}/status?lang=en")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == "Central status"
    assert "li.na, operator" in page.inner_text(".who")
    assert page.inner_text("tbody tr td:nth-child(5)") == "no"
    page.click("text=Sign out")
    page.wait_for_url(f"{central_url}/login")
    assert page.inner_text("h1") == "Central staff sign-in"  # the cookie kept the language
    page.goto(f"{central_url}/status")
    assert page.url.startswith(f"{central_url}/login")
    page.close()
