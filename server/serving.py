"""Serving an app so that even aiohttp's own HTTP-level errors are problem+json (issue 16, F8).

A request aiohttp's HTTP parser cannot read (a bad request line or method, a header line past
8190 bytes, a malformed header, a bad `Content-Length` or chunk size, a broken URL) never
reaches the app, so no middleware sees it: aiohttp answers it from its connection handler,
`RequestHandler.handle_error`, as `text/plain`. The same method answers a handler that fails
outside every middleware with a 500. `ProblemRequestHandler` overrides that one method: the
same status, logged as before, but with an RFC 9457 body (`bad-request`, the parser's first
line as the detail; `internal-error` for a 500) and the connection closed as aiohttp does.
aiohttp has no setting to choose the handler class, so `ProblemAppRunner` makes the server's
connections of that class; `run` and `start` serve with it (`cbt venue serve`, `cbt central
serve` and `cbt demo`).

What no server can answer as problem+json, and is therefore not: a failure after the
response's first bytes were sent (aiohttp closes the connection, there is nowhere to write),
a client that sends nothing HTTP at all and hangs up, and errors of the TLS layer in front.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

from aiohttp import web, web_protocol, web_request, web_server

from server.problems import problem_response

MAX_DETAIL = 300  # characters of the parser's message kept (it may quote what was sent)


class ProblemRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering its own errors as problem+json."""

    def handle_error(
        self,
        request: web_request.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if already sent
        if status >= 500:
            response = problem_response(
                status, "internal-error", "The server hit an unexpected error; it has been logged."
            )
        else:
            first = (message or HTTPStatus(status).phrase).strip().splitlines()[0]
            detail = f"the request is not valid HTTP: {first[:MAX_DETAIL]}"
            slug = "bad-request" if status == 400 else "http-error"
            response = problem_response(status, slug, detail)
        response.force_close()
        return response


class ProblemServer(web_server.Server):
    """A server whose connections are `ProblemRequestHandler`s."""

    def __call__(self) -> web_protocol.RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """`web.AppRunner` whose server answers parser errors as problem+json."""

    async def _make_server(self) -> web_server.Server:
        server = await super()._make_server()
        server.__class__ = ProblemServer  # the same server; only how it makes connections
        return server


async def start(app: web.Application, host: str, port: int, **site: Any) -> web.AppRunner:
    """Set `app` up on host:port (`site`: TCPSite options such as `backlog`); the runner,
    to `cleanup()` when done. OSError when the port is taken."""
    runner = ProblemAppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, **site).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner


def run(app: web.Application, host: str, port: int, **site: Any) -> None:
    """Serve `app` until SIGINT or SIGTERM (what `web.run_app` does, with problem+json for
    aiohttp's own errors); then shut down cleanly (cleanup contexts run)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runner: web.AppRunner | None = None
    try:
        runner = loop.run_until_complete(start(app, host, port, **site))
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if runner is not None:
            loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
