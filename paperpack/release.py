"""The time release: the centre's S_time for one venue, as a phone code and a signed record.

Central side (`issue_release`): reads the venue's central-only material from the authority
directory and returns
- the *code*: S_time (16 bytes) as checked typable groups (`paperpack.typable`), read out
  over the phone to offline venues;
- the *record*: JSON signed with the authority key, carrying session, venue, package id, the
  window and S_time wrapped to the venue server's X25519 key, for the central server to serve
  online. A copied record is useless on any other machine.

`issue_release` itself refuses only an unknown session or venue: it is the producer, used
as such by tests and tools. Every issuance that leaves the centre goes through
`accountable_release`, which checks the signed window *before* it unwraps anything (outside
it only with a stated reason, `paperpack release --force --reason`) and appends the issuance
to the authority's signed, hash-chained release log (`paperpack.release_log`). The window is
enforced cryptographically only at the venue, against the signed manifest; at the centre it
is procedure plus that log (docs/sealing.md, "What is cryptographic").

Venue side: `secret_from_code` and `secret_from_record` return S_time after checking it
against the manifest's release commitment, so a release for another venue, session or
package is refused when it is entered.

Record format 2 (written now) is signed under the domain tag `cbt-release-record-v2` and
wraps S_time with HPKE. Format 1 (bare canonical JSON signed, version 1 wrap) is still read;
a record that says format 2 but carries an untagged signature is refused.

The centre's own sealed files (`secrets.sealed`, `answer-keys.sealed`) carry no format
version outside the wrap, so they are opened with either wrap version (`legacy=True`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paperpack import release_log, typable
from paperpack.authority import Authority
from paperpack.canonical import DuplicateKey, canonical_json, strict_loads
from paperpack.crypto import (
    CryptoError,
    Ed25519PublicKey,
    X25519PrivateKey,
    constant_time_equal,
    public_key_text,
    read_wrapping_public,
    sign,
    unwrap,
    verify,
    verify_undomained,
    wrap,
    zeroise,
)
from paperpack.errors import PaperpackError, ReleaseRejected, SignatureInvalid
from paperpack.manifest import Manifest, release_commitment
from paperpack.pack import central_context

RECORD_FORMAT = "cbt-release"
RECORD_VERSION = 2  # written: tagged signature, HPKE wrap
READABLE_RECORD_VERSIONS = (1, 2)  # 1: untagged signature, version 1 wrap
SIGNING_KIND = "release-record"
MAX_RECORD_BYTES = 64 * 1024


class ReleaseError(PaperpackError):
    """The centre cannot issue this release (unknown session or venue)."""


class ReleaseOutsideWindow(ReleaseError):
    """Asked for a release outside its signed unlock window, without a forced reason."""


class ReleaseMaterialUnreadable(ReleaseError):
    """The centre's sealed release material does not open with the loaded authority key."""


@dataclass(frozen=True)
class Release:
    session_id: str
    venue_id: str
    code: str  # S_time as typable groups: read it out, never log it
    record: dict[str, Any]  # signed; S_time inside is wrapped to the venue key


def release_context(session_id: str, venue_id: str, package_id: str) -> bytes:
    return b"|".join(
        [b"cbt-release", session_id.encode(), venue_id.encode(), bytes.fromhex(package_id)]
    )


def pack_record(authority: Authority, session_id: str, venue_id: str) -> dict[str, Any]:
    """The plaintext pack record of one venue (package id, window, venue key): nothing
    secret is opened to read it. ReleaseError for an unknown session or venue."""
    central = authority.central_dir(session_id, venue_id)
    record_path = central / "pack-record.json"
    if not record_path.is_file():
        sessions = authority.directory / "sessions"
        if not (sessions / session_id).is_dir():
            raise ReleaseError(
                f"session {session_id} was never packed with this authority: check the session id"
            )
        known = ", ".join(sorted(p.name for p in (sessions / session_id).iterdir()))
        raise ReleaseError(
            f"venue {venue_id} is not in session {session_id} (packed venues: {known})"
        )
    record: dict[str, Any] = json.loads(record_path.read_text(encoding="utf-8"))
    return record


