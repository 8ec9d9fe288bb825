"""Uploads end to end on both stores: receipts, idempotency, refusals with reasons."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import aiohttp
import pytest

from paperpack.authority import Authority
from server.protocol.audit_chain import LEGACY_CENTRAL_FORMAT, verify_audit_records
from server.protocol.receipts import ReceiptInvalid, verify_receipt
from server.protocol.response_package import open_response_package
from server.venue.upload import Backoff, UploadRefused, upload_package
from tests.server.central.conftest import Central, make_package, new_venue, sample_contents


async def upload(central: Central, data: bytes, authority: Authority, **options: Any) -> Any:
    async with aiohttp.ClientSession() as http:
        return await upload_package(
            http, central.url, data, authority.signing_public, **central.signer(data), **options
        )


async def assert_problem(resp: Any, status: int, slug: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = await resp.json(content_type=None)
    assert body["type"].endswith("/" + slug)
    assert body["status"] == status and body["title"] and body["detail"]
    return body


async def test_centre_decrypts_exactly_the_venues_final_answers(
    central: Central, authority: Authority
) -> None:
    """A venue uploads, the receipt verifies, the centre reads back exactly its final answers."""
    venue = new_venue("V1")
    await central.register(venue)
    contents = sample_contents("S1", "V1", 30)
    data = make_package(venue, authority, contents=contents)
    result = await upload(central, data, authority, chunk_size=4096)
    fields = verify_receipt(
        result.receipt, authority.signing_public, hashlib.sha256(data).hexdigest()
    )
    assert fields["log_position"] == 1 and fields["session_id"] == "S1"
    stored = await central.storage.package_data(result.package_sha256)
    assert stored == data
    opened = open_response_package(stored, venue.signing.public_key(), authority.wrapping_key)
    finals = {a["ticket"]: a["final_answers"] for a in opened.contents["attempts"]}
    assert finals == {a["ticket"]: a["final_answers"] for a in contents["attempts"]}


async def test_uploading_the_same_package_again_returns_the_same_receipt(
    central: Central, authority: Authority
) -> None:
    """A second upload of the same bytes gets the first receipt and stores no second copy."""
    venue = new_venue("V1")
    await central.register(venue)
    data = make_package(venue, authority)
    first = await upload(central, data, authority)
    second = await upload(central, data, authority)
    assert first.receipt == second.receipt
    assert len(await central.storage.list_packages()) == 1


async def test_receipts_chain_into_one_log(central: Central, authority: Authority) -> None:
    """Each accepted package takes the next log position and its root follows from the last."""
    roots = []
    for n in range(3):
        venue = new_venue(f"V{n}")
        await central.register(venue)
        result = await upload(central, make_package(venue, authority), authority)
        roots.append(
            (
                result.fields["log_position"],
                result.fields["log_previous_root"],
                result.fields["log_root"],
            )
        )
    assert [r[0] for r in roots] == [1, 2, 3]
    assert roots[1][1] == roots[0][2] and roots[2][1] == roots[1][2]
    assert (
        verify_audit_records(await central.storage.audit_events(), "seq", LEGACY_CENTRAL_FORMAT)
        == 3
    )


async def test_a_flipped_byte_is_refused_as_tampered(
    central: Central, authority: Authority
) -> None:
    """A package with one byte flipped in its payload is refused, naming the tampering."""
    venue = new_venue("V1")
    await central.register(venue)
    data = bytearray(make_package(venue, authority))
    data[-10] ^= 0x01
    with pytest.raises(UploadRefused, match="package-tampered"):
        await upload(central, bytes(data), authority)
    assert await central.storage.list_packages() == []


async def test_a_package_signed_by_another_venues_key_is_refused(
    central: Central, authority: Authority
) -> None:
    """A package claiming venue V1 but signed by V2's key is refused as another key's."""
    v1, v2 = new_venue("V1"), new_venue("V2")
    await central.register(v1)
    await central.register(v2)
    forged = make_package(type(v1)("V1", v2.signing, v2.wrapping), authority)
    with pytest.raises(UploadRefused, match="another venue's key"):
        await upload(central, forged, authority)


async def test_a_replayed_older_export_is_refused(central: Central, authority: Authority) -> None:
    """After export 2 is accepted, export 1 of the same session and venue is refused as a replay."""
    venue = new_venue("V1")
    await central.register(venue)
    older = make_package(venue, authority, export_seq=1)
    newer = make_package(venue, authority, export_seq=2, seed=1)
    await upload(central, newer, authority)
    with pytest.raises(UploadRefused, match="package-replayed"):
        await upload(central, older, authority)
    assert len(await central.storage.list_packages()) == 1


async def test_an_unregistered_venue_cannot_start_an_upload(
    central: Central, authority: Authority
) -> None:
    """Creating an upload signed by a venue not in the registry is 403 problem+json."""
    venue = new_venue("V9")
    resp = await central.create(venue, make_package(venue, authority))
    await assert_problem(resp, 403, "unknown-venue")


async def test_chunks_at_the_wrong_offset_or_with_a_bad_checksum_change_nothing(
    central: Central, authority: Authority
) -> None:
    """A chunk at a stale offset gets 409 with the offset, a bad checksum 400; the offset stays."""
    venue = new_venue("V1")
    await central.register(venue)
    data = make_package(venue, authority, candidates=50)
    digest = hashlib.sha256(data).hexdigest()
    resp = await central.create(venue, data)
    assert resp.status == 201, await resp.text()
    resp = await central.patch(venue, digest, data[:100], 0)
    assert resp.status == 204 and resp.headers["Upload-Offset"] == "100"
    resp = await central.patch(venue, digest, data[:100], 0)
    assert (await assert_problem(resp, 409, "offset-mismatch"))["offset"] == 100
    path = f"/api/v1/uploads/{digest}"
    checksum = hashlib.sha256(data[100:200]).digest()
    bad = {
        **central.signed(venue, "PATCH", path, checksum.hex(), "100"),
        "Upload-Offset": "100",
        "Upload-Checksum": "sha256 " + base64.b64encode(checksum).decode(),
    }
    resp = await central.client.patch(path, data=data[101:201], headers=bad)
    await assert_problem(resp, 400, "checksum-mismatch")
    # An offset past any package (and past PostgreSQL's bigint) is refused, not a 500.
    for offset in (2**31 + 1, 2**63, 10**30):
        resp = await central.patch(venue, digest, data[100:200], offset)
        await assert_problem(resp, 400, "bad-chunk")
    resp = await central.call(venue, "HEAD", path)
    assert resp.headers["Upload-Offset"] == "100"
    assert resp.headers["Upload-Length"] == str(len(data))
    resp = await central.call(venue, "POST", path + "/finish")
    await assert_problem(resp, 409, "upload-incomplete")


async def test_a_receipt_signed_by_another_key_does_not_verify(
    central: Central, authority: Authority
) -> None:
    """verify_receipt refuses a receipt under another key, and one for another package."""
    venue = new_venue("V1")
    await central.register(venue)
    result = await upload(central, make_package(venue, authority), authority)
    with pytest.raises(ReceiptInvalid, match="does not verify"):
        verify_receipt(result.receipt, new_venue("X").signing.public_key())
    with pytest.raises(ReceiptInvalid, match="another package"):
        verify_receipt(result.receipt, authority.signing_public, "0" * 64)


async def test_unknown_upload_is_a_404_problem(central: Central) -> None:
    """Asking for an upload that was never created gives 404 problem+json."""
    venue = new_venue("V1")
    await central.register(venue)
    resp = await central.call(venue, "GET", "/api/v1/uploads/" + "a" * 64)
    await assert_problem(resp, 404, "unknown-upload")


async def test_status_counts_uploads_per_session_and_venue(
    central: Central, authority: Authority
) -> None:
    """The status page (JSON and HTML) shows the uploaded session and venue with its counts."""
    venue = new_venue("V1")
    await central.register(venue)
    await upload(
        central,
        make_package(venue, authority, candidates=7),
        authority,
        backoff=Backoff(attempts=2),
    )
    operator = await central.as_staff()
    status = await (await central.client.get("/api/v1/status", headers=operator)).json()
    (row,) = status["sessions"]
    assert (row["session_id"], row["venue_id"], row["attempts"], row["submitted"]) == (
        "S1",
        "V1",
        7,
        7,
    )
    assert row["uploaded_at"] and status["log_size"] == 1
    html = await (await central.client.get("/status", headers=operator)).text()
    assert "<td>S1</td><td>V1</td>" in html


async def test_bytes_that_do_not_hash_to_the_upload_id_are_discarded(
    central: Central, authority: Authority
) -> None:
    """Whole chunks whose total does not hash to the id get 422 and are dropped; a retry works."""
    venue = new_venue("V1")
    await central.register(venue)
    data = make_package(venue, authority)
    digest = hashlib.sha256(data).hexdigest()
    wrong = bytes([data[0] ^ 1]) + data[1:]
    assert (await central.create(venue, data)).status == 201
    assert (await central.patch(venue, digest, wrong, 0)).status == 204
    path = f"/api/v1/uploads/{digest}"
    await assert_problem(await central.call(venue, "POST", path + "/finish"), 422, "hash-mismatch")
    assert (await central.call(venue, "HEAD", path)).status == 404
    result = await upload(central, data, authority)
    assert await central.storage.package_data(result.package_sha256) == data
