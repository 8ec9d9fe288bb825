"""The time-release endpoint: inside the window a registered venue gets its record; else 403."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
import yaml

from paperpack.authority import Authority
from paperpack.crypto import unwrap
from paperpack.pack import pack_session
from paperpack.paperfile import load_paper
from paperpack.release import parse_record
from paperpack.session import load_session
from server.clock import iso
from server.protocol.audit_chain import LEGACY_CENTRAL_FORMAT, verify_audit_records
from server.protocol.release import (
    open_release_response,
    release_request_message,
    sign_release_request,
    wrap_context,
)
from tests.conftest import EXAMPLES
from tests.server.central.conftest import START, Central, VenueKeys, new_venue

SESSION = "S-REL"
OPENS = START  # the window opens 60 min before a start at START + 60 min
CLOSES = START + timedelta(minutes=90)


@pytest.fixture(scope="module")
def packed_venue(authority: Authority, tmp_path_factory: pytest.TempPathFactory) -> VenueKeys:
    """A venue that `paperpack pack` sealed a real session for, with the authority's material."""
    venue = new_venue("V-REL")
    folder = tmp_path_factory.mktemp("pack")
    session = {
        "session_id": SESSION,
        "subject": yaml.safe_load((EXAMPLES / "session.yaml").read_text())["subject"],
        "start": (START + timedelta(minutes=60)).isoformat(),
        "venues": [{"id": venue.venue_id, "name": "Release venue",
                    "public_key": venue.record().wrap_public, "supervisors": 3, "threshold": 2}],
    }  # fmt: skip
    (folder / "session.yaml").write_text(yaml.safe_dump(session, allow_unicode=True))
    paper = load_paper(EXAMPLES / "paper.yaml")
    pack_session(paper, load_session(folder / "session.yaml"), authority, folder / "out")
    return venue


async def ask(central: Central, venue: VenueKeys, venue_id: str | None = None, **over: Any) -> Any:
    body = sign_release_request(
        venue.signing, SESSION, venue_id or venue.venue_id, iso(central.clock.now())
    )
    return await central.client.post("/api/v1/release", json={**body, **over})


async def problem(resp: Any, slug: str) -> str:
    assert resp.status == 403, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = await resp.json(content_type=None)
    assert body["type"].endswith("/" + slug)
    return str(body["detail"])


async def test_inside_the_window_the_venue_gets_its_signed_record(
    central: Central, packed_venue: VenueKeys
) -> None:
    """A registered venue asking inside the window gets the record, readable only with its key."""
    await central.register(packed_venue)
    central.clock.set(OPENS + timedelta(minutes=5))
    resp = await ask(central, packed_venue)
    assert resp.status == 200, await resp.text()
    record = open_release_response(await resp.json(), packed_venue.wrapping)
    parsed = parse_record(json.dumps(record))
    assert (parsed["session_id"], parsed["venue_id"]) == (SESSION, packed_venue.venue_id)
    events = await central.storage.audit_events()
    assert [e["action"] for e in events] == ["release.served"]
    verify_audit_records(events, "seq", LEGACY_CENTRAL_FORMAT)
    assert (await central.storage.release_counts()) == {(SESSION, packed_venue.venue_id): 1}
    operator = await central.as_staff()
    status = await (await central.client.get("/api/v1/status", headers=operator)).json()
    assert [(r["session_id"], r["released"]) for r in status["sessions"]] == [(SESSION, 1)]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"session_id": 1}'])
async def test_a_malformed_request_is_a_400_problem(central: Central, body: bytes) -> None:
    """A body that is not the signed request JSON gets 400 problem+json and changes nothing."""
    resp = await central.client.post("/api/v1/release", data=body)
    assert resp.status == 400
    problem = await resp.json(content_type=None)
    assert problem["type"].endswith("/bad-release-request") and problem["detail"]
    assert await central.storage.audit_events() == []


@pytest.mark.parametrize("moment", [OPENS - timedelta(seconds=1), CLOSES + timedelta(seconds=1)])
async def test_outside_the_window_the_release_is_refused(
    central: Central, packed_venue: VenueKeys, moment: Any
) -> None:
    """One second before the window opens or after it closes: 403 naming the window."""
    await central.register(packed_venue)
    central.clock.set(moment)
    detail = await problem(await ask(central, packed_venue), "outside-window")
    assert "unlock window" in detail
    assert await central.storage.audit_events() == []


async def test_an_unregistered_venue_is_refused(central: Central, packed_venue: VenueKeys) -> None:
    """A venue the registry does not know gets 403 unknown-venue, even inside the window."""
    central.clock.set(OPENS + timedelta(minutes=5))
    detail = await problem(await ask(central, packed_venue), "unknown-venue")
    assert packed_venue.venue_id in detail


async def test_a_request_signed_by_another_key_is_refused(
    central: Central, packed_venue: VenueKeys
) -> None:
    """A request for the venue signed by any other key gets 403 bad-signature."""
    await central.register(packed_venue)
    central.clock.set(OPENS + timedelta(minutes=5))
    intruder = VenueKeys(packed_venue.venue_id, new_venue("X").signing, packed_venue.wrapping)
    await problem(await ask(central, intruder), "bad-signature")


async def test_a_stale_request_is_refused(central: Central, packed_venue: VenueKeys) -> None:
    """A correctly signed request from an hour ago cannot be replayed."""
    await central.register(packed_venue)
    central.clock.set(OPENS + timedelta(minutes=5))
    old = sign_release_request(
        packed_venue.signing, SESSION, packed_venue.venue_id, iso(OPENS - timedelta(hours=1))
    )
    await problem(await central.client.post("/api/v1/release", json=old), "stale-request")


