"""Start-delay approvals (art. 31): the centre's signed permission for one venue to start one
package's session more than 30 minutes late.

The centre issues it (`issue_delay_approval`, `paperpack approve-delay`); the venue checks it
when the chief examiner enters the delay (`check_delay_approval`). The same code also bounds
the session's time changes in all (start delay, venue and room pauses, room-wide grants): past
30 minutes of them the venue accepts a resume or a room-wide grant only with a code whose
`delay_minutes` is at least the new total (`check_time_approval`). The approval is a signed
document, handed over as one line of text (the *approval code*: base64 of its canonical JSON):

    {"format": "cbt-delay-approval", "format_version": 2, "session_id", "venue_id",
     "package_id", "delay_minutes", "issued_at", "expires_at", "signing_key",
     "signature": base64 Ed25519 over b"cbt-delay-approval-v2|" + canonical JSON of the rest}

It is bound to the package (`package_id`, random per pack and signed in the manifest), so an
approval for an earlier pack of the same session does not carry over to a re-pack, and it
expires (`expires_at`, default 12 hours after issue), so an old code cannot be kept for a
later day. Format 1, the bare signature of `{"purpose": "start-delay-approval", session,
venue, minutes}`, had neither and is no longer accepted: the venue says so and asks for a
new code.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from paperpack.authority import Authority
from paperpack.canonical import DuplicateKey, canonical_json, strict_loads
from paperpack.crypto import CryptoError, Ed25519PublicKey, public_key_text, sign, verify
from paperpack.errors import PaperpackError

APPROVAL_FORMAT = "cbt-delay-approval"
APPROVAL_VERSION = 2
SIGNING_KIND = "delay-approval"
DEFAULT_VALIDITY = timedelta(hours=12)
MAX_VALIDITY = timedelta(days=7)
MAX_CODE_CHARS = 4096  # a code is about 600 characters
_FIELDS = {
    "session_id": str,
    "venue_id": str,
    "package_id": str,
    "delay_minutes": int,
    "issued_at": str,
    "expires_at": str,
    "signing_key": str,
    "signature": str,
}


class ApprovalError(PaperpackError):
    """The centre cannot issue this approval (unknown session or venue, bad validity)."""


class ApprovalRejected(PaperpackError):
    """The venue refuses an approval code; `slug` names why for the problem document."""

    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug


def issue_delay_approval(
    authority: Authority,
    session_id: str,
    venue_id: str,
    delay_minutes: int,
    *,
    valid_for: timedelta = DEFAULT_VALIDITY,
    now: datetime | None = None,
) -> str:
    """The approval code for a `delay_minutes` start delay of the venue's packed session."""
    if not 0 < delay_minutes <= 24 * 60:
        raise ApprovalError(f"a start delay of {delay_minutes} min is not between 1 and 1440")
    if not timedelta(0) < valid_for <= MAX_VALIDITY:
        raise ApprovalError("an approval must be valid for more than 0 and at most 7 days")
    record_path = authority.central_dir(session_id, venue_id) / "pack-record.json"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except OSError:
        raise ApprovalError(
            f"venue {venue_id} of session {session_id} was never packed with this authority:"
            " check the session and venue ids"
        ) from None
    issued = now or datetime.now(UTC)
    body = {
        "format": APPROVAL_FORMAT,
        "format_version": APPROVAL_VERSION,
        "session_id": session_id,
        "venue_id": venue_id,
        "package_id": record["package_id"],
        "delay_minutes": delay_minutes,
        "issued_at": issued.isoformat(),
        "expires_at": (issued + valid_for).isoformat(),
        "signing_key": public_key_text(authority.signing_public),
    }
    signature = sign(authority.signing_key, SIGNING_KIND, canonical_json(body))
    document = {**body, "signature": base64.b64encode(signature).decode("ascii")}
    return base64.b64encode(canonical_json(document)).decode("ascii")


def _invalid(message: str) -> ApprovalRejected:
    return ApprovalRejected("delay-approval-invalid", message)


