"""Central staff logins: who may see the status page and the reports, CSRF, rate limits, audit.

Every test runs on both stores (SQLite and PostgreSQL) through the `central` fixture.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from client import FAVICON, STATIC_DIR
from server.central.app import open_storage
from server.central.staff import COOKIE, CSRF_COOKIE
from server.clock import iso
from server.protocol.audit_chain import LEGACY_CENTRAL_FORMAT, verify_audit_records
from server.staffauth import StaffError
from tests.server.addresses import post_from
from tests.server.central.conftest import (
    STAFF_PASSWORD,
    Central,
    new_venue,
    staff_password_hash,
)

SESSION = "S1"
# (path, kind, roles allowed): every human-facing route of the central console.
ROUTES = {
    "status_json": ("/api/v1/status", "json", {"operator", "auditor"}),
    "status_html": ("/status", "html", {"operator", "auditor"}),
    "report_json": (f"/api/v1/results/{SESSION}/report", "json", {"operator", "auditor"}),
    "report_html": (f"/results/{SESSION}/report", "html", {"operator", "auditor"}),
    "me": ("/api/v1/staff/me", "json", {"operator", "auditor"}),
    "audit": ("/api/v1/audit", "json", {"auditor"}),
}
# Routes open without a staff login: machine-to-machine (venue keys), the API document, the
# login itself, and the stylesheets and icon of the login page.
PUBLIC = re.compile(
    r"^(/api/v1/openapi.json|/api/v1/uploads.*|/api/v1/heartbeat|/api/v1/release"
    r"|/api/v1/staff/log(in|out)"
    r"|/login|/logout|/|/static/.*|/favicon\.ico"
    r"|/receipt|/api/v1/receipt-check)$"  # the candidates' public receipt check (issue 14)
)


async def assert_problem(resp: Any, status: int, slug: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = dict(await resp.json())
    assert body["type"].endswith("/" + slug) and body["status"] == status and body["detail"]
    return body


async def headers_of(central: Central, who: str) -> dict[str, str]:
    """The request headers of each kind of caller in the authorization matrix."""
    if who == "anonymous":
        return {}
    if who == "forged_cookie":
        return {"Cookie": f"{COOKIE}=not-a-session; {CSRF_COOKIE}=x"}
    if who == "wrong_password":
        await central.add_staff("mallory")
        resp = await central.client.post(
            "/api/v1/staff/login", json={"login": "mallory", "password": "guess-guess-1"}
        )
        await assert_problem(resp, 401, "login-failed")
        assert COOKIE not in resp.cookies
        return {}
    if who == "disabled":
        headers = await central.as_staff("gone")
        await central.storage.disable_staff("gone", "left the authority", "cli:test", "t")
        return headers
    return await central.as_staff(who, who)


@pytest.mark.parametrize(
    "who", ["anonymous", "forged_cookie", "wrong_password", "disabled", "operator", "auditor"]
)
async def test_authorization_matrix(central: Central, who: str) -> None:
    """Each human route answers each caller as the table says: a login page redirect or 401
    for no valid session, 403 for a role that may not, the page for one that may."""
    headers = await headers_of(central, who)
    for name, (path, kind, roles) in ROUTES.items():
        resp = await central.client.get(path, headers=headers, allow_redirects=False)
        if who not in ("operator", "auditor"):
            if kind == "html":
                assert resp.status == 303, (name, resp.status)
                assert resp.headers["Location"].startswith("/login?next=/"), name
            else:
                await assert_problem(resp, 401, "not-logged-in")
        elif who not in roles:
            await assert_problem(resp, 403, "forbidden-role")
        elif name.startswith("report"):
            await assert_problem(resp, 404, "no-report")  # past the login: not scored yet
        else:
            assert resp.status == 200, (name, await resp.text())


async def test_every_other_route_needs_a_staff_login(central: Central) -> None:
    """No route outside the machine-to-machine and login ones is left without a role check."""
    unguarded = []
    for route in central.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method == "HEAD" or PUBLIC.match(path):
            continue
        if not getattr(route.handler, "staff_roles", None):
            unguarded.append(f"{route.method} {path}")
    assert unguarded == []


async def test_the_icon_is_served_without_a_login(central: Central) -> None:
    """/favicon.ico and the SVG the pages link answer 200 with the venue's icon files."""
    for path, file in (
        ("/favicon.ico", FAVICON),
        ("/static/common/favicon.svg", STATIC_DIR / "common" / "favicon.svg"),
    ):
        resp = await central.client.get(path)
        assert resp.status == 200, path
        assert resp.content_type.startswith("image/"), resp.content_type
        assert await resp.read() == file.read_bytes()


