"""Errors the servers and `cbt` raise on bad input or refused actions.

`CbtError` is what the CLI turns into one line. `DomainError` is a refusal by the domain
code (a function that takes a database, a clock or a parsed body, never a request): it carries
a stable slug (the problem `type`), a detail that says what to do, and optional extra fields.
Its subclass says which kind of refusal it is; the HTTP edge (`server.problems`) keeps the
one mapping from kind to HTTP status and turns the error into problem+json, so nothing here
knows about HTTP.
"""

from __future__ import annotations

import errno
import sqlite3
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


class StorageFull(DomainError):
    """The server's disk is full: nothing was stored; the same request succeeds once there is
    space again (issue 16, F6). `storage_full()` makes the one refusal of this kind."""


STORAGE_RETRY_AFTER_S = 15


def storage_full() -> StorageFull:
    """The refusal for a request that met a full disk: 503 `storage-full` with Retry-After."""
    return StorageFull(
        "storage-full",
        "the server's disk is full: nothing was stored; try again shortly (staff: free disk "
        "space on the venue server)",
        retry_after_s=STORAGE_RETRY_AFTER_S,
    )


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL = 13  # the primary result code of "database or disk is full"
PG_DISK_FULL = "53100"  # PostgreSQL's disk_full SQLSTATE


def is_storage_full(error: BaseException) -> bool:
    """Whether `error` says the disk (or quota) is full: SQLite's SQLITE_FULL, an OSError with
    ENOSPC/EDQUOT or PostgreSQL's disk_full, also when it is the cause of another error."""
    seen: BaseException | None = error
    for _ in range(5):  # the error and a few of its causes
        if seen is None:
            return False
        if isinstance(seen, StorageFull):
            return True
        if isinstance(seen, sqlite3.Error) and (
            getattr(seen, "sqlite_errorcode", 0) & 0xFF == SQLITE_FULL
            or "database or disk is full" in str(seen)
        ):
            return True
        if isinstance(seen, OSError) and seen.errno in _FULL_ERRNOS:
            return True
        if getattr(seen, "sqlstate", None) == PG_DISK_FULL:  # asyncpg's DiskFullError
            return True
        seen = seen.__cause__ or seen.__context__
    return False
