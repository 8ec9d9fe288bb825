"""Issue 16, F11, on the server side: the response package header, receipts, the release
request and response, and every JSON request body refuse a key named twice in one object.

Each test takes the real producer's output and splices an earlier copy of one key into it, so
a last-wins reader would see the genuine document (and a first-wins reader another one)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

import pytest

from paperpack import crypto
from paperpack.authority import Authority
from paperpack.canonical import canonical_json
from server.clock import iso
from server.protocol.receipts import ReceiptInvalid, parse_receipt_answer, sign_receipt
from server.protocol.release import (
    open_release_response,
    sign_release_request,
    wrap_context,
    wrap_release_response,
)
from server.protocol.response_package import (
    MAGIC,
    SIGNING_KIND,
    PackageMalformed,
    open_response_package,
    read_header,
)
from tests.server.central.conftest import START, Central, make_package, new_venue


def splice(data: bytes, key: str, value: object) -> bytes:
    """`data` (a JSON object) with `"key": value` inserted before its first member."""
    assert data.startswith(b"{")
    return b"{" + json.dumps(key).encode() + b":" + canonical_json(value) + b"," + data[1:]


def test_f11_response_package_header_with_duplicate_key_is_refused(authority: Authority) -> None:
    """A header naming venue_id twice, signed by the venue itself, is PackageMalformed."""
    venue = new_venue("V1")
    data = make_package(venue, authority)
    (length,) = struct.unpack_from(">I", data, len(MAGIC))
    start = len(MAGIC) + 4
    header = data[start : start + length]
    forged = splice(header, "venue_id", "V9")
    assert json.loads(forged) == json.loads(header)
    signature = crypto.sign(venue.signing, SIGNING_KIND, forged, version=3)
    package = MAGIC + struct.pack(">I", len(forged)) + forged + signature
    package += data[start + length + 64 :]
    with pytest.raises(PackageMalformed, match="'venue_id' appears twice"):
        read_header(package)
    with pytest.raises(PackageMalformed, match="'venue_id' appears twice"):
        open_response_package(package, venue.signing.public_key(), authority.wrapping_key)
    open_response_package(data, venue.signing.public_key(), authority.wrapping_key)


class _Entry:
    package_sha256 = "ab" * 32
    session_id = "S1"
    venue_id = "V1"
    export_seq = 1
    size = 10


def test_f11_receipt_with_duplicate_key_is_refused() -> None:
    """The centre's answer carrying a signed receipt with a key twice is ReceiptInvalid (the
    signature covers the canonical form, so a last-wins reader would accept it)."""
    key = crypto.generate_signing_key()
    receipt = sign_receipt(key, _Entry(), iso(START), 1, "0" * 64, "1" * 64)
    answer = json.dumps({"complete": True, "offset": 10, "receipt": receipt})
    assert parse_receipt_answer(answer)["receipt"] == receipt
    inner = json.dumps(receipt["receipt"])
    spliced = splice(inner.encode(), "venue_id", "V9").decode()
    forged = answer.replace(inner, spliced)
    assert forged != answer
    with pytest.raises(ReceiptInvalid, match="'venue_id' appears twice"):
        parse_receipt_answer(forged)


def test_f11_release_response_with_duplicate_key_is_refused() -> None:
    """The release record wrapped to the venue with a key twice does not open."""
    venue = crypto.generate_wrapping_key()
    record = {"format": "cbt-release", "window": {"not_after": "a", "not_before": "b"}}
    answer = wrap_release_response(venue.public_key(), record, "S1", "V1", iso(START))
    assert open_release_response(answer, venue) == record
    forged = splice(canonical_json(record), "window", {"not_after": "z"})
    wrapped = crypto.wrap(venue.public_key(), forged, context=wrap_context("S1", "V1"), version=2)
    answer = {**answer, "wrapped_release": base64.b64encode(wrapped).decode("ascii")}
    with pytest.raises(ValueError, match="'window' appears twice"):
        open_release_response(answer, venue)


async def test_f11_release_request_with_duplicate_key_is_refused(central: Central) -> None:
    """A signed release request naming session_id twice is 400 bad-release-request."""
    venue = new_venue("V001")
    await central.register(venue)
    body = sign_release_request(venue.signing, "S1", "V001", iso(central.clock.now()))
    forged = splice(json.dumps(body).encode(), "session_id", "S-OTHER")
    resp = await central.client.post(
        "/api/v1/release", data=forged, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400, await resp.text()
    problem = await resp.json()
    assert problem["type"].endswith("/bad-release-request")
    assert "'session_id' appears twice" in problem["detail"]


async def test_f11_request_bodies_with_duplicate_keys_are_refused(central: Central) -> None:
    """An upload create (signed by its venue) or a staff login naming a key twice is 400,
    not last-wins; the upload's detail names the key."""
    venue = new_venue("V001")
    await central.register(venue)
    json_type = {"Content-Type": "application/json"}
    upload = json.dumps({"package_sha256": "ab" * 32, "size": 1, "venue_id": "V001"}).encode()
    login = json.dumps({"login": "admin", "password": "x"}).encode()
    for path, body, slug, key in (
        ("/api/v1/uploads", splice(upload, "venue_id", "V999"), "bad-upload", "venue_id"),
        ("/api/v1/staff/login", splice(login, "login", "other"), "malformed-json", None),
    ):
        signed = central.signed(venue, "POST", path, hashlib.sha256(body).hexdigest())
        resp = await central.client.post(path, data=body, headers={**json_type, **signed})
        assert resp.status == 400, (path, await resp.text())
        problem = await resp.json()
        assert problem["type"].endswith("/" + slug)
        assert key is None or f"'{key}' appears twice" in problem["detail"], problem