async def test_the_login_cookies_are_strict_and_the_session_cookie_is_httponly(
    central: Central,
) -> None:
    """The session cookie is HttpOnly and SameSite=Strict; the CSRF cookie is Strict and
    readable by the page (double submit)."""
    await central.add_staff("op")
    resp = await central.client.post(
        "/api/v1/staff/login", json={"login": "op", "password": STAFF_PASSWORD}
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["staff"] == {"login": "op", "name": "Op", "role": "operator"}
    session, csrf = resp.cookies[COOKIE], resp.cookies[CSRF_COOKIE]
    assert session["httponly"] and session["samesite"] == "Strict" and session["path"] == "/"
    assert not csrf["httponly"] and csrf["samesite"] == "Strict"
    assert csrf.value == body["csrf_token"] and session.value != csrf.value
    assert not session["secure"]  # plain HTTP in tests; Secure over TLS or by setting


async def test_wrong_password_and_unknown_login_get_the_same_answer(central: Central) -> None:
    """Both are 401 login-failed with the same detail, and both are audited without the
    password."""
    await central.add_staff("op")
    answers = []
    for login in ("op", "nobody"):
        resp = await central.client.post(
            "/api/v1/staff/login", json={"login": login, "password": "secret-guess-99"}
        )
        answers.append((await assert_problem(resp, 401, "login-failed"))["detail"])
    assert answers[0] == answers[1]
    events = await central.storage.audit_events()
    failed = [e for e in events if e["action"] == "staff.login_failed"]
    assert [e["object"] for e in failed] == ["staff:op", "staff:nobody"]
    assert "secret-guess-99" not in repr(events)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"login": "op"}', b'{"login": 1, "password": "x"}',
     b'{"login": "op", "password": ""}'],
)  # fmt: skip
async def test_malformed_logins_are_refused_with_a_problem(central: Central, body: bytes) -> None:
    """A body that is not {login, password} strings is a 400 problem, never a traceback."""
    resp = await central.client.post(
        "/api/v1/staff/login", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and resp.content_type == "application/problem+json"


async def test_the_json_login_must_be_json(central: Central) -> None:
    """A cross-site form cannot post the JSON login: other content types get 415."""
    await central.add_staff("op")
    resp = await central.client.post(
        "/api/v1/staff/login", data={"login": "op", "password": STAFF_PASSWORD}
    )
    await assert_problem(resp, 415, "unsupported-media-type")


async def test_f2_right_password_works_from_a_clean_address_after_100_wrong_guesses(
    central: Central,
) -> None:
    """Issue 16, F2 at the centre: 100 checked wrong passwords for `op` from one address (the
    attacker waits out each Retry-After) and the right password still works at once from a
    clean address; the guessing address waits, right password or not, on the JSON login and
    on the form."""
    await central.add_staff("op")
    wrong = {"login": "op", "password": "wrong-password"}
    checked = 0
    while checked < 100:
        resp = await central.client.post("/api/v1/staff/login", json=wrong)
        if resp.status == 429:
            body = await assert_problem(resp, 429, "login-locked")
            assert resp.headers["Retry-After"] == str(body["retry_after_s"])
            central.clock.advance(seconds=body["retry_after_s"])
            continue
        await assert_problem(resp, 401, "login-failed")
        checked += 1
    right = {"login": "op", "password": STAFF_PASSWORD}
    status, _, body = await post_from(
        central.client, "127.0.0.2", "/api/v1/staff/login", json=right
    )
    assert status == 200 and body["staff"]["login"] == "op"
    locked = await central.client.post("/api/v1/staff/login", json=right)
    await assert_problem(locked, 429, "login-locked")
    page = await central.client.get("/login")
    token = page.cookies[CSRF_COOKIE].value
    form = await central.client.post(
        "/login", data={"login": "op", "password": STAFF_PASSWORD, "csrf_token": token}
    )
    assert form.status == 429 and int(form.headers["Retry-After"]) > 0


async def test_f2_guesses_on_one_account_wait_longer_and_longer(central: Central) -> None:
    """After 5 free failures each further guess waits twice as long (2, 4, 8 s ...)."""
    await central.add_staff("op")
    wrong = {"login": "op", "password": "wrong-password"}
    for _ in range(5):
        await assert_problem(
            await central.client.post("/api/v1/staff/login", json=wrong), 401, "login-failed"
        )
    waits = []
    for _ in range(4):
        locked = await central.client.post("/api/v1/staff/login", json=wrong)
        body = await assert_problem(locked, 429, "login-locked")
        assert locked.headers["Retry-After"] == str(body["retry_after_s"])
        waits.append(body["retry_after_s"])
        central.clock.advance(seconds=body["retry_after_s"])
        await assert_problem(
            await central.client.post("/api/v1/staff/login", json=wrong), 401, "login-failed"
        )
    assert waits == [2, 4, 8, 16]


async def test_f2_an_address_guessing_many_logins_waits(central: Central) -> None:
    """10 failures from one address over different logins make that address wait; another
    address logs in; failures older than the window are pruned by the next one."""
    await central.add_staff("op")
    for n in range(10):
        resp = await central.client.post(
            "/api/v1/staff/login", json={"login": f"user{n}", "password": "wrong-password"}
        )
        await assert_problem(resp, 401, "login-failed")
    right = {"login": "op", "password": STAFF_PASSWORD}
    resp = await central.client.post("/api/v1/staff/login", json=right)
    await assert_problem(resp, 429, "login-locked")
    assert int(resp.headers["Retry-After"]) > 0
    status, _, _ = await post_from(central.client, "127.0.0.3", "/api/v1/staff/login", json=right)
    assert status == 200
    kept = await central.storage.login_state("op", "127.0.0.1", "2000-01-01T00:00:00Z", 100)
    assert len(kept.remote_failures) == 10
    central.clock.advance(hours=1, seconds=1)
    resp = await central.client.post(
        "/api/v1/staff/login", json={"login": "op", "password": "wrong-password"}
    )
    await assert_problem(resp, 401, "login-failed")
    kept = await central.storage.login_state("op", "127.0.0.1", "2000-01-01T00:00:00Z", 100)
    assert len(kept.remote_failures) == 1  # the hour-old ones were deleted


async def test_logout_needs_the_csrf_token_and_ends_the_session(central: Central) -> None:
    """Logout without the token, or with one that is not the cookie's, is 403 csrf-failed;
    with it the session ends and the status page is 401 again."""
    headers = await central.as_staff()
    cookie_only = {"Cookie": headers["Cookie"]}
    resp = await central.client.post("/api/v1/staff/logout", headers=cookie_only)
    await assert_problem(resp, 403, "csrf-failed")
    forged = {**cookie_only, "X-CSRF-Token": "guessed"}
    resp = await central.client.post("/api/v1/staff/logout", headers=forged)
    await assert_problem(resp, 403, "csrf-failed")
    # The cookie and the header agree, but the token is not this session's.
    session = headers["Cookie"].split(";")[0]
    other = {"Cookie": f"{session}; {CSRF_COOKIE}=guessed", "X-CSRF-Token": "guessed"}
    resp = await central.client.post("/api/v1/staff/logout", headers=other)
    await assert_problem(resp, 403, "csrf-failed")
    assert (await central.client.get("/api/v1/status", headers=headers)).status == 200
    resp = await central.client.post("/api/v1/staff/logout", headers=headers)
    assert resp.status == 200 and (await resp.json()) == {"logged_out": True}
    resp = await central.client.get("/api/v1/status", headers=headers)
    await assert_problem(resp, 401, "not-logged-in")


async def test_sessions_expire(central: Central) -> None:
    """A login lasts CBT_CENTRAL_STAFF_SESSION_TTL_S (8 hours by default), not longer."""
    headers = await central.as_staff()
    central.clock.advance(hours=8, seconds=-1)
    assert (await central.client.get("/api/v1/status", headers=headers)).status == 200
    central.clock.advance(seconds=2)
    resp = await central.client.get("/api/v1/status", headers=headers)
    await assert_problem(resp, 401, "not-logged-in")


async def test_a_disabled_account_cannot_log_in(central: Central) -> None:
    """Disabling ends the account's sessions and refuses its password from then on."""
    await central.as_staff("op")
    await central.storage.disable_staff("op", "left", "cli:test", iso(central.clock.now()))
    resp = await central.client.post(
        "/api/v1/staff/login", json={"login": "op", "password": STAFF_PASSWORD}
    )
    await assert_problem(resp, 401, "login-failed")
    with pytest.raises(StaffError, match="already disabled"):
        await central.storage.disable_staff("op", "again", "cli:test", "t")
    with pytest.raises(StaffError, match="no staff account"):
        await central.storage.disable_staff("nobody", "x", "cli:test", "t")


async def test_logins_and_logouts_are_audited_without_secrets(central: Central) -> None:
    """The audit chain holds staff.added, staff.login, staff.logout: no password, no token."""
    headers = await central.as_staff()
    await central.client.post("/api/v1/staff/logout", headers=headers)
    events = await central.storage.audit_events()
    assert [e["action"] for e in events] == ["staff.added", "staff.login", "staff.logout"]
    assert events[1]["details"]["role"] == "operator" and events[1]["actor"] == "operator"
    verify_audit_records(events, "seq", LEGACY_CENTRAL_FORMAT)
    text = repr(events)
    csrf = headers["X-CSRF-Token"]
    token = headers["Cookie"].split(";")[0].split("=", 1)[1]
    assert STAFF_PASSWORD not in text and csrf not in text and token not in text


async def test_the_auditor_reads_the_audit_trail(central: Central) -> None:
    """GET /api/v1/audit gives an auditor every event and says the chain holds."""
    headers = await central.as_staff("aud", "auditor")
    body = await (await central.client.get("/api/v1/audit", headers=headers)).json()
    assert body["verified"] is True
    assert [e["action"] for e in body["events"]] == ["staff.added", "staff.login"]


async def test_the_audit_trail_says_when_its_chain_is_broken(central: Central) -> None:
    """An event edited in the database shows as `verified: false` with the reason, not a 500."""
    headers = await central.as_staff("aud", "auditor")
    sql = 'UPDATE audit_events SET details = \'{"role": "operator"}\' WHERE seq = 1'
    if central.database.startswith("postgresql"):
        await central.storage.pool.execute(sql)
    else:
        await central.storage._run(lambda db: db.execute(sql))
    body = await (await central.client.get("/api/v1/audit", headers=headers)).json()
    assert body["verified"] is False and "edited" in body["problem"]


async def test_the_login_form_signs_in_and_goes_back_where_it_was_going(
    central: Central,
) -> None:
    """/status without a login leads to the form; the form's POST (with the CSRF token of the
    page) signs in and returns to /status, which names the staff member; sign out ends it."""
    await central.add_staff("op")
    http = central.client
    resp = await http.get("/status", allow_redirects=False)
    assert resp.headers["Location"] == "/login?next=/status"
    page = await http.get("/login?next=/status")
    html = await page.text()
    assert page.status == 200 and page.headers["X-Frame-Options"] == "DENY"
    assert "script-src" not in page.headers["Content-Security-Policy"]  # none: default-src
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token and page.cookies[CSRF_COOKIE].value == token[1]
    jar = {"Cookie": f"{CSRF_COOKIE}={token[1]}"}
    form = {"csrf_token": token[1], "next": "/status", "login": "op", "password": STAFF_PASSWORD}
    http.session.cookie_jar.clear()
    resp = await http.post("/login", data=form, headers=jar, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/status"
    session, csrf = resp.cookies[COOKIE].value, resp.cookies[CSRF_COOKIE].value
    assert csrf != token[1]  # a fresh token for the session
    http.session.cookie_jar.clear()
    headers = {"Cookie": f"{COOKIE}={session}; {CSRF_COOKIE}={csrf}"}
    status = await http.get("/status", headers=headers)
    text = await status.text()
    assert status.status == 200 and "Op（op，操作员）" in text and csrf in text
    resp = await http.post(
        "/logout", data={"csrf_token": csrf}, headers=headers, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    resp = await http.get("/status", headers=headers, allow_redirects=False)
    assert resp.status == 303


async def test_the_login_form_refuses_a_missing_csrf_token_and_shows_errors(
    central: Central,
) -> None:
    """A form post without the page's CSRF cookie is refused (403, nothing checked); a wrong
    password shows the error on the page (401); a foreign `next` is never followed."""
    await central.add_staff("op")
    http = central.client
    form = {"csrf_token": "abc", "login": "op", "password": STAFF_PASSWORD}
    http.session.cookie_jar.clear()
    resp = await http.post("/login", data=form, allow_redirects=False)
    assert resp.status == 403 and "页面已过期，请重新登录。" in await resp.text()
    assert COOKIE not in resp.cookies
    http.session.cookie_jar.clear()
    jar = {"Cookie": f"{CSRF_COOKIE}=abc"}
    resp = await http.post(
        "/login", data={**form, "password": "wrong-password"}, headers=jar, allow_redirects=False
    )
    assert resp.status == 401 and "账号或密码错误。" in await resp.text()
    http.session.cookie_jar.clear()
    form["password"] = STAFF_PASSWORD
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        resp = await http.post(
            "/login", data={**form, "next": bad}, headers=jar, allow_redirects=False
        )
        assert resp.status == 303 and resp.headers["Location"] == "/status", bad
        http.session.cookie_jar.clear()


async def test_accounts_are_unique_and_survive_a_restart(central: Central) -> None:
    """A second account with one login is refused; accounts are in the store, not the process."""
    await central.add_staff("op")
    with pytest.raises(StaffError, match="already exists"):
        await central.add_staff("op", "auditor")
    storage = open_storage(central.database)
    await storage.open()
    try:
        (account,) = await storage.list_staff()
        assert (account.login, account.role, account.active) == ("op", "operator", True)
    finally:
        await storage.close()


async def test_an_older_database_gets_the_staff_tables_when_opened(
    central: Central,
) -> None:
    """A central database from before staff logins (no staff tables) is migrated on open."""
    storage = open_storage(central.database)
    await storage.open()
    try:
        sql = "DROP TABLE staff_sessions; DROP TABLE staff_login_failures; DROP TABLE staff"
        sql += "; DROP TABLE schema_migrations"  # as databases made before migrations
        sql += "; ALTER TABLE audit_events DROP COLUMN chain_format"  # ... which lacked it
        if central.database.startswith("postgresql"):
            await storage.pool.execute(sql)  # type: ignore[attr-defined]
        else:
            await storage._run(lambda db: db.executescript(sql))  # type: ignore[attr-defined]
    finally:
        await storage.close()
    storage = open_storage(central.database)
    await storage.open()
    try:
        await storage.add_staff("op", "Op", "operator", staff_password_hash(), "cli:test", "t")
        assert [a.login for a in await storage.list_staff()] == ["op"]
    finally:
        await storage.close()


def test_the_staff_commands_add_list_and_disable(
    tmp_path: Path, authority_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cbt central staff add|list|disable` manage accounts; mistakes are one-line errors."""
    from server.cli import main

    central_dir, password = tmp_path / "central", tmp_path / "pw"
    assert main(["central", "init", str(central_dir), "--authority", str(authority_dir)]) == 0
    password.write_text(STAFF_PASSWORD + "\n")
    add = ["central", "staff", "add", str(central_dir), "--password-file", str(password)]
    assert main([*add, "--login", "li.na", "--role", "operator", "--name", "Li Na"]) == 0
    assert main([*add, "--login", "li.na", "--role", "auditor", "--name", "Li Na"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([*add, "--login", "a b", "--role", "auditor", "--name", "X"]) == 1
    assert capsys.readouterr().err.startswith("cbt: error: login 'a b' is not valid")
    with pytest.raises(SystemExit) as usage:
        main([*add, "--login", "x", "--role", "admin", "--name", "X"])
    assert usage.value.code == 2
    disable = ["central", "staff", "disable", str(central_dir), "--login", "li.na"]
    assert main([*disable, "--reason", "left the authority"]) == 0
    capsys.readouterr()
    assert main(["central", "staff", "list", str(central_dir)]) == 0
    assert "li.na" in (listing := capsys.readouterr().out) and "(disabled)" in listing
    assert main(["audit", "verify", str(central_dir / "central.db")]) == 0


def _html_lang(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', html)
    assert found, html[:200]
    return found[1]


async def test_the_login_page_speaks_chinese_first_and_english_on_request(
    central: Central,
) -> None:
    """The login page opens in Chinese, with a link to English that keeps `next`; ?lang=en
    renders it in English and remembers that in the cbt_lang cookie, so the form's refusals
    come back in English too; the JSON login keeps the problem's own words."""
    await central.add_staff("op")
    http = central.client
    page = await http.get("/login?next=/status")
    html = await page.text()
    assert _html_lang(html) == "zh-CN" and "考试中心工作人员登录" in html
    assert 'href="/login?next=%2Fstatus&amp;lang=en">English</a>' in html
    assert "cbt_lang" not in page.cookies
    http.session.cookie_jar.clear()
    page = await http.get("/login?next=/status&lang=en")
    html = await page.text()
    assert _html_lang(html) == "en" and "Central staff sign-in" in html
    assert "考试中心" not in html
    assert 'href="/login?next=%2Fstatus&amp;lang=zh-CN">中文</a>' in html
    assert page.cookies["cbt_lang"].value == "en" and page.cookies["cbt_lang"]["httponly"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token
    form = {"csrf_token": token[1], "next": "/status", "login": "op", "password": "wrong-pw-1"}
    for lang, refusal in (("en", "Wrong login or password."), ("zh-CN", "账号或密码错误。")):
        http.session.cookie_jar.clear()
        jar = {"Cookie": f"{CSRF_COOKIE}={token[1]}; cbt_lang={lang}"}
        resp = await http.post("/login", data=form, headers=jar, allow_redirects=False)
        html = await resp.text()
        assert resp.status == 401 and _html_lang(html) == lang and refusal in html
        assert 'name="next" value="/status"' in html  # still going where it was going
    for _ in range(3):  # five failures in all: the login is locked, in the page's language
        http.session.cookie_jar.clear()
        await http.post("/login", data=form, headers=jar, allow_redirects=False)
    http.session.cookie_jar.clear()
    resp = await http.post("/login", data=form, headers=jar, allow_redirects=False)
    assert resp.status == 429
    assert re.search(r"本计算机登录失败次数过多：请 \d+ 秒后再试", await resp.text())
    resp = await http.post("/api/v1/staff/login", json={"login": "nobody", "password": "x" * 10})
    assert (await assert_problem(resp, 401, "login-failed"))["detail"] == "wrong login or password"


async def test_the_status_page_speaks_chinese_first_and_english_on_request(
    central: Central,
) -> None:
    """/status is Chinese by default (role and headings); ?lang=en switches every label and
    is remembered; without a login, ?lang= is carried to the login page."""
    resp = await central.client.get("/status?lang=en", allow_redirects=False)
    assert resp.headers["Location"] == "/login?next=/status%3Flang%3Den&lang=en"
    headers = await central.as_staff("op")
    html = await (await central.client.get("/status", headers=headers)).text()
    assert "接收日志：尚未接收答卷数据包。" in html and "已登记考点：无" in html
    for venue_id in ("BJ-001", "SH-002"):
        await central.register(new_venue(venue_id))
    now = iso(central.clock.now())
    await central.storage.record_release(SESSION, "BJ-001", now, now)
    page = await central.client.get("/status", headers=headers)
    html = await page.text()
    assert _html_lang(html) == "zh-CN"
    for text in (
        "状态总览",
        "Op（op，操作员）",
        "考试场次",
        "未上传",
        "已登记考点：BJ-001、SH-002",
    ):
        assert text in html, text
    assert 'href="/status?lang=en">English</a>' in html
    page = await central.client.get("/status?lang=en", headers=headers)
    html = await page.text()
    assert _html_lang(html) == "en" and page.cookies["cbt_lang"].value == "en"
    for text in ("Central status", "Op (op, operator)", "Session", "<td>no</td>",
                 "Venues registered: BJ-001, SH-002"):  # fmt: skip
        assert text in html, text
    assert not re.search(r"[\u4e00-\u9fff]", html.replace("中文", "")), "Chinese left in English"
    cookie = {"Cookie": f"{headers['Cookie']}; cbt_lang=en"}
    html = await (await central.client.get("/status", headers=cookie)).text()
    assert _html_lang(html) == "en"
