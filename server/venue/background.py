"""Jobs the venue server starts without awaiting them, and waiting for them on shutdown.

A handler that must not hold its reply back for a write (the first serving of a paper) or a
slow job (rendering every variant after an unlock) hands it to `run_in_background`. The task
set lives on the app (`server.venue.live.LiveState.tasks`): the app keeps a reference to each
job until it is done, logs a failure instead of losing it, and `background_context` lets the
jobs still running finish before the store closes. Starting and draining share that one set,
so they live together here and the app module only wires the context in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from aiohttp import web

from server.venue import keys

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S = 30  # how long shutdown waits for queued writes before the store closes


def run_in_background(app: web.Application, job: Awaitable[Any]) -> None:
    """Run `job` without awaiting it; the app keeps a reference until it is done and logs
    a failure instead of losing it."""
    tasks = app[keys.LIVE].tasks
    task = asyncio.ensure_future(job)
    tasks.add(task)

    def done(finished: asyncio.Future[Any]) -> None:
        tasks.discard(finished)  # type: ignore[arg-type]
        if not finished.cancelled() and finished.exception() is not None:
            log.error("background.failed error=%s", type(finished.exception()).__name__)

    task.add_done_callback(done)


async def background_context(app: web.Application) -> AsyncIterator[None]:
    """On shutdown, let jobs started without awaiting (queued writes) finish first."""
    yield
    tasks = list(app[keys.LIVE].tasks)
    if tasks:
        await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_S)


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel a long-running loop (the closer, the alive mark, the outbox, the backup) and
    wait until it has really stopped, so what runs after it sees no half-done step."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