async def test_a_session_the_centre_never_packed_is_refused(
    central: Central, packed_venue: VenueKeys
) -> None:
    """Asking for a session the authority holds nothing for gets 403 no-release."""
    await central.register(packed_venue)
    body = sign_release_request(
        packed_venue.signing, "NOPE", packed_venue.venue_id, iso(central.clock.now())
    )
    await problem(await central.client.post("/api/v1/release", json=body), "no-release")


async def test_a_version_1_request_is_still_answered_with_the_version_1_wrap(
    central: Central, packed_venue: VenueKeys
) -> None:
    """Venue software from before domain tags (a bare signature over the JSON naming its
    purpose, no format_version) still gets its release, wrapped the way it reads."""
    await central.register(packed_venue)
    central.clock.set(OPENS + timedelta(minutes=5))
    requested_at = iso(central.clock.now())
    message = release_request_message(SESSION, packed_venue.venue_id, requested_at, version=1)
    assert json.loads(message)["purpose"] == "cbt-release-request"
    body = {
        "session_id": SESSION,
        "venue_id": packed_venue.venue_id,
        "requested_at": requested_at,
        "signature": base64.b64encode(packed_venue.signing.sign(message)).decode(),
    }
    resp = await central.client.post("/api/v1/release", json=body)
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    blob = base64.b64decode(answer["wrapped_release"])
    assert blob.startswith(b"CBTW\x01")
    context = wrap_context(SESSION, packed_venue.venue_id)
    plain = unwrap(packed_venue.wrapping, blob, context=context, legacy=True)
    assert json.loads(bytes(plain))["session_id"] == SESSION


async def test_a_version_2_request_is_signed_under_its_tag_and_answered_with_hpke(
    central: Central, packed_venue: VenueKeys
) -> None:
    """Today's request signs cbt-release-request-v2| + the JSON; the answer is an HPKE wrap."""
    await central.register(packed_venue)
    central.clock.set(OPENS + timedelta(minutes=5))
    body = sign_release_request(
        packed_venue.signing, SESSION, packed_venue.venue_id, iso(central.clock.now())
    )
    message = release_request_message(SESSION, packed_venue.venue_id, body["requested_at"])
    signature = base64.b64decode(body["signature"])
    packed_venue.signing.public_key().verify(signature, b"cbt-release-request-v2|" + message)
    resp = await central.client.post("/api/v1/release", json=body)
    assert resp.status == 200, await resp.text()
    assert base64.b64decode((await resp.json())["wrapped_release"]).startswith(b"CBTW\x02")


@pytest.mark.parametrize("form", ["bare signature, says version 2", "tagged, says version 1"])
async def test_a_request_signed_in_the_other_versions_form_is_refused(
    central: Central, packed_venue: VenueKeys, form: str
) -> None:
    """A request claiming version 2 with a bare signature, or with no version (1) and a tagged
    signature, is refused as bad-signature: each version has one form."""
    await central.register(packed_venue)
    central.clock.set(OPENS + timedelta(minutes=5))
    body = sign_release_request(
        packed_venue.signing, SESSION, packed_venue.venue_id, iso(central.clock.now())
    )
    if form.startswith("bare"):
        message = release_request_message(SESSION, packed_venue.venue_id, body["requested_at"])
        bare = packed_venue.signing.sign(message)
        body["signature"] = base64.b64encode(bare).decode()
    else:
        del body["format_version"]
    await problem(await central.client.post("/api/v1/release", json=body), "bad-signature")


async def test_every_online_release_is_in_the_authority_release_log(
    central: Central, packed_venue: VenueKeys, authority: Authority
) -> None:
    """Issue 14, point 5: a record served online is appended to the signed release log as
    channel "online"; a refused request (outside the window) appends nothing."""
    from paperpack.release_log import read_log, verify_log

    await central.register(packed_venue)
    before = len(read_log(authority.directory))
    central.clock.set(CLOSES + timedelta(minutes=1))
    await problem(await ask(central, packed_venue), "outside-window")
    assert len(read_log(authority.directory)) == before
    central.clock.set(OPENS + timedelta(minutes=5))
    resp = await ask(central, packed_venue)
    assert resp.status == 200, await resp.text()
    entries = read_log(authority.directory)
    assert len(entries) == before + 1
    last = entries[-1]
    assert (last["channel"], last["venue_id"], last["forced"]) == (
        "online",
        packed_venue.venue_id,
        False,
    )
    assert verify_log(entries, authority.signing_public).intact
    operator = await central.as_staff()
    status = await (await central.client.get("/api/v1/status", headers=operator)).json()
    shown = status["release_log"]
    assert shown["intact"] is True and shown["total"] == len(entries)
    assert shown["entries"][0]["seq"] == last["seq"]
    assert shown["entries"][0]["channel"] == "online"


async def test_unopenable_release_material_is_a_503_saying_what_to_check(
    central: Central, packed_venue: VenueKeys, authority: Authority
) -> None:
    """Inside the window, central secrets that do not open are an error naming what to
    check, not 'no release'; nothing is logged as issued."""
    from paperpack.release_log import read_log

    await central.register(packed_venue)
    sealed = authority.central_dir(SESSION, packed_venue.venue_id) / "secrets.sealed"
    kept = sealed.read_bytes()
    sealed.write_bytes(b"\x00" * len(kept))
    before = len(read_log(authority.directory))
    try:
        central.clock.set(OPENS + timedelta(minutes=5))
        resp = await ask(central, packed_venue)
        assert resp.status == 503, await resp.text()
        body = await resp.json(content_type=None)
        assert body["type"].endswith("/release-unavailable")
        assert "do not open with this authority's upload key" in body["detail"]
    finally:
        sealed.write_bytes(kept)
    assert len(read_log(authority.directory)) == before
