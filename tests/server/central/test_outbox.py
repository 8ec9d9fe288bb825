"""The outbox worker: once a session has ended it is exported and uploaded, without a hand."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from paperpack.authority import Authority
from server.central.storage import VenueRecord
from server.clock import iso
from server.venue.export import (
    central_wrap_key,
    export_and_upload_worker,
    outbox_context,
    sessions_to_export,
)
from server.venue.upload import pending, receipt_path
from server.venue.workspace import init_venue, open_venue_db
from tests.server.central.conftest import START, Central
from tests.server.central.test_venue_to_centre import sit_session


async def ended_venue(central: Central, tmp_path: Path) -> Path:
    """A venue registered at `central` whose session S1 has ended, nothing exported yet."""
    venue_dir = tmp_path / "venue"
    venue = init_venue(venue_dir, "V1", now=START)
    await central.storage.add_venue(
        VenueRecord("V1", "V1", venue.sign_public, venue.wrap_public, iso(START))
    )
    db = open_venue_db(venue_dir)
    sit_session(db)
    db.close()
    return venue_dir


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the worker, not the store
async def test_an_ended_session_goes_home_by_itself(
    central: Central, authority: Authority, authority_dir: Path, tmp_path: Path
) -> None:
    """The worker exports the ended session once, uploads it and keeps the verified receipt."""
    venue_dir = await ended_venue(central, tmp_path)
    central_wrap_key(venue_dir, authority_dir / "upload.pub")  # pinned once, as at set-up
    assert sessions_to_export(venue_dir) == ["S1"]

    worker = asyncio.create_task(
        export_and_upload_worker(
            venue_dir, central.url, authority.signing_public, idle_s=0.05, clock=central.clock
        )
    )
    try:
        for _ in range(400):
            packages = await central.storage.list_packages()
            if packages and not pending(venue_dir):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # a few more rounds: nothing may be exported twice
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    assert [p.session_id for p in await central.storage.list_packages()] == ["S1"]
    assert sessions_to_export(venue_dir) == []
    (package,) = (venue_dir / "outbox").glob("*.cbtresp")
    assert receipt_path(package).exists()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the worker, not the store
async def test_a_venue_app_with_the_outbox_context_sends_ended_sessions(
    central: Central, authority_dir: Path, tmp_path: Path, aiohttp_client: Any
) -> None:
    """An app carrying outbox_context uploads an ended session while it runs."""
    venue_dir = await ended_venue(central, tmp_path)
    central_wrap_key(venue_dir, authority_dir / "upload.pub")
    shutil.copyfile(authority_dir / "signing.pub", venue_dir / "keys" / "authority-sign.pub")
    app = web.Application()
    app.cleanup_ctx.append(outbox_context(venue_dir, central.url, central.clock))
    await aiohttp_client(app)
    for _ in range(400):
        if await central.storage.list_packages():
            break
        await asyncio.sleep(0.05)
    assert [p.session_id for p in await central.storage.list_packages()] == ["S1"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the worker, not the store
async def test_keys_pinned_while_the_server_runs_are_used_at_the_next_round(
    central: Central, authority_dir: Path, tmp_path: Path, aiohttp_client: Any
) -> None:
    """Issue 14, point 3: the server starts before the centre's keys are pinned (no package
    imported yet); once they are, the ended session goes home without a restart or a hand."""
    from server.venue import export as venue_export

    venue_dir = await ended_venue(central, tmp_path)

    async def worker(app: web.Application) -> Any:
        task = asyncio.create_task(
            venue_export.export_and_upload_worker(
                venue_dir, central.url, idle_s=0.05, clock=central.clock
            )
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = web.Application()
    app.cleanup_ctx.append(worker)
    await aiohttp_client(app)
    await asyncio.sleep(0.3)
    assert await central.storage.list_packages() == []  # nothing to seal to yet
    central_wrap_key(venue_dir, authority_dir / "upload.pub")  # what the import pins
    shutil.copyfile(authority_dir / "signing.pub", venue_dir / "keys" / "authority-sign.pub")
    for _ in range(400):
        if await central.storage.list_packages():
            break
        await asyncio.sleep(0.05)
    assert [p.session_id for p in await central.storage.list_packages()] == ["S1"]