def read_delay_approval(code: str, authority_key: Ed25519PublicKey) -> dict[str, Any]:
    """Decode an approval code and check the centre's signature; its fields, verified."""
    text = code.strip()
    if len(text) > MAX_CODE_CHARS:
        raise _invalid("the approval code is too long to be one: copy it again from the centre")
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise _invalid(
            "the approval code is not base64: copy it again exactly as the centre sent it"
        ) from None
    if len(raw) == 64:
        raise _invalid(
            "this is an approval code of the old format (a bare signature, with no expiry and no"
            " package): it is no longer accepted; ask the centre for a new approval code"
        )
    try:
        document = strict_loads(raw)
    except DuplicateKey as exc:
        raise _invalid(
            f"the approval code is not valid: {exc}; ask the centre for a new one"
        ) from None
    except (ValueError, RecursionError):
        raise _invalid("the approval code does not decode: copy it again exactly") from None
    if not isinstance(document, dict) or document.get("format") != APPROVAL_FORMAT:
        raise _invalid("the code is not a cbt start-delay approval")
    version = document.get("format_version")
    if type(version) is not int or version != APPROVAL_VERSION:
        raise _invalid(
            f"start-delay approval version {version!r} is not supported (this venue reads"
            f" {APPROVAL_VERSION}): ask the centre for a new approval code"
        )
    for field, kind in _FIELDS.items():
        if type(document.get(field)) is not kind:
            raise _invalid(f"the approval's {field} is missing or has the wrong type")
    body = {k: v for k, v in document.items() if k != "signature"}
    try:
        signature = base64.b64decode(document["signature"], validate=True)
        verify(authority_key, SIGNING_KIND, canonical_json(body), signature)
    except (ValueError, CryptoError):
        raise _invalid(
            "the approval code does not carry the centre's signature (checked with the pinned"
            " authority key): it was altered, or it was not issued by the centre"
        ) from None
    return dict(document)


def _check_binding(
    approval: dict[str, Any], session_id: str, venue_id: str, package_id: str
) -> None:
    for field, expected in (("session_id", session_id), ("venue_id", venue_id)):
        if approval[field] != expected:
            raise ApprovalRejected(
                "delay-approval-mismatch",
                f"this approval is for {field.removesuffix('_id')} {approval[field]}, not"
                f" {expected}: ask the centre for this venue's approval",
            )
    if approval["package_id"] != package_id:
        raise ApprovalRejected(
            "delay-approval-mismatch",
            f"this approval is for package {approval['package_id'][:12]}..., but session"
            f" {session_id} runs package {package_id[:12]}... (re-packed or re-imported since):"
            " ask the centre for an approval of the current package",
        )


def approval_expiry(approval: dict[str, Any]) -> datetime:
    """The approval's `expires_at` as an aware time, or ApprovalRejected."""
    try:
        expires = datetime.fromisoformat(approval["expires_at"])
    except ValueError:
        raise _invalid("the approval's expires_at is not an ISO 8601 time") from None
    if expires.tzinfo is None:
        raise _invalid("the approval's expires_at has no time zone")
    return expires


def _check_expiry(approval: dict[str, Any], now: datetime) -> None:
    if now >= approval_expiry(approval):
        raise ApprovalRejected(
            "delay-approval-expired",
            f"this approval expired at {approval['expires_at']} (now {now.isoformat()}):"
            " ask the centre for a new approval code",
        )


def check_delay_approval(
    code: str,
    authority_key: Ed25519PublicKey,
    *,
    session_id: str,
    venue_id: str,
    package_id: str,
    delay_minutes: int,
    now: datetime,
) -> dict[str, Any]:
    """ApprovalRejected unless `code` is the centre's approval of exactly this delay, for this
    session, venue and package, and has not expired at `now`; returns the approval."""
    approval = read_delay_approval(code, authority_key)
    _check_binding(approval, session_id, venue_id, package_id)
    if approval["delay_minutes"] != delay_minutes:
        raise ApprovalRejected(
            "delay-approval-mismatch",
            f"this approval is for a {approval['delay_minutes']} min delay, not"
            f" {delay_minutes} min: enter the approved delay or ask the centre again",
        )
    _check_expiry(approval, now)
    return approval


def check_time_approval(
    code: str,
    authority_key: Ed25519PublicKey,
    *,
    session_id: str,
    venue_id: str,
    package_id: str,
    total_minutes: float,
    now: datetime,
) -> dict[str, Any]:
    """ApprovalRejected unless `code` is the centre's approval for this session, venue and
    package, unexpired at `now`, of at least `total_minutes` of time changes (art. 31: start
    delay, venue and room pauses and room-wide grants together); returns the approval.

    The same format-2 code as a start delay's: its `delay_minutes` is the most the session's
    time may be put back in all (`paperpack approve-delay --minutes N`)."""
    approval = read_delay_approval(code, authority_key)
    _check_binding(approval, session_id, venue_id, package_id)
    if approval["delay_minutes"] < total_minutes:
        raise ApprovalRejected(
            "delay-approval-too-short",
            f"this approval covers {approval['delay_minutes']} min of time changes, but the"
            f" session's would come to {total_minutes:.0f} min: ask the centre for an approval"
            " of at least that",
        )
    _check_expiry(approval, now)
    return approval
