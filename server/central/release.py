"""The time-release endpoint: `POST /api/v1/release`, and when the centre answers it.

A venue asks for its session's time release with a signed request; inside the unlock window
the centre answers with the signed release record wrapped to the venue's registered X25519
key, so only that venue server can read it. Both messages are formats the venue speaks too:
`server.protocol.release`. Unknown venue, a signature by another key, a stale request or a
time outside the window get 403 problem+json naming the reason. Every release served is
audited (same transaction). `ReleaseSource` is where the centre finds what it may release.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import web

from paperpack import crypto
from paperpack.canonical import DuplicateKey
from paperpack.release import ReleaseError
from server.central import keys
from server.clock import iso
from server.errors import Forbidden, Malformed
from server.http import parse_json
from server.problems import Problem
from server.protocol.release import (
    READABLE_REQUEST_VERSIONS,
    ReleaseRequestInvalid,
    check_release_request,
    wrap_release_response,
)

routes = web.RouteTableDef()
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseWindow:
    """When the centre may release one session to one venue (read without opening secrets)."""

    not_before: datetime  # unlock window opens (UTC)
    not_after: datetime  # unlock window closes (UTC)


class ReleaseSource(Protocol):
    def find(self, session_id: str, venue_id: str) -> ReleaseWindow | None:
        """The window of this session for this venue, or None when the centre has none."""
        ...

    def issue(self, session_id: str, venue_id: str, now: datetime) -> dict[str, Any]:
        """The signed release record, logged as issued; called only inside the window.
        Raises paperpack.release.ReleaseError when the centre's material does not open."""
        ...


def _refuse(slug: str, detail: str) -> Forbidden:
    return Forbidden(slug, detail)


def _parse_request(raw: Any) -> tuple[str, str, str, bytes, int]:
    fields = ("session_id", "venue_id", "requested_at", "signature")
    if not isinstance(raw, dict) or not all(isinstance(raw.get(f), str) for f in fields):
        raise Malformed("bad-release-request", f"send JSON with string fields {', '.join(fields)}")
    version = raw.get("format_version", 1)  # absent: venue software from before version 2
    if type(version) is not int or version not in READABLE_REQUEST_VERSIONS:
        raise Malformed(
            "bad-release-request",
            f"format_version {version!r} is not a release request version this centre reads"
            f" ({', '.join(map(str, READABLE_REQUEST_VERSIONS))}): upgrade the central server",
        )
    try:
        signature = base64.b64decode(raw["signature"], validate=True)
    except ValueError:
        raise Malformed("bad-release-request", "signature must be base64") from None
    return raw["session_id"], raw["venue_id"], raw["requested_at"], signature, version


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
    except DuplicateKey as exc:  # signed fields: which copy is meant? (issue 16, F11)
        raise Problem(
            400, "bad-release-request", f"the body is not a valid request: {exc}"
        ) from None
    except ValueError:
        raise Problem(400, "bad-release-request", "the body is not JSON") from None
    session_id, venue_id, requested_at, signature, version = _parse_request(raw)
    venue = await app[keys.STORAGE].get_venue(venue_id)
    if venue is None:
        raise _refuse("unknown-venue", f"venue {venue_id} is not registered at this centre")
    try:
        check_release_request(
            crypto.read_signing_public(venue.signing_public),
            session_id,
            venue_id,
            requested_at,
            signature,
            version,
        )
    except ReleaseRequestInvalid:
        raise _refuse(
            "bad-signature",
            f"the request is not signed by venue {venue_id}'s registered key: "
            "sign with the venue's own key (cbt venue init made it)",
        ) from None
    now = app[keys.CLOCK].now()
    _check_fresh(requested_at, now, app[keys.SETTINGS].release_skew_ms)
    window = app[keys.RELEASES].find(session_id, venue_id)
    if window is None:
        raise _refuse(
            "no-release", f"the centre holds no release of session {session_id} for {venue_id}"
        )
    if not window.not_before <= now < window.not_after:  # before anything is unwrapped
        raise _refuse(
            "outside-window",
            f"the unlock window of session {session_id} is {iso(window.not_before)} to "
            f"{iso(window.not_after)}; it is now {iso(now)} at the centre",
        )
    try:
        record = app[keys.RELEASES].issue(session_id, venue_id, now)
    except ReleaseError as exc:
        log.error("release.unopenable session=%s venue=%s", session_id, venue_id)
        raise Problem(503, "release-unavailable", str(exc)) from None
    answer = wrap_release_response(
        crypto.read_wrapping_public(venue.wrap_public),
        record,
        session_id,
        venue_id,
        iso(now),
        request_version=version,
    )
    await app[keys.STORAGE].record_release(session_id, venue_id, requested_at, iso(now))
    return web.json_response(answer)
