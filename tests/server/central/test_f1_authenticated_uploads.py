"""Issue 16, F1: anyone could fill the centre's disk through the upload API and read any
receipt by its hash. Every upload call is now signed by the venue; the package's signed head is
checked before an upload exists; quotas bound what a venue holds open; stale uploads are swept;
a receipt is readable by its venue and central staff only."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from paperpack.authority import Authority
from server.central.app import create_app
from server.central.settings import CentralSettings
from server.central.storage import UnknownUpload
from server.central.venue_auth import sweep_stale
from server.clock import SettableClock, iso
from server.protocol.upload_auth import sign_upload_request
from server.venue.upload import Backoff, upload_package
from tests.server.central.conftest import START, Central, VenueKeys, make_package, new_venue

MiB = 1 << 20


async def refused(resp: Any, status: int, slug: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = await resp.json()
    assert body["type"].endswith("/" + slug) and body["status"] == status and body["detail"]
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("CBT-Venue")
    return body


async def nothing_held(central: Central) -> None:
    """No upload row and no byte on disk."""
    assert await central.storage.stale_uploads("9999") == []
    folder = Path(central.database + "-packages")
    assert not folder.exists() or list(folder.iterdir()) == []


async def upload(central: Central, data: bytes, authority: Authority) -> Any:
    async with aiohttp.ClientSession() as http:
        return await upload_package(
            http, central.url, data, authority.signing_public, **central.signer(data)
        )


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # HTTP, not the store
async def test_f1_an_anonymous_12_mib_upload_is_refused_and_nothing_is_stored(
    central: Central,
) -> None:
    """The tester's attack: create with only a registered venue id (printed on share cards),
    then PATCH 12 MiB whose checksum matches. Both are 401 problem+json; nothing is held."""
    await central.register(new_venue("V001"))
    junk = bytes(12 * MiB)
    digest = hashlib.sha256(junk).hexdigest()
    create = {"package_sha256": digest, "size": len(junk), "venue_id": "V001"}
    await refused(
        await central.client.post("/api/v1/uploads", json=create), 401, "venue-signature-required"
    )
    checksum = base64.b64encode(hashlib.sha256(junk).digest()).decode()
    headers = {"Upload-Offset": "0", "Upload-Checksum": "sha256 " + checksum}
    url = f"/api/v1/uploads/{digest}"
    resp = await central.client.patch(url, data=io.BytesIO(junk), headers=headers)
    await refused(resp, 401, "venue-signature-required")
    await nothing_held(central)


async def test_f1_a_receipt_is_readable_only_by_its_venue_and_central_staff(
    central: Central, authority: Authority
) -> None:
    """Knowing the hash is not enough: anonymous is 401, another venue 404 (as if there were
    no such upload); the venue itself and staff of either role read the receipt."""
    v1, v2 = new_venue("V1"), new_venue("V2")
    await central.register(v1)
    await central.register(v2)
    result = await upload(central, make_package(v1, authority), authority)
    path = f"/api/v1/uploads/{result.package_sha256}"
    await refused(await central.client.get(path), 401, "venue-signature-required")
    await refused(await central.call(v2, "GET", path), 404, "unknown-upload")
    assert (await central.call(v2, "HEAD", path)).status == 404
    await refused(await central.call(v2, "POST", path + "/finish"), 404, "unknown-upload")
    resp = await central.call(v1, "GET", path)
    assert resp.status == 200 and (await resp.json())["receipt"] == result.receipt
    for login, role in (("op", "operator"), ("aud", "auditor")):
        resp = await central.client.get(path, headers=await central.as_staff(login, role))
        assert resp.status == 200 and (await resp.json())["receipt"] == result.receipt


async def test_f1_every_upload_route_refuses_unsigned_and_badly_signed_calls(
    central: Central, authority: Authority
) -> None:
    """Each upload route answers an unsigned call 401; so does a signature by another key,
    one for another request, one with another venue's id and one made too long ago."""
    v1, v2 = new_venue("V1"), new_venue("V2")
    await central.register(v1)
    await central.register(v2)
    data = make_package(v1, authority)
    digest = hashlib.sha256(data).hexdigest()
    assert (await central.create(v1, data)).status == 201
    path = f"/api/v1/uploads/{digest}"
    routes = {
        (route.method, route.resource.canonical.replace("{upload_id}", digest))
        for route in central.app.router.routes()
        if route.resource and route.resource.canonical.startswith("/api/v1/uploads")
    }
    assert routes == {("POST", "/api/v1/uploads"), ("GET", path), ("HEAD", path),
                      ("PATCH", path), ("POST", path + "/finish")}  # fmt: skip
    for method, url in sorted(routes):
        resp = await central.client.request(method, url)
        assert resp.status == 401, (method, url)
        assert resp.headers["WWW-Authenticate"].startswith("CBT-Venue")
        if method != "HEAD":
            await refused(resp, 401, "venue-signature-required")

    now = iso(central.clock.now())
    forged = sign_upload_request(v2.signing, "V1", "GET", path, now)  # V2's key, V1's name
    other_path = central.signed(v1, "GET", path + "/finish")  # signed for another request
    stale = sign_upload_request(
        v1.signing, "V1", "GET", path, iso(central.clock.now() - timedelta(minutes=6))
    )
    for authorization in (forged, other_path["Authorization"], stale, "Bearer x", "CBT-Venue x"):
        resp = await central.client.get(path, headers={"Authorization": authorization})
        await refused(resp, 401, "venue-signature-required")
    # A chunk whose bytes differ from the checksum the venue signed is refused before storing.
    chunk = data[:100]
    headers = {
        **central.signed(v1, "PATCH", path, hashlib.sha256(b"other").hexdigest(), "0"),
        "Upload-Offset": "0",
        "Upload-Checksum": "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode(),
    }
    await refused(
        await central.client.patch(path, data=chunk, headers=headers),
        401, "venue-signature-required",
    )  # fmt: skip
    assert (await central.storage.get_upload(digest)).offset == 0


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # HTTP, not the store
async def test_f1_the_signed_head_is_checked_before_an_upload_exists(
    central: Central, authority: Authority
) -> None:
    """A head signed by another key, a head altered after signing, a head of another venue
    and a size the head does not give are refused at create; no upload, no byte."""
    v1, v2 = new_venue("V1"), new_venue("V2")
    await central.register(v1)
    await central.register(v2)
    data = make_package(v1, authority)
    digest = hashlib.sha256(data).hexdigest()
    by_other_key = make_package(VenueKeys("V1", v2.signing, v2.wrapping), authority)
    await refused(await central.create(v1, by_other_key), 422, "package-signer-unknown")
    at = data.index(b'"session_id":"S1"')  # the header names another session: still JSON
    altered = data[:at] + b'"session_id":"S2"' + data[at + 17 :]
    head = base64.b64encode(altered[:2000]).decode()
    await refused(await central.create(v1, data, head=head), 422, "package-tampered")
    await refused(await central.create(v2, data, venue_id="V2"), 422, "package-signer-unknown")
    # V2 signs a package naming V1 and sends it as its own: the head names another venue.
    await refused(await central.create(v2, by_other_key, venue_id="V2"), 422, "package-malformed")
    await refused(await central.create(v1, data, size=2 << 30), 422, "size-mismatch")
    await refused(await central.create(v1, data, venue_id="V2"), 403, "wrong-venue")
    with pytest.raises(UnknownUpload):
        await central.storage.get_upload(digest)
    await nothing_held(central)


