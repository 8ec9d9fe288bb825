"""The one middleware: typed domain errors and the edge's `Problem` become problem+json."""

from __future__ import annotations

import errno
import sqlite3
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from server import errors
from server.problems import PROBLEM_TYPE_BASE, STATUS_OF, Problem, problem_middleware


def app_raising(error: Exception) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/refuse", handler)
    return app


@pytest.mark.parametrize("kind", sorted(STATUS_OF, key=lambda k: STATUS_OF[k]), ids=repr)
async def test_a_domain_error_is_answered_with_its_kinds_status_slug_and_detail(
    kind: type[errors.DomainError], aiohttp_client: Any
) -> None:
    """A handler that lets a domain error through answers problem+json with the status of
    its kind, its slug as the type, its detail and its extra fields."""
    client = await aiohttp_client(app_raising(kind("some-refusal", "what to do", offset=7)))
    resp = await client.get("/refuse")
    assert resp.status == STATUS_OF[kind]
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["type"] == PROBLEM_TYPE_BASE + "some-refusal"
    assert body["status"] == STATUS_OF[kind] and body["title"]
    assert body["detail"] == "what to do" and body["offset"] == 7


async def test_the_edges_problem_keeps_its_own_status(aiohttp_client: Any) -> None:
    """A `Problem` raised by the edge (request parsing, authentication) keeps its status."""
    client = await aiohttp_client(app_raising(Problem(401, "not-logged-in", "log in first")))
    resp = await client.get("/refuse")
    assert resp.status == 401
    assert (await resp.json())["type"] == PROBLEM_TYPE_BASE + "not-logged-in"


async def test_an_unexpected_error_is_a_500_without_its_message(aiohttp_client: Any) -> None:
    """Anything else is logged and answered 500 internal-error; its text never reaches the
    client."""
    client = await aiohttp_client(app_raising(RuntimeError("secret detail")))
    resp = await client.get("/refuse")
    assert resp.status == 500
    text = await resp.text()
    assert "internal-error" in text and "secret detail" not in text


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("database or disk is full"),
        OSError(errno.ENOSPC, "No space left on device"),
        asyncpg.exceptions.DiskFullError("could not extend file"),
    ],
    ids=["sqlite", "oserror", "postgresql"],
)
async def test_f6_a_full_disk_anywhere_is_a_503_storage_full(
    error: Exception, aiohttp_client: Any
) -> None:
    """Issue 16, F6: whatever met the full disk (SQLite, a file write, PostgreSQL), also as
    the cause of another error, the answer is 503 storage-full with Retry-After, not 500.
    (The real full disk: tests/server/venue/test_f6_full_disk.py.)"""
    wrapped = RuntimeError("while saving")
    wrapped.__cause__ = error
    for raised in (error, wrapped):
        assert errors.is_storage_full(raised)
        client = await aiohttp_client(app_raising(raised))
        resp = await client.get("/refuse")
        assert resp.status == 503 and resp.content_type == "application/problem+json"
        body = await resp.json()
        assert body["type"] == PROBLEM_TYPE_BASE + "storage-full"
        assert resp.headers["Retry-After"] == str(body["retry_after_s"])
    assert not errors.is_storage_full(OSError(errno.EACCES, "Permission denied"))
    assert not errors.is_storage_full(sqlite3.OperationalError("database is locked"))
