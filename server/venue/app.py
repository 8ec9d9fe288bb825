"""The venue server's aiohttp application: the factory, its middlewares and resources.

`create_app(settings, clock=...)` does no I/O: the database (the group-committing Store)
opens in a cleanup context, as does the task that closes attempts at the end of their time.
Middlewares, outermost first: one log line per request (method, path, status, time; never
bodies, tokens or query strings), security headers on every response (a strict CSP with no
inline script), and RFC 9457 problem details for every error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.clock import Clock, SystemClock
from server.problems import Handler, problem_middleware
from server.requestlog import request_log_middleware
from server.venue import (
    attempts,
    ceremony,
    console,
    export,
    identity,
    inspection,
    invigilate,
    keys,
    live,
    login,
    openapi,
    packages,
    pages,
    resume,
    room_time,
    saves,
    schedule,
    staff,
    submission,
    violations,
)
from server.venue.background import background_context
from server.venue.candidate_auth import AttemptCache
from server.venue.closer import closer_context
from server.venue.heartbeat import heartbeat_context
from server.venue.login_limiter import LoginLimiter
from server.venue.restart import restart_context
from server.venue.settings import Settings

log = logging.getLogger("server.venue.requests")
REQUEST_LOG = request_log_middleware(log, lambda app: app[keys.SETTINGS].log_requests)

SECURITY_HEADERS = {
    # Scripts and styles only from this server, no inline script, no framing, no plugins.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
NO_STORE_PREFIXES = ("/api/",)  # answers and papers must never sit in a browser or proxy cache


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the security headers (and no-store on the API) to every response, errors included."""
    response = await handler(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith(NO_STORE_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    return response


async def ping(request: web.Request) -> web.Response:
    """The bare calibration endpoint of the load tests: no database, no auth."""
    return web.json_response({"ok": True})


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """Build the venue app; no I/O here, resources open in cleanup contexts."""
    app = web.Application(
        middlewares=[REQUEST_LOG, security_headers_middleware, problem_middleware],
        client_max_size=settings.max_package_bytes,
    )
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock or SystemClock()
    app.cleanup_ctx.append(_store_context)
    app.cleanup_ctx.append(restart_context)  # outages, the paper back, the alive mark
    app.cleanup_ctx.append(closer_context)
    app.cleanup_ctx.append(background_context)  # exits first: its writes need the store
    if settings.central_url:  # ended sessions are exported and sent home on their own
        app.cleanup_ctx.append(
            export.outbox_context(settings.venue_dir, settings.central_url, app[keys.CLOCK])
        )
        app.cleanup_ctx.append(heartbeat_context(settings.heartbeat_s))  # the live line
    app[keys.LOGIN_LIMITER] = LoginLimiter(app[keys.CLOCK])
    app[keys.ATTEMPT_CACHE] = AttemptCache()
    live.setup(app)
    app.router.add_get("/ping", ping, name="ping")
    app.add_routes(staff.staff_routes)
    app.add_routes(login.routes)
    app.add_routes(attempts.routes)  # status, heartbeat and the paper
    app.add_routes(saves.routes)
    app.add_routes(submission.routes)
    app.add_routes(resume.routes)  # resuming a page (acknowledged answers) and paper media
    app.add_routes(invigilate.routes)
    app.add_routes(violations.routes)  # art. 32: the chief examiner confirms a violation
    app.add_routes(identity.routes)  # art. 30: photos, verify and refuse
    app.add_routes(room_time.routes)  # art. 31: room-wide grants, time changes
    app.add_routes(packages.routes)
    app.add_routes(inspection.routes)  # the inspection sign-off and dry run (art. 21(3))
    app.add_routes(ceremony.routes)
    app.add_routes(schedule.routes)
    app.add_routes(openapi.routes)
    app.add_routes(console.routes)  # the staff console page and its read-only API
    app.add_routes(pages.routes)  # the candidate page and static files
    return app


async def _store_context(app: web.Application) -> AsyncIterator[None]:
    from server.venue.workspace import open_venue_store

    app[keys.STORE] = await open_venue_store(app[keys.SETTINGS].venue_dir)
    try:
        yield
    finally:
        await app[keys.STORE].close()
