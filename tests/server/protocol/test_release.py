"""The release request and answer: what the venue signs and opens, what the centre checks and
wraps, each with the other side's real function."""

from __future__ import annotations

import base64

import pytest

from paperpack import crypto
from server.protocol.release import (
    ReleaseRequestInvalid,
    check_release_request,
    open_release_response,
    sign_release_request,
    wrap_release_response,
)

AT = "2026-06-01T07:50:00.000Z"


def test_a_signed_request_checks_with_the_venues_key_only() -> None:
    """The body the venue sends checks with its key; another key, or another session in the
    body, is refused with a typed error naming the venue."""
    venue, other = crypto.generate_signing_key(), crypto.generate_signing_key()
    body = sign_release_request(venue, "S1", "V1", AT)
    signature = base64.b64decode(body["signature"])
    check_release_request(venue.public_key(), "S1", "V1", AT, signature)
    with pytest.raises(ReleaseRequestInvalid, match="not signed by venue V1's key"):
        check_release_request(other.public_key(), "S1", "V1", AT, signature)
    with pytest.raises(ReleaseRequestInvalid):
        check_release_request(venue.public_key(), "S2", "V1", AT, signature)


def test_the_wrapped_answer_opens_only_at_its_venue() -> None:
    """The centre's answer gives the venue the record; another venue's key cannot open it."""
    venue, other = crypto.generate_wrapping_key(), crypto.generate_wrapping_key()
    record = {"format": "cbt-release", "secret": "test-only"}
    answer = wrap_release_response(venue.public_key(), record, "S1", "V1", AT)
    assert answer["released_at"] == AT
    assert open_release_response(answer, venue) == record
    with pytest.raises(crypto.CryptoError):
        open_release_response(answer, other)
    with pytest.raises(crypto.CryptoError):  # relabelled for another session: the context differs
        open_release_response({**answer, "session_id": "S2"}, venue)