def _central_material(
    authority: Authority, session_id: str, venue_id: str
) -> tuple[dict[str, Any], bytearray]:
    record = pack_record(authority, session_id, venue_id)
    central = authority.central_dir(session_id, venue_id)
    try:
        secrets_blob = (central / "secrets.sealed").read_bytes()
        secrets = unwrap(
            authority.wrapping_key,
            secrets_blob,
            context=central_context("secrets", session_id, venue_id),
            legacy=True,
        )
    except OSError as exc:
        raise ReleaseMaterialUnreadable(
            f"cannot read the central secrets of {session_id}/{venue_id}"
            f" ({central / 'secrets.sealed'}: {exc.strerror}): restore the authority directory"
            " from its backup"
        ) from None
    except CryptoError:
        raise ReleaseMaterialUnreadable(
            f"the central secrets of {session_id}/{venue_id} do not open with this authority's"
            f" upload key: check that {authority.directory} is the authority that packed this"
            " session and that its files are intact"
        ) from None
    doc = json.loads(bytes(secrets))
    zeroise(secrets)
    return record, bytearray(base64.b64decode(doc["release_secret"]))


def issue_release(
    authority: Authority, session_id: str, venue_id: str, *, now: datetime | None = None
) -> Release:
    """The code and the signed record releasing S_time for one venue."""
    record, s_time = _central_material(authority, session_id, venue_id)
    try:
        code = typable.encode_groups(bytes(s_time))
        venue_key = read_wrapping_public(record["venue_public_key"], f"venue {venue_id}")
        wrapped = wrap(
            venue_key,
            s_time,
            context=release_context(session_id, venue_id, record["package_id"]),
        )
    finally:
        zeroise(s_time)
    body = {
        "format": RECORD_FORMAT,
        "format_version": RECORD_VERSION,
        "session_id": session_id,
        "venue_id": venue_id,
        "package_id": record["package_id"],
        "manifest_version": record["manifest_version"],
        "window": record["window"],
        "wrapped_secret": base64.b64encode(wrapped).decode("ascii"),
        "issued_at": (now or datetime.now(UTC)).isoformat(),
        "signing_key": public_key_text(authority.signing_public),
    }
    signature = sign(authority.signing_key, SIGNING_KIND, canonical_json(body))
    signed = {**body, "signature": base64.b64encode(signature).decode("ascii")}
    return Release(session_id, venue_id, code, signed)


def release_window(
    authority: Authority, session_id: str, venue_id: str
) -> tuple[datetime, datetime]:
    """The signed unlock window of one venue, from the plaintext pack record."""
    window = pack_record(authority, session_id, venue_id)["window"]
    return (
        datetime.fromisoformat(window["not_before"]),
        datetime.fromisoformat(window["not_after"]),
    )


def accountable_release(
    authority: Authority,
    session_id: str,
    venue_id: str,
    *,
    now: datetime,
    channel: str,
    who: str,
    forced_reason: str | None = None,
) -> Release:
    """Issue a release that leaves the centre: the window is checked before anything is
    unwrapped, and the issuance is in the release log before the release is returned.

    Outside the window only with `forced_reason` (ReleaseOutsideWindow otherwise), and the
    log entry carries that reason. `who`: the operator or the requesting venue server."""
    not_before, not_after = release_window(authority, session_id, venue_id)
    inside = not_before <= now < not_after
    if not inside and forced_reason is None:
        raise ReleaseOutsideWindow(
            f"session {session_id} may be released to {venue_id} only inside its unlock"
            f" window, {not_before.isoformat()} to {not_after.isoformat()} (now"
            f' {now.isoformat()}); to issue it anyway give --force --reason "why" (logged)'
        )
    release = issue_release(authority, session_id, venue_id, now=now)
    release_log.append_issuance(
        authority.directory,
        authority.signing_key,
        session_id=session_id,
        venue_id=venue_id,
        channel=channel,
        who=who,
        at=now,
        window=release.record["window"],
        reason=None if inside else forced_reason,
    )
    return release


# --- venue side -------------------------------------------------------------------------


