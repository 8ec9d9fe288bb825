"""RFC 9457 problem details: the one error shape of every HTTP API here.

Domain code raises `Problem(status, slug, detail)`; `problem_middleware` turns it (and
aiohttp's own HTTP errors, and any unexpected exception) into `application/problem+json`
with `type`, `title`, `status` and `detail`. A test walks the error paths and checks the shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://cbt.invalid/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """An HTTP error with a stable slug (the `type`) and a detail that says what to do."""

    def __init__(self, status: int, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.extra = extra

    def to_response(self) -> web.Response:
        return problem_response(self.status, self.slug, self.detail, **self.extra)


def problem_response(status: int, slug: str, detail: str, **extra: Any) -> web.Response:
    body = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return web.json_response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into problem+json; never leak a traceback to a client."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem.to_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(
            exc.status, "http-error"
        )
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        return problem_response(exc.status, slug, detail or HTTPStatus(exc.status).phrase)
    except Exception:
        log.exception("request.failed method=%s path=%s", request.method, request.path)
        return problem_response(
            500, "internal-error", "The server hit an unexpected error; it has been logged."
        )
