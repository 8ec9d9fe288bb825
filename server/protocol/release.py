"""The online time release on the wire: the request a venue signs and the answer it opens.

A venue asks for its session's time release by POSTing `sign_release_request(...)`:
`{session_id, venue_id, requested_at, signature}`, the signature by the venue's registered
Ed25519 key over `release_request_message(...)` (canonical JSON naming its purpose,
`cbt-release-request`). The centre checks it with `check_release_request` and answers with
`wrap_release_response(...)`: `{session_id, venue_id, released_at, wrapped_release}`, the
signed release record (`paperpack release`'s format) wrapped to the venue's registered X25519
key with `wrap_context(session, venue)`, so only that venue server can open it
(`open_release_response`). The rules of when the centre answers (window, freshness, which
venue) are the centre's: `server.central.release`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from paperpack import crypto
from paperpack.canonical import canonical_json
from server.errors import CbtError


class ReleaseRequestInvalid(CbtError):
    """A release request's signature is not by the key it was checked with."""


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


def check_release_request(
    venue_public: crypto.Ed25519PublicKey,
    session_id: str,
    venue_id: str,
    requested_at: str,
    signature: bytes,
) -> None:
    """Raise `ReleaseRequestInvalid` unless `signature` is `venue_public`'s over the request."""
    try:
        crypto.verify_undomained(
            venue_public, release_request_message(session_id, venue_id, requested_at), signature
        )
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
) -> dict[str, str]:
    """The centre's answer: the release `record` wrapped to the venue's key (centre side)."""
    wrapped = crypto.wrap(
        venue_wrap_public,
        canonical_json(record),
        context=wrap_context(session_id, venue_id),
        version=1,
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
    KeyError, TypeError or ValueError if the answer is not of this shape."""
    blob = base64.b64decode(body["wrapped_release"])
    plain = crypto.unwrap(
        venue_wrap_key,
        blob,
        context=wrap_context(body["session_id"], body["venue_id"]),
        legacy=True,
    )
    return dict(json.loads(bytes(plain)))
