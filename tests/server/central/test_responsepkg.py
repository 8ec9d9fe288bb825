"""The response package format: round trip, and one typed refusal per kind of tampering."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack import crypto
from paperpack.authority import Authority
from server.protocol.response_package import (
    MAGIC,
    PackageMalformed,
    PackageSignerUnknown,
    PackageTampered,
    PackageUnreadable,
    ResponsePackageError,
    build_response_package,
    open_response_package,
    read_header,
    verify_response_package,
)
from tests.server.central.conftest import make_package, new_venue, sample_contents

VENUE = new_venue("V1")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def regions(data: bytes) -> dict[str, int]:
    """One byte offset inside each part of a package."""
    (length,) = struct.unpack_from(">I", data, len(MAGIC))
    header_at = len(MAGIC) + 4
    return {
        "header": header_at + length // 2,
        "signature": header_at + length + 10,
        "payload": len(data) - 5,
    }


@settings(max_examples=50, deadline=None)
@given(contents=st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=6))
def test_any_json_contents_round_trip(contents: dict[str, Any], authority: Authority) -> None:
    """Whatever JSON a venue seals, the centre opens exactly that (plus session and venue)."""
    data = build_response_package(contents, session_id="S1", venue_id="V1", export_seq=3,
                                  created_at="2026-06-01T00:00:00.000Z", venue_key=VENUE.signing,
                                  central_wrap_public=authority.wrapping_public)  # fmt: skip
    opened = open_response_package(data, VENUE.signing.public_key(), authority.wrapping_key)
    assert opened.contents == {**contents, "session_id": "S1", "venue_id": "V1"}
    assert opened.header.export_seq == 3


def test_final_answers_survive_the_round_trip(authority: Authority) -> None:
    """The attempts' final answers come back identical after seal and open."""
    contents = sample_contents("S1", "V1", 50)
    data = make_package(VENUE, authority, contents=contents)
    opened = open_response_package(data, VENUE.signing.public_key(), authority.wrapping_key)
    assert opened.contents["attempts"] == contents["attempts"]


@pytest.mark.parametrize("region", ["header", "signature", "payload"])
def test_a_flipped_byte_anywhere_is_refused(authority: Authority, region: str) -> None:
    """One flipped bit in the header, the signature or the payload is refused, never opened."""
    data = bytearray(make_package(VENUE, authority))
    data[regions(bytes(data))[region]] ^= 0x04
    with pytest.raises((PackageTampered, PackageMalformed, PackageSignerUnknown)):
        open_response_package(bytes(data), VENUE.signing.public_key(), authority.wrapping_key)


def test_a_flipped_payload_byte_is_named_as_tampering(authority: Authority) -> None:
    """A payload byte changed after signing is refused as tampered, with what to do."""
    data = bytearray(make_package(VENUE, authority))
    data[-1] ^= 0x80
    with pytest.raises(PackageTampered, match="altered or truncated after signing"):
        verify_response_package(bytes(data), VENUE.signing.public_key())


def test_a_package_signed_by_another_venue_names_the_signer(authority: Authority) -> None:
    """Verified against V1's key, a package signed by V2's key is refused as another key's."""
    other = new_venue("V2")
    data = make_package(type(VENUE)("V1", other.signing, other.wrapping), authority)
    with pytest.raises(PackageSignerUnknown, match="another venue's key"):
        verify_response_package(data, VENUE.signing.public_key())


def test_a_package_for_another_centre_does_not_open(authority: Authority) -> None:
    """Sealed to another authority's X25519 key, the package verifies but does not decrypt here."""
    elsewhere = crypto.generate_wrapping_key()
    data = build_response_package(
        {}, session_id="S1", venue_id="V1", export_seq=1, created_at="t",
        venue_key=VENUE.signing, central_wrap_public=elsewhere.public_key(),
    )  # fmt: skip
    verify_response_package(data, VENUE.signing.public_key())
    with pytest.raises(PackageUnreadable, match="another authority"):
        open_response_package(data, VENUE.signing.public_key(), authority.wrapping_key)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: b"NOTAPKG!" + d[8:], "bad magic"),
        (lambda d: d[:7] + b"\x09" + d[8:], "format version 9"),
        (lambda d: d[:20], "truncated"),
        (lambda d: d[: len(d) - 3], "altered or truncated"),
    ],
)
def test_malformed_files_are_refused_with_the_reason(
    authority: Authority, mangle: Any, message: str
) -> None:
    """Wrong magic, unknown version or truncation each raise a typed error naming the problem."""
    data = mangle(make_package(VENUE, authority))
    with pytest.raises(ResponsePackageError, match=message):
        open_response_package(data, VENUE.signing.public_key(), authority.wrapping_key)


def test_the_header_names_session_venue_and_sequence(authority: Authority) -> None:
    """read_header shows session, venue and export_seq without any key."""
    header = read_header(make_package(VENUE, authority, session_id="S9", export_seq=7))
    assert (header.session_id, header.venue_id, header.export_seq) == ("S9", "V1", 7)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_package_errors(data: bytes, authority: Authority) -> None:
    """Fuzzed input never escapes as anything but the package's own typed errors."""
    with pytest.raises(ResponsePackageError):
        open_response_package(MAGIC + data, VENUE.signing.public_key(), authority.wrapping_key)


