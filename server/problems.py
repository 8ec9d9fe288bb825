"""RFC 9457 problem details: the one error shape of every HTTP API here (venue and centre).

Domain code raises typed errors with a slug (`server.errors.DomainError` and its kinds:
`Conflict`, `Invalid`, `NotFound`, ...); one middleware, `problem_middleware`, turns them
into `application/problem+json` with `type`, `title`, `status` and `detail`. The mapping from
kind to HTTP status (`STATUS_OF`) lives here, at the edge, and nowhere else. The edge's own
code (request parsing in `server.http`, authentication of a request) may raise `Problem`,
which already names its status. aiohttp's own HTTP errors (404, 405, 413) and any unexpected
exception become problem+json too, never a traceback. A test walks the error paths and checks
the shape; another checks that nothing below a handler raises `Problem` or imports aiohttp's
exceptions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from server.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    Malformed,
    NotFound,
    RateLimited,
    StorageFull,
    TooLarge,
    Unauthenticated,
    Unreachable,
    is_storage_full,
    storage_full,
)

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://cbt.invalid/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

# Each kind of domain error and the HTTP status it is answered with.
STATUS_OF: dict[type[DomainError], int] = {
    Malformed: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Invalid: 422,
    RateLimited: 429,
    Unreachable: 502,
    StorageFull: 503,
}


class Problem(Exception):
    """An HTTP error raised by the edge itself, with its status, a stable slug (the `type`)
    and a detail that says what to do."""

    def __init__(self, status: int, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.extra = extra

    def to_response(self) -> web.Response:
        return problem_response(self.status, self.slug, self.detail, **self.extra)


def status_of(error: DomainError) -> int:
    """The HTTP status of a domain error: its nearest kind in `STATUS_OF` (500 if none)."""
    for kind in type(error).__mro__:
        status = STATUS_OF.get(kind)  # type: ignore[call-overload]  # mro holds any class
        if status is not None:
            return status
    return 500


def as_problem(error: Problem | DomainError) -> Problem:
    """The edge's view of a refusal: a `Problem` as it is, a domain error with its status."""
    if isinstance(error, Problem):
        return error
    return Problem(status_of(error), error.slug, error.detail, **error.extra)


def problem_response(status: int, slug: str, detail: str, **extra: Any) -> web.Response:
    body = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = web.json_response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
    retry_after = extra.get("retry_after_s")
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        # Every 429 and 503 says when to come back (RFC 9110 section 10.2.3), in whole seconds.
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into problem+json; never leak a traceback to a client."""
    try:
        return await handler(request)
    except (Problem, DomainError) as refusal:
        return as_problem(refusal).to_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(
            exc.status, "http-error"
        )
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        response = problem_response(exc.status, slug, detail or HTTPStatus(exc.status).phrase)
        if "Allow" in exc.headers:  # a 405 says which methods the resource has (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        if is_storage_full(exc):  # a full disk wherever it was met: a clean, retryable 503
            log.warning("request.storage_full method=%s path=%s", request.method, request.path)
            return as_problem(storage_full()).to_response()
        log.exception("request.failed method=%s path=%s", request.method, request.path)
        return problem_response(
            500, "internal-error", "The server hit an unexpected error; it has been logged."
        )
