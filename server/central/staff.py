"""Central staff: who may use the central console, and how they log in (art. 41, 46-47, 50).

Roles (`STAFF_ROLES`): `operator` sees the status page and the verification reports;
`auditor` sees the same, read-only, and also the central audit trail (`GET /api/v1/audit`).
Accounts are made on the command line (`cbt central staff add|list|disable`) and kept in the
central store (SQLite or PostgreSQL); passwords are argon2id hashes (`server.staffauth`).

A login sets two cookies, both SameSite=Strict (and Secure over TLS or with
`CBT_CENTRAL_SECURE_COOKIES=1` behind a TLS proxy): `cbt_central` (HttpOnly, the session
token) and `cbt_central_csrf` (readable by the page, the CSRF token). The store keeps only
their SHA-256. A state-changing request (logout) must echo the CSRF token in `X-CSRF-Token`
or the `csrf_token` form field: it must equal the cookie (double submit) and match the hash
stored with the session. The login form itself is protected the same way by a CSRF cookie set
when the page is shown; the JSON login must be `application/json`, which no cross-site form
can send. Failed logins are rate-limited (5 per login, 20 per address, per 60 s) and audited,
as are logins and logouts, in the central audit chain; passwords and tokens never are.

HTML routes redirect to `/login?next=...` without a session; JSON routes answer 401
problem+json (403 for a role that may not). The pages speak Chinese or English as the venue's
do (`server.i18n`: `?lang=`, then the `cbt_lang` cookie, then Chinese); the login form's
refusals are shown in that language, while the JSON API keeps the problems' own words.
Routes here:

    GET  /login                  the login page            POST /login    the login form
    POST /logout                 the logout form           GET  /         -> /status
    POST /api/v1/staff/login     {login, password} -> {staff, csrf_token}
    POST /api/v1/staff/logout    GET /api/v1/staff/me      GET /api/v1/audit (auditor)
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import web

from client import FAVICON, STATIC_DIR, templates
from server.central import keys
from server.central.storage import STAFF_ROLES, StaffAccount
from server.clock import iso
from server.errors import DomainError
from server.http import parse_json
from server.i18n import (
    Translate,
    format_time,
    other_language,
    page_language,
    remember_language,
    translator,
)
from server.problems import Problem, as_problem
from server.protocol.audit_chain import LEGACY_CENTRAL_FORMAT, AuditBroken, verify_audit_records
from server.staffauth import (
    CSRF_FIELD,
    CSRF_HEADER,
    DUMMY_HASH,
    FAILURE_WINDOW,
    FAILURES_READ,
    SAFE_METHODS,
    check_credentials,
    check_csrf,
    check_password,
    login_locked,
    login_wait_s,
    new_token,
    set_session_cookie,
    token_hash,
)

__all__ = ["STAFF_ROLES", "routes", "staff_api", "staff_page"]

COOKIE = "cbt_central"  # not the venue's cbt_staff: both may run on one host (the demo)
CSRF_COOKIE = "cbt_central_csrf"
LOGIN_PATH = "/login"
ALL_ROLES = STAFF_ROLES
AUDIT_ROLES = ("auditor",)
# No script and no framing on the console's own pages; styles only from this server.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

# The login form's refusals, by problem slug, as catalogue keys (with the problem's extra
# fields as parameters); the JSON login answers with the problem itself.
LOGIN_ERRORS = {
    "form-expired": "central.error.form_expired",
    "login-failed": "central.error.login_failed",
    "login-locked": "central.error.login_locked",
    "invalid-body": "central.error.invalid_login",
}
routes = web.RouteTableDef()
STAFF: web.RequestKey[StaffAccount] = web.RequestKey("central_staff")


def render_page(template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A console page from `client/templates/central/`, never cached, never framed; the
    context carries the language (`language_context`, part of `page_context`)."""
    html = templates().get_template(template).render(**context)
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(
        {"Cache-Control": "no-store", "Content-Security-Policy": PAGE_CSP,
         "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}
    )  # fmt: skip
    return response


def language_context(request: web.Request, switch: str | None = None) -> dict[str, Any]:
    """The page's language, its `t`, and the link to the other language (`switch`, else this
    page with `?lang=` changed)."""
    lang = page_language(request)
    if switch is None:
        switch = str(request.rel_url.update_query(lang=other_language(lang)))
    zone = request.app[keys.SETTINGS].time_zone

    def when(text: str | None) -> str:
        return format_time(text, lang, zone)

    return {"lang": lang, "t": translator(lang), "lang_switch": switch, "when": when}


def redirect(location: str) -> web.Response:
    """303 See Other to `location` (a path on this server)."""
    return web.Response(status=303, headers={"Location": location})


def client_address(request: web.Request) -> str:
    """The peer's address: behind a reverse proxy, the proxy's (no forwarded headers are
    trusted, so the per-address limit then counts every client together)."""
    return request.remote or "unknown"


def _secure(request: web.Request) -> bool:
    return request.secure or request.app[keys.SETTINGS].secure_cookies


def _now(request: web.Request) -> datetime:
    return request.app[keys.CLOCK].now()


# --- sessions --------------------------------------------------------------------------------


async def find_staff(request: web.Request) -> tuple[StaffAccount, str] | None:
    """The logged-in account and its session's CSRF hash, or None."""
    token = request.cookies.get(COOKIE, "")
    if not token or len(token) > 200:
        return None
    return await request.app[keys.STORAGE].find_staff_session(token_hash(token), iso(_now(request)))


async def _sent_csrf(request: web.Request) -> str:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.content_type == "application/x-www-form-urlencoded":
        sent = str((await request.post()).get(CSRF_FIELD, ""))
    return sent


async def check_state_change(request: web.Request, csrf_hash: str) -> None:
    """Problem 403 unless the request echoes the CSRF cookie and it is the session's token."""
    sent = await _sent_csrf(request)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise Problem(
            403,
            "csrf-failed",
            f"missing or wrong {CSRF_HEADER} header: send the value of the {CSRF_COOKIE} cookie",
        )
    check_csrf(sent, csrf_hash)


async def require_staff(request: web.Request, roles: tuple[str, ...]) -> StaffAccount:
    """The logged-in account (Problem 401), of one of `roles` (Problem 403), with the CSRF
    token on a state-changing request (Problem 403)."""
    found = await find_staff(request)
    if found is None:
        raise Problem(
            401, "not-logged-in", "log in as central staff first (POST /api/v1/staff/login)"
        )
    account, csrf_hash = found
    if request.method not in SAFE_METHODS:
        await check_state_change(request, csrf_hash)
    if account.role not in roles:
        raise Problem(
            403,
            "forbidden-role",
            f"this needs the role {' or '.join(roles)}; you are logged in as {account.role}",
        )
    request[STAFF] = account
    return account


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def staff_api(*roles: str) -> Callable[[Handler], Handler]:
    """A JSON route for logged-in staff of `roles` (all roles when empty): 401/403 otherwise."""
    allowed = roles or ALL_ROLES

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            await require_staff(request, allowed)
            return await handler(request)

        wrapped.staff_roles = allowed  # type: ignore[attr-defined]  # read by the authz test
        return wrapped

    return decorate


def staff_page(*roles: str) -> Callable[[Handler], Handler]:
    """An HTML route for logged-in staff of `roles`: without a session, a redirect to the
    login page that comes back here afterwards."""
    allowed = roles or ALL_ROLES

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                await require_staff(request, allowed)
            except Problem as problem:
                if problem.status != 401:
                    raise
                login = f"{LOGIN_PATH}?next={quote(request.path_qs, safe='/')}"
                if request.query.get("lang"):  # the login page in the language asked for
                    login += "&" + urlencode({"lang": request.query["lang"]})
                return redirect(login)
            response = await handler(request)
            remember_language(request, response, secure=_secure(request))
            return response

        wrapped.staff_roles = allowed  # type: ignore[attr-defined]  # read by the authz test
        return wrapped

    return decorate


def page_context(request: web.Request) -> dict[str, Any]:
    """What every console page's top bar needs: who is logged in, the logout form's token and
    the language."""
    return {
        "staff": request[STAFF],
        "csrf_token": request.cookies.get(CSRF_COOKIE, ""),
        **language_context(request),
    }


# --- logging in and out ----------------------------------------------------------------------


async def log_in(request: web.Request, login: str, password: str) -> tuple[StaffAccount, str, str]:
    """Check the password (rate-limited, audited); (account, session token, CSRF token)."""
    storage, now, remote = request.app[keys.STORAGE], _now(request), client_address(request)
    state = await storage.login_state(login, remote, iso(now - FAILURE_WINDOW), FAILURES_READ)
    locked = login_wait_s(
        [_at(t) for t in state.login_failures], [_at(t) for t in state.remote_failures], now
    )
    if locked:
        raise login_locked(locked)
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(
        None, check_password, state.password_hash or DUMMY_HASH, password
    )
    if state.account is None or not ok:
        await storage.record_login_failure(login, remote, iso(now), iso(now - FAILURE_WINDOW))
        raise Problem(401, "login-failed", "wrong login or password")
    session_token, csrf_token = new_token(), new_token()
    ttl = timedelta(seconds=request.app[keys.SETTINGS].staff_session_ttl_s)
    await storage.open_staff_session(
        state.account, token_hash(session_token), token_hash(csrf_token), remote, iso(now),
        iso(now + ttl),
    )  # fmt: skip
    return state.account, session_token, csrf_token


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def set_login_cookies(
    request: web.Request, response: web.StreamResponse, session_token: str, csrf_token: str
) -> None:
    ttl_s = request.app[keys.SETTINGS].staff_session_ttl_s
    set_session_cookie(response, COOKIE, session_token, secure=_secure(request), max_age_s=ttl_s)
    _set_csrf_cookie(request, response, csrf_token, ttl_s)


def _set_csrf_cookie(
    request: web.Request, response: web.StreamResponse, token: str, max_age_s: int | None
) -> None:
    # Readable by the page (not HttpOnly): the double-submit pattern needs the client to echo it.
    response.set_cookie(
        CSRF_COOKIE, token, samesite="Strict", secure=_secure(request), path="/",
        max_age=max_age_s,
    )  # fmt: skip


def clear_login_cookies(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")


async def log_out(request: web.Request) -> StaffAccount:
    """End the session of this request (CSRF-checked); audited."""
    account = await require_staff(request, ALL_ROLES)
    await request.app[keys.STORAGE].end_staff_session(
        token_hash(request.cookies[COOKIE]), account, iso(_now(request))
    )
    return account


def safe_next(raw: str | None) -> str:
    """Where to go after the login: a path on this server only (never another site)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/status"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return "/status"
    return raw


# --- JSON routes -----------------------------------------------------------------------------


@routes.post("/api/v1/staff/login", name="central_staff_login")
async def api_login(request: web.Request) -> web.Response:
    """Check the password and start a session; returns the account and the CSRF token."""
    if request.content_type != "application/json":
        raise Problem(415, "unsupported-media-type", "send the login as application/json")
    try:
        body = parse_json(await request.read())
    except ValueError:
        raise Problem(400, "malformed-json", "the body must be JSON: {login, password}") from None
    login, password = check_credentials(body)
    account, session_token, csrf_token = await log_in(request, login, password)
    response = web.json_response({"staff": account.as_json(), "csrf_token": csrf_token})
    set_login_cookies(request, response, session_token, csrf_token)
    return response


@routes.post("/api/v1/staff/logout", name="central_staff_logout")
async def api_logout(request: web.Request) -> web.Response:
    """End the session (CSRF-checked) and clear both cookies."""
    await log_out(request)
    response = web.json_response({"logged_out": True})
    clear_login_cookies(response)
    return response


@routes.get("/api/v1/staff/me", name="central_staff_me")
@staff_api()
async def api_me(request: web.Request) -> web.Response:
    """Who is logged in."""
    return web.json_response({"staff": request[STAFF].as_json()})


@routes.get("/api/v1/audit", name="central_audit")
@staff_api(*AUDIT_ROLES)
async def api_audit(request: web.Request) -> web.Response:
    """The central audit trail, with whether its hash chain holds (auditors only)."""
    events = await request.app[keys.STORAGE].audit_events()
    try:
        verify_audit_records(events, "seq", LEGACY_CENTRAL_FORMAT)
        verified, problem = True, None
    except AuditBroken as exc:  # a broken chain is the answer here, not an error
        verified, problem = False, str(exc)
    return web.json_response(
        {"verified": verified, "problem": problem, "events": events},
        headers={"Cache-Control": "no-store"},
    )


# --- HTML routes -----------------------------------------------------------------------------


def login_error(t: Translate, problem: Problem) -> str:
    """A refused login in the page's language (a refusal the form cannot meet: its detail)."""
    key = LOGIN_ERRORS.get(problem.slug)
    return t(key, **problem.extra) if key else problem.detail


def _login_page(
    request: web.Request,
    *,
    status: int = 200,
    error: Problem | None = None,
    login: str = "",
    next_path: str | None = None,
) -> web.Response:
    """The login form with a fresh pre-login CSRF token (cookie and hidden field agree);
    `error` is the refusal of the form just sent, `next_path` where it was going."""
    token = new_token()
    next_path = safe_next(next_path or request.query.get("next"))
    switch = f"{LOGIN_PATH}?" + urlencode(
        {"next": next_path, "lang": other_language(page_language(request))}
    )
    context = language_context(request, switch)
    response = render_page(
        "central/login.html", status=status, login=login, csrf_token=token, next=next_path,
        error=login_error(context["t"], error) if error else "", **context,
    )  # fmt: skip
    _set_csrf_cookie(request, response, token, None)
    remember_language(request, response, secure=_secure(request))
    return response


@routes.get(LOGIN_PATH, name="central_login_page")
async def login_page(request: web.Request) -> web.Response:
    """The login page (straight on to where it was going when already logged in)."""
    if await find_staff(request) is not None:
        return redirect(safe_next(request.query.get("next")))
    return _login_page(request)


@routes.post(LOGIN_PATH, name="central_login_form")
async def login_form(request: web.Request) -> web.Response:
    """The login form's POST: CSRF double submit, then as the JSON login; back to `next`."""
    form = await request.post()
    sent, cookie = str(form.get(CSRF_FIELD, "")), request.cookies.get(CSRF_COOKIE, "")
    next_path = str(form.get("next", "")) or None
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        expired = Problem(403, "form-expired", "the form had expired: sign in again")
        return _login_page(request, status=403, error=expired, next_path=next_path)
    login, password = str(form.get("login", "")), str(form.get("password", ""))
    try:
        login, password = check_credentials({"login": login, "password": password})
        _, session_token, csrf_token = await log_in(request, login, password)
    except (Problem, DomainError) as refusal:
        problem = as_problem(refusal)
        page = _login_page(
            request, status=problem.status, error=problem, login=login, next_path=next_path
        )
        if "retry_after_s" in problem.extra:  # a 429 (or 503) says when to try again
            page.headers["Retry-After"] = str(problem.extra["retry_after_s"])
        return page
    response = redirect(safe_next(next_path))
    set_login_cookies(request, response, session_token, csrf_token)
    return response


@routes.post("/logout", name="central_logout_form")
async def logout_form(request: web.Request) -> web.Response:
    """The console's sign-out button: end the session, back to the login page."""
    if await find_staff(request) is None:
        return redirect(LOGIN_PATH)
    await log_out(request)
    response = redirect(LOGIN_PATH)
    clear_login_cookies(response)
    return response


@routes.get("/", name="central_home")
async def home(request: web.Request) -> web.Response:
    """The console's front door is the status page."""
    return redirect("/status")


@routes.get("/static/common/base.css", name="central_base_css")
async def base_css(request: web.Request) -> web.FileResponse:
    """The venue pages' own stylesheet, so the console looks the same."""
    return web.FileResponse(STATIC_DIR / "common" / "base.css")


@routes.get("/favicon.ico", name="central_favicon")
async def favicon(request: web.Request) -> web.FileResponse:
    """The icon a browser asks for by itself (the same as the venue's), on every page here."""
    return web.FileResponse(FAVICON)


@routes.get("/static/common/favicon.svg", name="central_favicon_svg")
async def favicon_svg(request: web.Request) -> web.FileResponse:
    """The icon as SVG, which the console's pages link for sharp rendering at any size."""
    return web.FileResponse(STATIC_DIR / "common" / "favicon.svg")


@routes.get("/static/staff/staff.css", name="central_staff_css")
async def staff_css(request: web.Request) -> web.FileResponse:
    """The staff console's stylesheet (panels, tables, the top bar's quiet button)."""
    return web.FileResponse(STATIC_DIR / "staff" / "staff.css")
