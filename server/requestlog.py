"""The one-line-per-request log both servers write: method, path (never the query string),
status and milliseconds. Never bodies, tokens, answers or ID numbers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from server.problems import Handler


def request_log_middleware(
    log: logging.Logger, enabled: Callable[[web.Application], bool]
) -> Middleware:
    """A middleware logging each request to `log` when `enabled(app)` says so."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        began = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if enabled(request.app):
                log.info(
                    "request method=%s path=%s status=%d ms=%.1f",
                    request.method,
                    request.path,
                    status,
                    (time.perf_counter() - began) * 1000,
                )

    return middleware