async def test_f1_quotas_bound_what_one_venue_holds_open(
    aiohttp_client: Any, database: str, tmp_path: Path, authority: Authority
) -> None:
    """Past `max_open_uploads` or `max_open_upload_bytes` a create is 429 problem+json; other
    venues are not affected; a finished upload frees its place."""
    v1, v2, v3 = new_venue("V1"), new_venue("V2"), new_venue("V3")
    small = [make_package(v1, authority, session_id=f"S{n}", seed=n, candidates=1)
             for n in range(3)]  # fmt: skip
    large = [make_package(v3, authority, session_id=f"S{n}", seed=n, candidates=60)
             for n in range(2)]  # fmt: skip
    assert 2 * len(small[0]) < len(large[0])
    settings = CentralSettings(
        directory=tmp_path, database=database, log_requests=False, pg_pool_size=2,
        max_open_uploads=2, max_open_upload_bytes=len(large[0]) + 10,
    )  # fmt: skip
    clock = SettableClock(START)
    client = await aiohttp_client(create_app(settings, clock=clock, authority=authority))
    central = Central(client, clock, database)
    for venue in (v1, v2, v3):
        await central.register(venue)
    for data in small[:2]:
        assert (await central.create(v1, data)).status == 201
    body = await refused(await central.create(v1, small[2]), 429, "upload-quota-exceeded")
    assert "2 unfinished uploads" in body["detail"]
    assert (await central.create(v1, small[0])).status in (200, 201)  # the same: no new claim
    assert (await central.create(v2, make_package(v2, authority, candidates=1))).status == 201
    await upload(central, small[0], authority)  # finished: its place is free
    assert (await central.create(v1, small[2])).status == 201
    assert (await central.create(v3, large[0])).status == 201
    body = await refused(await central.create(v3, large[1]), 429, "upload-quota-exceeded")
    assert "bytes" in body["detail"]


async def test_f1_stale_uploads_are_swept_and_the_venue_starts_again(
    central: Central, authority: Authority
) -> None:
    """An upload left without chunks for `upload_stale_s` is dropped (row and bytes); its
    venue's uploader gets 404 and sends it again from the start."""
    venue = new_venue("V1")
    await central.register(venue)
    data = make_package(venue, authority, candidates=30)
    digest = hashlib.sha256(data).hexdigest()
    assert (await central.create(venue, data)).status == 201
    assert (await central.patch(venue, digest, data[:1000], 0)).status == 204
    assert await sweep_stale(central.app, central.clock.now()) == 0  # fresh: kept
    central.clock.advance(days=2)
    assert await sweep_stale(central.app, central.clock.now()) == 1
    assert (await central.call(venue, "HEAD", f"/api/v1/uploads/{digest}")).status == 404
    await nothing_held(central)
    async with aiohttp.ClientSession() as http:
        result = await upload_package(
            http, central.url, data, authority.signing_public, **central.signer(data),
            backoff=Backoff(first_s=0.01, attempts=5),
        )  # fmt: skip
    assert await central.storage.package_data(result.package_sha256) == data
