"""Errors the servers and `cbt` raise on bad input or refused actions.

`CbtError` is what the CLI turns into one line. `DomainError` is a refusal by the domain
code (a function that takes a database, a clock or a parsed body, never a request): it carries
a stable slug (the problem `type`), a detail that says what to do, and optional extra fields.
Its subclass says which kind of refusal it is; the HTTP edge (`server.problems`) keeps the
one mapping from kind to HTTP status and turns the error into problem+json, so nothing here
knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class CbtError(Exception):
    """Base of the server side's own errors. The message says what is wrong and what to do."""


class DomainError(CbtError):
    """A refusal with a stable slug and a detail that says what to do."""

    def __init__(self, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.extra = extra


class Malformed(DomainError):
    """The input cannot be read at all (not JSON, not the expected shape)."""


class Unauthenticated(DomainError):
    """Who is asking is unknown: no login, a login that failed or has ended."""


class Forbidden(DomainError):
    """Who is asking is known but may not do this (role, CSRF, the rules of entry)."""


class NotFound(DomainError):
    """The thing named does not exist."""


class Conflict(DomainError):
    """The state of things does not allow this now (closed, already open, outside a window)."""


class TooLarge(DomainError):
    """The input is larger than allowed."""


class Invalid(DomainError):
    """The input is readable but breaks a rule about its content (a field, an answer)."""


class RateLimited(DomainError):
    """Too many tries in a short time; wait before trying again."""


class Unreachable(DomainError):
    """Another server this one depends on (the centre) could not be reached or answered badly."""
