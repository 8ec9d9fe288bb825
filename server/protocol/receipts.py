"""Signed upload receipts: what the centre gives a venue for an accepted package.

A receipt is `{"receipt": {...}, "signature": base64}`; the signature is the centre's
Ed25519 key over `b"cbt-receipt-v1|" + canonical_json(receipt)`. The fields: format and
version, package SHA-256, session, venue, export_seq, size, received_at, the package's
position in the centre's append-only log and the log's hash-chain root after it
(`next_log_root`). The centre signs it with `sign_receipt` when it accepts a package; the
venue verifies it with `verify_receipt` before it marks its copy as delivered.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Protocol

from paperpack import crypto
from paperpack.canonical import DuplicateKey, canonical_json, strict_loads
from server.errors import CbtError

RECEIPT_FORMAT = "cbt-receipt"
RECEIPT_VERSION = 1
SIGNING_KIND = "receipt"  # signed under the domain tag cbt-receipt-v1


class ReceiptInvalid(CbtError):
    """A receipt does not verify, or is for another package."""


class ReceiptSubject(Protocol):
    """What a receipt says about the package it is for (the centre's store entry has these)."""

    @property
    def package_sha256(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def venue_id(self) -> str: ...
    @property
    def export_seq(self) -> int: ...
    @property
    def size(self) -> int: ...


def next_log_root(previous_root: str, position: int, package_sha256: str, received_at: str) -> str:
    """The append-only log's root after appending one package (a hash chain over all of them)."""
    material = f"cbt-log-v1|{previous_root}|{position}|{package_sha256}|{received_at}"
    return hashlib.sha256(material.encode()).hexdigest()


def sign_receipt(
    key: crypto.Ed25519PrivateKey,
    entry: ReceiptSubject,
    received_at: str,
    position: int,
    previous_root: str,
    root: str,
) -> dict[str, Any]:
    """The signed receipt for `entry`, accepted at log `position` with log `root`."""
    body = {
        "format": RECEIPT_FORMAT,
        "version": RECEIPT_VERSION,
        "package_sha256": entry.package_sha256,
        "session_id": entry.session_id,
        "venue_id": entry.venue_id,
        "export_seq": entry.export_seq,
        "size": entry.size,
        "received_at": received_at,
        "log_position": position,
        "log_previous_root": previous_root,
        "log_root": root,
    }
    signature = crypto.sign(key, SIGNING_KIND, canonical_json(body))
    return {"receipt": body, "signature": base64.b64encode(signature).decode("ascii")}


def parse_receipt_answer(text: str | bytes) -> Any:
    """The centre's JSON answer that carries a receipt, read strictly: ReceiptInvalid naming
    the key when an object names one twice (issue 16, F11); other malformed JSON stays a
    ValueError (an upload retries it)."""
    try:
        return strict_loads(text)
    except DuplicateKey as exc:
        raise ReceiptInvalid(
            f"the centre's answer with the receipt is not valid: {exc}; upload again"
        ) from None


def verify_receipt(
    document: Any, central_public: crypto.Ed25519PublicKey, package_sha256: str | None = None
) -> dict[str, Any]:
    """Check a receipt's signature (and that it is for `package_sha256`); return its fields."""
    try:
        body = document["receipt"]
        signature = base64.b64decode(document["signature"], validate=True)
        message = canonical_json(body)
    except (KeyError, TypeError, ValueError):
        raise ReceiptInvalid("the receipt is malformed: expected {receipt, signature}") from None
    try:
        crypto.verify(central_public, SIGNING_KIND, message, signature)
    except crypto.CryptoError:
        raise ReceiptInvalid(
            "the receipt's signature does not verify with the centre's public key: "
            "do not treat the package as delivered; check --central and the pinned key"
        ) from None
    if body.get("format") != RECEIPT_FORMAT or body.get("version") != RECEIPT_VERSION:
        raise ReceiptInvalid(
            f"receipt format {body.get('format')}/{body.get('version')} is unknown"
        )
    if package_sha256 is not None and body.get("package_sha256") != package_sha256:
        raise ReceiptInvalid("the receipt is for another package: upload again")
    expected = next_log_root(
        body["log_previous_root"], body["log_position"], body["package_sha256"], body["received_at"]
    )
    if expected != body["log_root"]:
        raise ReceiptInvalid("the receipt's log root does not follow from its previous root")
    return dict(body)
