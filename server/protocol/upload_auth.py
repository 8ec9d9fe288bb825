"""Signed upload requests: how a venue proves who it is on every upload call (issue 16, F1).

Every call of the resumable upload (create, PATCH, HEAD, GET, finish) carries

    Authorization: CBT-Venue venue_id="<id>", signed_at="<ISO-8601 UTC>", signature="<base64>"

the signature by the venue's registered Ed25519 key (the one its packages are signed with,
registered at the centre with `cbt central venue add`) over `cbt-upload-request-v1|` +
`upload_request_message(...)`: the canonical JSON of the method, the API path (from `/api/`,
so a reverse proxy's prefix does not matter), the venue, the time, the SHA-256 of what the
request carries and its `Upload-Offset`. What it carries is the body for a create, the
chunk (as its `Upload-Checksum` says: the centre checks the body against it) for a PATCH,
and nothing for the others. A signature thus fits one request only; the centre refuses
one whose `signed_at` is further from its own time than the allowed skew, so a request
seen on the wire is of no use for long (and replaying one within the skew changes nothing:
every upload call is idempotent).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from paperpack import crypto
from paperpack.canonical import canonical_json
from server.errors import CbtError

SCHEME = "CBT-Venue"
SIGNING_KIND = "upload-request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AUTHORIZATION = re.compile(
    r'CBT-Venue venue_id="([A-Za-z0-9._-]{1,128})", '
    r'signed_at="([0-9T:.Z+-]{1,40})", signature="([A-Za-z0-9+/=]{1,128})"',
    re.ASCII,
)


class UploadAuthInvalid(CbtError):
    """An upload request's Authorization header is absent, unreadable or does not verify."""


@dataclass(frozen=True)
class SignedRequest:
    """What an Authorization header claims (not yet verified)."""

    venue_id: str
    signed_at: str
    signature: bytes


def upload_request_message(
    method: str, path: str, venue_id: str, signed_at: str, content_sha256: str, offset: str = ""
) -> bytes:
    """The bytes a venue signs (under the domain tag) for one upload request."""
    return canonical_json(
        {"method": method.upper(), "path": path, "venue_id": venue_id, "signed_at": signed_at,
         "content_sha256": content_sha256, "upload_offset": offset}
    )  # fmt: skip


def sign_upload_request(
    venue_key: crypto.Ed25519PrivateKey,
    venue_id: str,
    method: str,
    path: str,
    signed_at: str,
    content_sha256: str = EMPTY_SHA256,
    offset: str = "",
) -> str:
    """The Authorization header's value for one request."""
    message = upload_request_message(method, path, venue_id, signed_at, content_sha256, offset)
    signature = base64.b64encode(crypto.sign(venue_key, SIGNING_KIND, message)).decode("ascii")
    return f'{SCHEME} venue_id="{venue_id}", signed_at="{signed_at}", signature="{signature}"'


def parse_authorization(value: str | None) -> SignedRequest:
    """The claim in an Authorization header; `UploadAuthInvalid` if there is none or it is
    not in the one form above."""
    if not value:
        raise UploadAuthInvalid("the request is not signed")
    found = _AUTHORIZATION.fullmatch(value.strip())
    if found is None:
        raise UploadAuthInvalid(
            f'the Authorization header is not {SCHEME} venue_id="...", signed_at="...", '
            'signature="..."'
        )
    try:
        signature = base64.b64decode(found[3], validate=True)
    except ValueError:
        raise UploadAuthInvalid("the signature is not base64") from None
    return SignedRequest(found[1], found[2], signature)


def check_upload_request(
    venue_public: crypto.Ed25519PublicKey,
    claim: SignedRequest,
    method: str,
    path: str,
    content_sha256: str,
    offset: str = "",
) -> None:
    """Raise `UploadAuthInvalid` unless the claim's signature is `venue_public`'s over this
    request."""
    message = upload_request_message(
        method, path, claim.venue_id, claim.signed_at, content_sha256, offset
    )
    try:
        crypto.verify(venue_public, SIGNING_KIND, message, claim.signature)
    except crypto.CryptoError:
        raise UploadAuthInvalid(
            f"the signature is not venue {claim.venue_id}'s registered key's over this request"
        ) from None