def _resigned(data: bytes, change: Any) -> bytes:
    """`data` with its header rewritten by `change` (a function of the header dict) and
    signed again by the venue: a package another version of the venue could have made."""
    import json

    from paperpack.canonical import canonical_json
    from server.protocol.response_package import SIGNING_KIND

    (length,) = struct.unpack_from(">I", data, len(MAGIC))
    start = len(MAGIC) + 4
    header = json.loads(data[start : start + length])
    change(header)
    header_bytes = canonical_json(header)
    # Formats 1 and 2 are signed under the cbt-response-v1 tag, format 3 under its own.
    tag_version = 1 if header["format_version"] < 3 else header["format_version"]
    signature = crypto.sign(VENUE.signing, SIGNING_KIND, header_bytes, version=tag_version)
    payload = data[start + length + 64 :]
    return MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes + signature + payload


def test_evidence_travels_in_its_own_frame(authority: Authority) -> None:
    """Format 2 and later: the evidence comes back only when asked for, exactly as sealed."""
    evidence = {"journals": [{"attempt_id": "a1", "ticket": "T1", "journal": []}], "audit": []}
    data = build_response_package(
        {"attempts": []}, evidence=evidence, session_id="S1", venue_id="V1", export_seq=1,
        created_at="2026-06-01T00:00:00.000Z", venue_key=VENUE.signing,
        central_wrap_public=authority.wrapping_public,
    )  # fmt: skip
    opened = open_response_package(data, VENUE.signing.public_key(), authority.wrapping_key)
    assert opened.header.format_version == 3 and opened.header.evidence_compressed_size > 0
    assert opened.contents == {"attempts": [], "session_id": "S1", "venue_id": "V1"}
    assert opened.evidence() == evidence


def test_a_format_1_package_is_still_read(authority: Authority) -> None:
    """A package from before the evidence frame (journals inline) opens as it was sealed."""
    contents = sample_contents("S1", "V1", 5)
    v2 = make_package(VENUE, authority, contents=contents)

    def as_format_1(header: dict[str, Any]) -> None:
        header["format_version"] = 1
        del header["evidence_size"], header["evidence_compressed_size"]

    opened = open_response_package(
        _resigned(v2, as_format_1), VENUE.signing.public_key(), authority.wrapping_key
    )
    assert opened.header.format_version == 1 and opened.evidence() == {}
    assert opened.contents["attempts"] == contents["attempts"]


@pytest.mark.parametrize(
    "sizes",
    [{"evidence_size": 10, "evidence_compressed_size": 0},
     {"evidence_size": 0, "evidence_compressed_size": 10},
     {"evidence_size": 10, "evidence_compressed_size": 10**9}],
)  # fmt: skip
def test_evidence_sizes_that_do_not_fit_are_refused(authority: Authority, sizes) -> None:
    data = _resigned(make_package(VENUE, authority), lambda header: header.update(sizes))
    with pytest.raises(PackageMalformed, match="evidence sizes"):
        open_response_package(data, VENUE.signing.public_key(), authority.wrapping_key)


def test_format_3_is_signed_under_its_tag_with_an_hpke_wrap(authority: Authority) -> None:
    """Today's package: the signature covers cbt-response-v3| + header; the key is HPKE."""
    import json

    data = make_package(VENUE, authority)
    (length,) = struct.unpack_from(">I", data, len(MAGIC))
    start = len(MAGIC) + 4
    header_bytes = data[start : start + length]
    signature = data[start + length : start + length + 64]
    VENUE.signing.public_key().verify(signature, b"cbt-response-v3|" + header_bytes)
    header = json.loads(header_bytes)
    assert header["format_version"] == 3
    assert base64.b64decode(header["wrapped_key"]).startswith(b"CBTW\x02")


def test_a_format_2_package_is_still_read(authority: Authority) -> None:
    """A format 2 package (signed under cbt-response-v1) opens as before."""
    contents = sample_contents("S1", "V1", 3)
    data = _resigned(
        make_package(VENUE, authority, contents=contents),
        lambda header: header.update(format_version=2),
    )
    opened = open_response_package(data, VENUE.signing.public_key(), authority.wrapping_key)
    assert opened.header.format_version == 2
    assert opened.contents["attempts"] == contents["attempts"]


@pytest.mark.parametrize(("claimed", "tag"), [(3, 1), (2, 3)])
def test_a_signature_under_another_versions_tag_is_refused(
    authority: Authority, claimed: int, tag: int
) -> None:
    """A format 3 header signed the old way (cbt-response-v1), or a format 2 header under the
    new tag, fails the signature check: the version inside the signed header picks the tag."""
    import json

    from paperpack.canonical import canonical_json

    data = make_package(VENUE, authority)
    (length,) = struct.unpack_from(">I", data, len(MAGIC))
    start = len(MAGIC) + 4
    header = json.loads(data[start : start + length]) | {"format_version": claimed}
    header_bytes = canonical_json(header)
    signature = crypto.sign(VENUE.signing, "response", header_bytes, version=tag)
    forged = (
        MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes + signature
        + data[start + length + 64 :]
    )  # fmt: skip
    with pytest.raises(PackageTampered, match="altered after signing"):
        open_response_package(forged, VENUE.signing.public_key(), authority.wrapping_key)


def test_a_format_3_package_carrying_the_old_wrap_is_refused(
    authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Format 3 requires the HPKE wrap: a content key in the version 1 wrap does not open."""
    import functools

    monkeypatch.setattr(crypto, "wrap", functools.partial(crypto.wrap, version=1))
    data = make_package(VENUE, authority)
    monkeypatch.undo()
    with pytest.raises(PackageUnreadable, match="does not unwrap"):
        open_response_package(data, VENUE.signing.public_key(), authority.wrapping_key)
