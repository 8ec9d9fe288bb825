"""The online time release: the venue asks the real central server, signed with its own key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paperpack.authority import load_authority
from server.central.app import create_app as create_central_app
from server.central.keys import STORAGE
from server.central.settings import CentralSettings
from server.central.storage import VenueRecord
from server.clock import SettableClock, iso
from server.venue.workspace import load_venue
from tests.server.conftest import IN_WINDOW, SESSION_ID, VenueTemplate, start_venue


async def central_server(template: VenueTemplate, tmp_path: Path, aiohttp_client: Any) -> Any:
    settings = CentralSettings(directory=tmp_path / "central", log_requests=False)
    settings.directory.mkdir()
    app = create_central_app(
        settings, clock=SettableClock(IN_WINDOW), authority=load_authority(template.authority_dir)
    )
    return await aiohttp_client(app)


async def test_release_is_fetched_from_the_central_server(
    venue_template: VenueTemplate, tmp_path: Path, aiohttp_client: Any
) -> None:
    """With central_url set, an empty release request fetches, unwraps and applies it."""
    central = await central_server(venue_template, tmp_path, aiohttp_client)
    url = str(central.make_url("")).rstrip("/")
    kit = await start_venue(venue_template, tmp_path, aiohttp_client, central_url=url)
    venue = load_venue(kit.directory)
    await central.server.app[STORAGE].add_venue(
        VenueRecord(
            venue.venue_id, venue.name, venue.sign_public, venue.wrap_public, iso(IN_WINDOW)
        )
    )
    await kit.import_package()
    admin = await kit.as_staff("admin")
    resp = await kit.client.post(
        "/api/v1/staff/ceremony", json={"session_id": SESSION_ID}, headers=admin
    )
    assert resp.status == 201
    for login, holder in (("chief", 2), ("inv2", 3)):
        resp = await kit.client.post(
            "/api/v1/staff/ceremony/shares",
            json={"share": venue_template.cards[holder]},
            headers=await kit.as_staff(login),
        )
        assert resp.status == 200
    resp = await kit.client.post("/api/v1/staff/ceremony/release", json={}, headers=admin)
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["status"], body["release"]) == ("unlocked", "online")


async def test_unreachable_central_server_says_to_use_the_code(
    venue_template: VenueTemplate, tmp_path: Path, aiohttp_client: Any
) -> None:
    """When the central server cannot be reached the reply says to ask for the code by phone."""
    kit = await start_venue(
        venue_template,
        tmp_path,
        aiohttp_client,
        central_url="http://127.0.0.1:9",
        central_timeout_s=2,
    )
    await kit.import_package()
    admin = await kit.as_staff("admin")
    await kit.client.post("/api/v1/staff/ceremony", json={"session_id": SESSION_ID}, headers=admin)
    resp = await kit.client.post("/api/v1/staff/ceremony/release", json={}, headers=admin)
    assert resp.status == 502
    assert "by phone" in (await resp.json())["detail"]
