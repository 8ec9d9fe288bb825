"""The online time release on the wire: the request a venue signs and the answer it opens.

A venue asks for its session's time release by POSTing `sign_release_request(...)`:
`{format_version: 2, session_id, venue_id, requested_at, signature}`, the signature by the
venue's registered Ed25519 key over `cbt-release-request-v2|` + `release_request_message(...)`
(`crypto.sign`, kind "release-request"). The centre checks it with `check_release_request`
and answers with `wrap_release_response(...)`: `{session_id, venue_id, released_at,
wrapped_release}`, the signed release record (`paperpack release`'s format) wrapped (HPKE) to
the venue's registered X25519 key with `wrap_context(session, venue)`, so only that venue
server can open it (`open_release_response`).

Version 1 (venue software from before domain tags: no `format_version`, the signature over
the bare canonical JSON with `purpose: cbt-release-request`) is still checked, and answered
with the version 1 key wrap that software reads. A request saying version 2 with a bare
signature, or version 1 with a tagged one, does not verify. The rules of when the centre
answers (window, freshness, which venue) are the centre's: `server.central.release`.
"""

from __future__ import annotations

import base64
from typing import Any

from paperpack import crypto
from paperpack.canonical import canonical_json, strict_loads
from server.errors import CbtError


class ReleaseRequestInvalid(CbtError):
    """A release request's signature is not by the key it was checked with."""


REQUEST_VERSION = 2  # signed under cbt-release-request-v2, answered with an HPKE wrap
READABLE_REQUEST_VERSIONS = (1, 2)  # 1: bare signature over JSON naming its purpose
SIGNING_KIND = "release-request"


def release_request_message(
    session_id: str, venue_id: str, requested_at: str, version: int = REQUEST_VERSION
) -> bytes:
    """The body a venue signs to ask for a release (version 2: signed under the domain tag)."""
    fields = {"session_id": session_id, "venue_id": venue_id, "requested_at": requested_at}
    if version == 1:
        return canonical_json({"purpose": "cbt-release-request", **fields})
    return canonical_json(fields)


def wrap_context(session_id: str, venue_id: str) -> bytes:
    """The wrap context binding a release response to its session and venue."""
    return f"cbt-release|{session_id}|{venue_id}".encode()


def sign_release_request(
    venue_key: crypto.Ed25519PrivateKey, session_id: str, venue_id: str, requested_at: str
) -> dict[str, Any]:
    """The JSON body a venue POSTs to /api/v1/release."""
    message = release_request_message(session_id, venue_id, requested_at)
    signature = crypto.sign(venue_key, SIGNING_KIND, message)
    return {
        "format_version": REQUEST_VERSION,
        "session_id": session_id,
        "venue_id": venue_id,
        "requested_at": requested_at,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def check_release_request(
    venue_public: crypto.Ed25519PublicKey,
    session_id: str,
    venue_id: str,
    requested_at: str,
    signature: bytes,
    version: int = REQUEST_VERSION,
) -> None:
    """Raise `ReleaseRequestInvalid` unless `signature` is `venue_public`'s over the request of
    this `version`: version 2 under its domain tag, version 1 over the bare JSON."""
    message = release_request_message(session_id, venue_id, requested_at, version)
    try:
        if version == 1:
            crypto.verify_undomained(venue_public, message, signature)
        else:
            crypto.verify(venue_public, SIGNING_KIND, message, signature)
    except crypto.CryptoError:
        raise ReleaseRequestInvalid(
            f"the release request is not signed by venue {venue_id}'s key"
        ) from None


def wrap_release_response(
    venue_wrap_public: crypto.X25519PublicKey,
    record: dict[str, Any],
    session_id: str,
    venue_id: str,
    released_at: str,
    request_version: int = REQUEST_VERSION,
) -> dict[str, str]:
    """The centre's answer: the release `record` wrapped to the venue's key (centre side),
    with the key wrap the asking venue software reads (version 1 for a version 1 request)."""
    wrapped = crypto.wrap(
        venue_wrap_public,
        canonical_json(record),
        context=wrap_context(session_id, venue_id),
        version=1 if request_version == 1 else 2,
    )
    return {
        "session_id": session_id,
        "venue_id": venue_id,
        "released_at": released_at,
        "wrapped_release": base64.b64encode(wrapped).decode("ascii"),
    }


def open_release_response(
    body: dict[str, Any], venue_wrap_key: crypto.X25519PrivateKey
) -> dict[str, Any]:
    """The release record from the centre's answer (venue side); CryptoError if not for us,
    KeyError, TypeError or ValueError if the answer is not of this shape.

    The answer carries no version of its own, so either wrap is opened (a version 2 request is
    answered with HPKE, a version 1 request with the old wrap). The wrap is transport only:
    anyone can wrap to the venue's public key, and what the venue trusts is the signed record
    inside, checked with the authority key when it is entered."""
    blob = base64.b64decode(body["wrapped_release"])
    plain = crypto.unwrap(
        venue_wrap_key,
        blob,
        context=wrap_context(body["session_id"], body["venue_id"]),
        legacy=True,
    )
    return dict(strict_loads(bytes(plain)))  # a key twice: DuplicateKey (a ValueError)