def check_secret(manifest: Manifest, s_time: bytearray, what: str) -> None:
    """ReleaseRejected unless `s_time` matches the manifest's release commitment."""
    if not constant_time_equal(
        release_commitment(manifest.raw, s_time).encode(), manifest.release["commitment"].encode()
    ):
        zeroise(s_time)
        raise ReleaseRejected(
            f"this {what} is not the release for session {manifest.session_id} at venue"
            f" {manifest.venue_id}: it belongs to another venue, session or package;"
            " check it with the centre"
        )


def secret_from_code(manifest: Manifest, code: str) -> bytearray:
    """S_time from a typed code (typable.Mistyped names a mistyped group)."""
    data = bytearray(typable.decode_groups(code))
    if len(data) != 16:
        raise ReleaseRejected(
            f"the code carries {len(data)} bytes, a release code 16: is it a share card?"
        )
    check_secret(manifest, data, "release code")
    return data


def parse_record(text: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Parse a release record's JSON (or check an already decoded one) and its field types
    (ReleaseRejected on anything else)."""
    if isinstance(text, dict):
        record: Any = text
    elif len(text) > MAX_RECORD_BYTES:
        raise ReleaseRejected("the release record is too large to be one")
    else:
        try:
            record = strict_loads(text)
        except DuplicateKey as exc:
            raise ReleaseRejected(
                f"the release record is not valid: {exc}; fetch it again from the centre"
            ) from None
        except (ValueError, RecursionError):
            raise ReleaseRejected("the release record is not valid JSON: fetch it again") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise ReleaseRejected("this is not a cbt release record (format field)")
    version = record.get("format_version")
    if type(version) is not int or version not in READABLE_RECORD_VERSIONS:
        raise ReleaseRejected(
            f"release record version {version!r} is not supported"
            f" (this software reads {' and '.join(map(str, READABLE_RECORD_VERSIONS))}):"
            " upgrade the venue software"
        )
    for key in ("session_id", "venue_id", "package_id", "wrapped_secret", "signature", "issued_at"):
        if not isinstance(record.get(key), str):
            raise ReleaseRejected(f"the release record's {key} is missing or not text")
    return record


def verify_record(record: dict[str, Any], authority_key: Ed25519PublicKey) -> None:
    """SignatureInvalid unless the authority signed this parsed record: format 2 under the
    `cbt-release-record-v2` tag, format 1 (and only format 1) without a tag."""
    try:
        body = canonical_json({k: v for k, v in record.items() if k != "signature"})
        signature = base64.b64decode(record["signature"], validate=True)
    except ValueError:
        raise SignatureInvalid(
            "the release record is not signed by the pinned authority key (its signature or"
            " fields do not encode): refuse it"
        ) from None
    try:
        if record["format_version"] == 1:
            verify_undomained(authority_key, body, signature)
        else:
            verify(authority_key, SIGNING_KIND, body, signature)
    except CryptoError:
        raise SignatureInvalid(
            "the release record is not signed by the pinned authority key"
            f" (format {record['format_version']} signature): refuse it"
        ) from None


def secret_from_record(
    manifest: Manifest,
    record: dict[str, Any],
    device_key: X25519PrivateKey,
    authority_key: Ed25519PublicKey,
) -> bytearray:
    """S_time from a signed record: signature, binding, then unwrap with the venue key."""
    verify_record(record, authority_key)
    for field, expected in (
        ("session_id", manifest.session_id),
        ("venue_id", manifest.venue_id),
        ("package_id", manifest.package_id),
    ):
        if record[field] != expected:
            raise ReleaseRejected(
                f"this release record is for {field.removesuffix('_id')} {record[field]},"
                f" not {expected}: ask the centre for this venue's release"
            )
    try:
        wrapped = base64.b64decode(record["wrapped_secret"], validate=True)
        s_time = unwrap(
            device_key,
            wrapped,
            context=release_context(manifest.session_id, manifest.venue_id, manifest.package_id),
            legacy=record["format_version"] == 1,
        )
    except (ValueError, CryptoError):
        raise ReleaseRejected(
            "the release record does not open with this venue server's key"
        ) from None
    check_secret(manifest, s_time, "release record")
    return s_time
