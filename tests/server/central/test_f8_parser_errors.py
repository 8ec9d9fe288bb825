"""Issue 16, F8: errors from aiohttp's HTTP parser were `text/plain`. Served as the CLI serves
(`server.serving`), both servers answer a request the parser cannot read with a 400
problem+json and close the connection; a request that parses still reaches the app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from paperpack.authority import Authority
from server import serving
from server.central.app import create_app as create_central
from server.central.settings import CentralSettings
from server.clock import SettableClock
from tests.server.central.conftest import START

BROKEN = {
    "a method with a control character": b"GE\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "a header line of 9,000 bytes": b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: "
    + b"a" * 9000
    + b"\r\n\r\n",
    "a Content-Length that is not a number": (
        b"POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
    ),
    "a header without a colon": b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    "an HTTP version that does not exist": b"GET / HTTP/7.3\r\nHost: x\r\n\r\n",
    "a request line of 10,000 bytes": b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "a chunk size that is not hex": (
        b"POST /api/v1/staff/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ),
}


async def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer until the server closes the connection (a
    parser error closes it: the test would time out otherwise)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


@pytest.fixture
async def central_port(tmp_path: Path, authority: Authority) -> AsyncIterator[int]:
    settings = CentralSettings(directory=tmp_path, database=str(tmp_path / "c.db"))
    app = create_central(settings, clock=SettableClock(START), authority=authority)
    runner = await serving.start(app, "127.0.0.1", 0)
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("case", sorted(BROKEN))
async def test_f8_a_request_the_parser_refuses_is_problem_json(
    central_port: int, case: str
) -> None:
    status, headers, body = await exchange(central_port, BROKEN[case])
    assert status == 400, (case, body[:200])
    assert headers["content-type"].startswith("application/problem+json"), (case, headers)
    problem = json.loads(body)
    assert problem["type"].endswith("/bad-request") and problem["status"] == 400
    assert problem["detail"].startswith("the request is not valid HTTP")
    assert len(problem["detail"]) < 400 and "\n" not in problem["detail"]


async def test_f8_a_request_that_parses_still_reaches_the_app(central_port: int) -> None:
    """The same server answers a readable request from the app (here its 404 problem)."""
    raw = b"GET /no-such-page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, headers, body = await exchange(central_port, raw)
    assert status == 404 and headers["content-type"].startswith("application/problem+json")
    assert json.loads(body)["type"].endswith("/not-found")


async def test_f8_any_app_served_so_answers_the_same(tmp_path: Path) -> None:
    """Any app served by `server.serving` (`cbt venue serve`, `cbt demo`) gets the same
    answers: a parser error is problem+json, a readable request reaches the app."""

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = await serving.start(app, "127.0.0.1", 0)
    try:
        port = int(runner.addresses[0][1])
        status, headers, _ = await exchange(port, BROKEN["a method with a control character"])
        assert status == 400 and headers["content-type"].startswith("application/problem+json")
        ok = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert ok[0] == 200 and json.loads(ok[2]) == {"ok": True}
    finally:
        await runner.cleanup()
