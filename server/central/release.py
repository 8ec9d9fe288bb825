"""The time-release endpoint: `POST /api/v1/release`, and the request format venues sign.

A venue asks for its session's time release with `{session_id, venue_id, requested_at,
signature}`, the signature by its registered Ed25519 key over `release_request_message(...)`.
Inside the unlock window the centre answers with the signed release record wrapped to the
venue's registered X25519 key (`wrap_context(...)`), so only that venue server can read it.
Unknown venue, a signature by another key, a stale request or a time outside the window get
403 problem+json naming the reason. Every release served is audited (same transaction).
The venue side uses `sign_release_request` and `open_release_response` from here.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import web

from paperpack import crypto
from paperpack.canonical import canonical_json
from server.central import keys
from server.clock import iso
from server.errors import Forbidden, Malformed
from server.http import parse_json
from server.problems import Problem

routes = web.RouteTableDef()


@dataclass(frozen=True)
class ReleaseOffer:
    """What the centre may release for one session and venue, and when."""

    not_before: datetime  # unlock window opens (UTC)
    not_after: datetime  # unlock window closes (UTC)
    record: dict[str, Any]  # the signed release record as `paperpack release` writes it


class ReleaseSource(Protocol):
    def find(self, session_id: str, venue_id: str) -> ReleaseOffer | None:
        """The release of this session for this venue, or None when the centre has none."""
        ...


def release_request_message(session_id: str, venue_id: str, requested_at: str) -> bytes:
    """The bytes a venue signs to ask for a release."""
    return canonical_json(
        {"purpose": "cbt-release-request", "session_id": session_id, "venue_id": venue_id,
         "requested_at": requested_at}
    )  # fmt: skip


def wrap_context(session_id: str, venue_id: str) -> bytes:
    """The wrap context binding a release response to its session and venue."""
    return f"cbt-release|{session_id}|{venue_id}".encode()


def sign_release_request(
    venue_key: crypto.Ed25519PrivateKey, session_id: str, venue_id: str, requested_at: str
) -> dict[str, str]:
    """The JSON body a venue POSTs to /api/v1/release."""
    signature = crypto.sign_undomained(
        venue_key, release_request_message(session_id, venue_id, requested_at)
    )
    return {
        "session_id": session_id,
        "venue_id": venue_id,
        "requested_at": requested_at,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def open_release_response(
    body: dict[str, Any], venue_wrap_key: crypto.X25519PrivateKey
) -> dict[str, Any]:
    """The release record from the centre's answer (venue side); CryptoError if not for us."""
    blob = base64.b64decode(body["wrapped_release"])
    plain = crypto.unwrap(
        venue_wrap_key,
        blob,
        context=wrap_context(body["session_id"], body["venue_id"]),
        legacy=True,
    )
    return dict(json.loads(bytes(plain)))


def _refuse(slug: str, detail: str) -> Forbidden:
    return Forbidden(slug, detail)


def _parse_request(raw: Any) -> tuple[str, str, str, bytes]:
    fields = ("session_id", "venue_id", "requested_at", "signature")
    if not isinstance(raw, dict) or not all(isinstance(raw.get(f), str) for f in fields):
        raise Malformed("bad-release-request", f"send JSON with string fields {', '.join(fields)}")
    try:
        signature = base64.b64decode(raw["signature"], validate=True)
    except ValueError:
        raise Malformed("bad-release-request", "signature must be base64") from None
    return raw["session_id"], raw["venue_id"], raw["requested_at"], signature


def _check_fresh(requested_at: str, now: datetime, skew_ms: int) -> None:
    try:
        asked = datetime.fromisoformat(requested_at.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed("bad-release-request", "requested_at must be ISO-8601 UTC") from None
    if asked.tzinfo is None or abs(asked - now) > timedelta(milliseconds=skew_ms):
        raise _refuse(
            "stale-request",
            f"requested_at {requested_at} is more than {skew_ms // 1000} s from the centre's time "
            f"{iso(now)}: check the venue server's clock and ask again",
        )


@routes.post("/api/v1/release", name="release")
async def post_release(request: web.Request) -> web.Response:
    """Serve a session's time release to a registered venue inside its window."""
    app = request.app
    try:
        raw = parse_json(await request.read())
    except ValueError:
        raise Problem(400, "bad-release-request", "the body is not JSON") from None
    session_id, venue_id, requested_at, signature = _parse_request(raw)
    venue = await app[keys.STORAGE].get_venue(venue_id)
    if venue is None:
        raise _refuse("unknown-venue", f"venue {venue_id} is not registered at this centre")
    try:
        crypto.verify_undomained(
            crypto.read_signing_public(venue.signing_public),
            release_request_message(session_id, venue_id, requested_at),
            signature,
        )
    except crypto.CryptoError:
        raise _refuse(
            "bad-signature",
            f"the request is not signed by venue {venue_id}'s registered key: "
            "sign with the venue's own key (cbt venue init made it)",
        ) from None
    now = app[keys.CLOCK].now()
    _check_fresh(requested_at, now, app[keys.SETTINGS].release_skew_ms)
    offer = app[keys.RELEASES].find(session_id, venue_id)
    if offer is None:
        raise _refuse(
            "no-release", f"the centre holds no release of session {session_id} for {venue_id}"
        )
    if not offer.not_before <= now <= offer.not_after:
        raise _refuse(
            "outside-window",
            f"the unlock window of session {session_id} is {iso(offer.not_before)} to "
            f"{iso(offer.not_after)}; it is now {iso(now)} at the centre",
        )
    wrapped = crypto.wrap(
        crypto.read_wrapping_public(venue.wrap_public),
        canonical_json(offer.record),
        context=wrap_context(session_id, venue_id),
        version=1,
    )
    await app[keys.STORAGE].record_release(session_id, venue_id, requested_at, iso(now))
    return web.json_response(
        {
            "session_id": session_id,
            "venue_id": venue_id,
            "released_at": iso(now),
            "wrapped_release": base64.b64encode(wrapped).decode("ascii"),
        }
    )
