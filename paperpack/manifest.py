"""The signed package manifest: its fields, its canonical bytes, its binding and the key.

The manifest is canonical JSON signed with the authority's Ed25519 key (signature in
`manifest.sig`, base64). `parse_manifest` validates every field's type and range and raises
only `ManifestInvalid`, so untrusted bytes never reach the rest of the code unchecked.

Format 3 (written now) is format 2 plus two signed fields: `practice` (true for a practice
package, the dry run of art. 21(3): only the centre decides it, with `paperpack pack
--practice`), `inspection` (the checklist the venue signs off, from the session file) and
`seating`: the centre's seat seed and what the venue needs of the paper before the unlock to
seat candidates (its forms, the item counts of its shuffled sections; art. 20, 21(1)).
Format 2 signs `b"cbt-manifest-v2|" + manifest bytes` (`crypto.sign` with
kind "manifest") and wraps the device secret with HPKE. Format 1 signed the bare bytes and
used the version 1 key wrap; it is still read, and only a manifest that says format 1 may
carry an undomained signature (`verify_manifest` refuses a format 2 one signed that way).

The manifest cannot contain a hash of itself, and the key must be bound to it before the
ciphertext (hence the fragment hashes) exists. So the key binds to `binding`: the SHA-256 of
the *sealed fields*, everything fixed before encryption starts (format, versions, the random
package id, session, subject, venue, window, start, duration, rules, chunk size, fragment and
share parameters, the release commitment, the wrapped device secret). The fields computed
afterwards (sizes, fragment hashes, share set id and commitments, key-commitment tag) are
covered by the signature. The random 128-bit package id makes every binding unique, so the
share set id and commitments derived from it can never be replayed into another package.

    K = HKDF-SHA256(ikm = S_sup | S_time | S_dev, salt = package id,
                    info = "cbt-package-key-v1" | session | venue | binding)  -> 64 bytes
    content key = K[:32];  key-commitment tag = hex(K[32:])
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paperpack.canonical import DuplicateKey, canonical_json, strict_loads
from paperpack.crypto import (
    CryptoError,
    Ed25519PublicKey,
    hkdf,
    public_key_text,
    verify,
    verify_undomained,
    zeroise,
)
from paperpack.errors import ManifestInvalid, SignatureInvalid

FORMAT = "cbt-package"
FORMAT_VERSION = 3  # written by pack: 2 + the signed practice flag and inspection checklist
READABLE_FORMAT_VERSIONS = (1, 2, 3)  # 1: undomained signature, version 1 wrap
TAGGED_FORMAT_VERSIONS = (2, 3)  # signed under the `cbt-manifest-v2` tag
MAX_CHECKLIST_LINES = 50
SEAT_SEED_BYTES = 32
SIGNING_KIND = "manifest"
CIPHER = "AES-256-GCM-STREAM"
COMPRESSION = "zstd"
MAX_PLAIN_SIZE = 8 << 30  # a paper over 8 GiB is refused before anything is decompressed
MAX_MANIFEST_BYTES = 1 << 20
KEY_INFO = b"cbt-package-key-v1"


@dataclass(frozen=True)
class Manifest:
    """A parsed, type-checked manifest; `raw` is the plain data that was signed."""

    raw: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not attributes: the top-level manifest fields.
        try:
            return self.raw[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def not_before(self) -> datetime:
        return datetime.fromisoformat(self.raw["window"]["not_before"])

    @property
    def not_after(self) -> datetime:
        return datetime.fromisoformat(self.raw["window"]["not_after"])

    @property
    def package_id_bytes(self) -> bytes:
        return bytes.fromhex(self.raw["package_id"])

    @property
    def practice(self) -> bool:
        """A practice package (the dry run, art. 21(3)); packages before format 3: never."""
        return bool(self.raw.get("practice", False))

    @property
    def inspection(self) -> list[str]:
        """The inspection checklist the centre signed (empty before format 3)."""
        return list(self.raw.get("inspection", []))

    @property
    def legacy_wrap(self) -> bool:
        """Whether the wrapped secrets of this package use the version 1 wrap (format 1)."""
        return bool(self.raw["format_version"] == 1)

    @property
    def seating(self) -> dict[str, Any] | None:
        """`{seed, forms, shuffled}` of a format 3 manifest (the centre's seat seed, the
        paper's forms, the item counts of its shuffled sections); None before format 3."""
        value = self.raw.get("seating")
        return dict(value) if isinstance(value, dict) else None

    @property
    def upload_key(self) -> str | None:
        """The centre's X25519 upload key as text (the venue seals its answers to it), signed
        in the manifest since 2026-12; None in packages made before."""
        value = self.raw.get("authority", {}).get("upload_key")
        return value if isinstance(value, str) else None

    @property
    def wrapped_device_secret(self) -> bytes:
        return base64.b64decode(self.raw["device"]["wrapped"])

    def stripe_lengths(self) -> list[int]:
        """Length of each ciphertext chunk (= stripe), from the signed sizes."""
        payload = self.raw["payload"]
        chunk, chunks, compressed = (
            payload["chunk_size"],
            payload["chunks"],
            payload["compressed_size"],
        )
        last = compressed - (chunks - 1) * chunk
        return [chunk + 16] * (chunks - 1) + [last + 16]

    def to_bytes(self) -> bytes:
        return canonical_json(self.raw)


def sealed_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The part of a manifest fixed before encryption starts (what the key binds to)."""
    return {
        "format": raw["format"],
        "format_version": raw["format_version"],
        "manifest_version": raw["manifest_version"],
        "package_id": raw["package_id"],
        "session_id": raw["session_id"],
        "subject_code": raw["subject_code"],
        "subject_name": raw["subject_name"],
        "paper_id": raw["paper_id"],
        "kind": raw["kind"],
        "venue_id": raw["venue_id"],
        "venue_name": raw["venue_name"],
        "start": raw["start"],
        "duration_minutes": raw["duration_minutes"],
        "window": raw["window"],
        "rules": raw["rules"],
        "payload": {k: raw["payload"][k] for k in ("chunk_size", "cipher", "compression")},
        "fragments": {k: raw["fragments"][k] for k in ("total", "needed")},
        "shares": {k: raw["shares"][k] for k in ("threshold", "holders", "salt")},
        "release": raw["release"],
        "device": raw["device"],
        # Format 3: sealed too; absent from older formats, whose bindings stay as they were.
        **{key: raw[key] for key in ("practice", "inspection", "seating") if key in raw},
    }


def binding(raw: dict[str, Any]) -> bytes:
    """SHA-256 of the sealed fields: 32 bytes."""
    return hashlib.sha256(canonical_json(sealed_fields(raw))).digest()


def derive_key(
    s_sup: bytearray, s_time: bytearray, s_dev: bytearray, raw: dict[str, Any]
) -> tuple[bytearray, str]:
    """The content key (a bytearray the caller zeroises) and the key-commitment tag."""
    ikm = bytearray(s_sup + s_time + s_dev)
    info = b"|".join([KEY_INFO, raw["session_id"].encode(), raw["venue_id"].encode(), binding(raw)])
    okm = hkdf(ikm, salt=bytes.fromhex(raw["package_id"]), info=info, length=64)
    key, tag = bytearray(okm[:32]), okm[32:].hex()
    zeroise(ikm, okm)
    return key, tag


def release_commitment(raw: dict[str, Any], s_time: bytes | bytearray) -> str:
    """Commitment to the time-release secret, bound to this package, session and venue."""
    parts = [
        b"cbt-release-v1",
        bytes.fromhex(raw["package_id"]),
        raw["session_id"].encode(),
        raw["venue_id"].encode(),
        bytes(s_time),
    ]
    return hashlib.sha256(b"|".join(parts)).hexdigest()


# --- signing ----------------------------------------------------------------------------


def signature_text(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii") + "\n"


def verify_manifest(data: bytes, signature_file: bytes, authority: Ed25519PublicKey) -> None:
    """Raise SignatureInvalid unless `signature_file` is the authority's over `data`: tagged
    `cbt-manifest-v2` for a format 2 manifest, untagged only for a format 1 manifest."""
    try:
        signature = base64.b64decode(signature_file.strip(), validate=True)
    except ValueError:
        raise SignatureInvalid(
            "manifest.sig is not base64: the signature file is damaged"
        ) from None
    if len(signature) != 64:
        raise SignatureInvalid(
            f"manifest.sig holds {len(signature)} bytes, not a 64-byte Ed25519 signature"
        )
    try:
        verify(authority, SIGNING_KIND, data, signature)
    except CryptoError:
        pass
    else:
        # Authentic bytes: their declared version may now be read. A tagged signature over a
        # manifest that says format 1 is refused, so each version has exactly one form.
        if _declared(data, "format_version") not in (*TAGGED_FORMAT_VERSIONS, None):
            raise SignatureInvalid(
                "the manifest carries a format 2 signature but says format version 1:"
                " refuse this package"
            )
        return
    try:
        verify_undomained(authority, data, signature)
    except CryptoError:
        signer = _declared_signer(data)
        if signer is not None and signer != public_key_text(authority):
            raise SignatureInvalid(
                f"the manifest is signed by another key ({signer[:12]}...),"
                f" not the pinned authority key ({public_key_text(authority)[:12]}...):"
                " refuse this package"
            ) from None
        raise SignatureInvalid(
            "the manifest signature does not verify with the pinned authority key:"
            " the manifest was altered after signing, or the signature is forged"
        ) from None
    if _declared(data, "format_version") != 1:
        raise SignatureInvalid(
            "the manifest says package format 2 or 3 but carries an old-style signature without"
            " the cbt-manifest-v2 domain tag: refuse this package and ask the centre"
        )


def _declared(data: bytes, field: str) -> Any:
    """A top-level field of manifest bytes, or None when they do not parse as an object."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return raw.get(field) if isinstance(raw, dict) else None


def _declared_signer(data: bytes) -> str | None:
    try:
        signer = json.loads(data)["authority"]["signing_key"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return signer if isinstance(signer, str) else None


# --- parsing ----------------------------------------------------------------------------


class _Check:
    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def fail(self, field: str, what: str) -> ManifestInvalid:
        return ManifestInvalid(f"manifest field {field} {what}: the package is damaged or forged")

    def obj(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, "must be an object")
        return value

    def get(
        self, parent: dict[str, Any], key: str, field: str, kind: type | tuple[type, ...]
    ) -> Any:
        if key not in parent:
            raise self.fail(f"{field}{key}", "is missing")
        value = parent[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise self.fail(f"{field}{key}", "has the wrong type")
        return value

    def integer(self, parent: dict[str, Any], key: str, field: str, lo: int, hi: int) -> int:
        value: int = self.get(parent, key, field, int)
        if not lo <= value <= hi:
            raise self.fail(f"{field}{key}", f"is out of range ({value} not in {lo}..{hi})")
        return value

    def hexstr(self, parent: dict[str, Any], key: str, field: str, size: int) -> str:
        value: str = self.get(parent, key, field, str)
        try:
            if len(bytes.fromhex(value)) != size or value != value.lower():
                raise ValueError
        except ValueError:
            raise self.fail(f"{field}{key}", f"must be {size * 2} lowercase hex digits") from None
        return value

    def time(self, parent: dict[str, Any], key: str, field: str) -> datetime:
        value = self.get(parent, key, field, str)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(f"{field}{key}", "is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise self.fail(f"{field}{key}", "has no time zone")
        return moment


def parse_manifest(data: bytes) -> Manifest:
    """Parse and type-check manifest bytes; raises ManifestInvalid on anything unexpected."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestInvalid(f"manifest.json is {len(data)} bytes: too large for a manifest")
    try:
        raw = strict_loads(data.decode("utf-8"))
    except DuplicateKey as exc:
        raise ManifestInvalid(
            f"manifest.json is not a valid manifest: {exc}; the package is damaged or forged"
        ) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ManifestInvalid(
            "manifest.json is not valid UTF-8 JSON: the file is damaged"
        ) from None
    c = _Check(raw)
    raw = c.obj(raw, "(top level)")
    if raw.get("format") != FORMAT:
        raise ManifestInvalid("manifest.json is not a cbt package manifest (format field)")
    version = c.integer(raw, "format_version", "", 0, 2**31)
    if version not in READABLE_FORMAT_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_FORMAT_VERSIONS)
        raise ManifestInvalid(
            f"package format version {version} is not supported"
            f" (this software reads {readable}): upgrade the venue software"
            " or ask the centre to re-pack"
        )
    c.integer(raw, "manifest_version", "", 1, 2**31 - 1)
    if version >= 3:
        c.get(raw, "practice", "", bool)
        checklist = c.get(raw, "inspection", "", list)
        if len(checklist) > MAX_CHECKLIST_LINES:
            raise c.fail("inspection", f"has more than {MAX_CHECKLIST_LINES} lines")
        for index, line in enumerate(checklist):
            c.get({"l": line}, "l", f"inspection[{index}]", str)
    c.hexstr(raw, "package_id", "", 16)
    for key in (
        "session_id",
        "subject_code",
        "subject_name",
        "paper_id",
        "kind",
        "venue_id",
        "venue_name",
        "packed_at",
    ):
        c.get(raw, key, "", str)
    start = c.time(raw, "start", "")
    c.integer(raw, "duration_minutes", "", 1, 24 * 60)
    window = c.obj(raw.get("window"), "window")
    not_before, not_after = (
        c.time(window, "not_before", "window."),
        c.time(window, "not_after", "window."),
    )
    if not not_before < not_after:
        raise c.fail("window", "closes before it opens")
    if not not_before <= start:
        raise c.fail("window.not_before", "is after the start")
    rules = c.obj(raw.get("rules"), "rules")
    for name in rules:
        c.integer(rules, name, "rules.", 0, 24 * 60)
    _check_payload(c, raw)
    _check_fragments(c, raw)
    _check_shares(c, raw)
    c.hexstr(c.obj(raw.get("release"), "release"), "commitment", "release.", 32)
    device = c.obj(raw.get("device"), "device")
    for key in ("wrapped", "venue_public_key"):
        try:
            base64.b64decode(c.get(device, key, "device.", str), validate=True)
        except ValueError:
            raise c.fail(f"device.{key}", "is not base64") from None
    c.hexstr(raw, "key_commitment", "", 32)
    signer = c.obj(raw.get("authority"), "authority")
    c.get(signer, "signing_key", "authority.", str)
    if "upload_key" in signer:  # since 2026-12: the centre's X25519 upload key, signed
        upload_key = c.get(signer, "upload_key", "authority.", str)
        try:
            if len(base64.b64decode(upload_key, validate=True)) != 32:
                raise ValueError
        except ValueError:
            raise c.fail("authority.upload_key", "is not a base64 X25519 public key") from None
    _check_v3(c, raw, version)
    return Manifest(raw)


def _check_v3(c: _Check, raw: dict[str, Any], version: int) -> None:
    """The fields format 3 added: `seating` (art. 20, 21(1)); absent before it."""
    if version < 3:
        if "seating" in raw:
            raise c.fail("seating", f"is not part of format {version}")
        return
    seating = c.obj(raw.get("seating"), "seating")
    c.hexstr(seating, "seed", "seating.", SEAT_SEED_BYTES)
    forms = c.get(seating, "forms", "seating.", list)
    if any(not isinstance(f, str) or not f or "#" in f for f in forms):
        raise c.fail("seating.forms", "must be a list of form names (text without '#')")
    if len(set(forms)) != len(forms):
        raise c.fail("seating.forms", "names a form twice")
    shuffled = c.get(seating, "shuffled", "seating.", list)
    for index, count in enumerate(shuffled):
        c.integer({"n": count}, "n", f"seating.shuffled[{index}]", 2, 0xFFFF)


def _check_payload(c: _Check, raw: dict[str, Any]) -> None:
    payload = c.obj(raw.get("payload"), "payload")
    if payload.get("cipher") != CIPHER or payload.get("compression") != COMPRESSION:
        raise c.fail("payload.cipher", f"must be {CIPHER} with {COMPRESSION}")
    chunk = c.integer(payload, "chunk_size", "payload.", 1 << 10, 64 << 20)
    c.integer(payload, "plain_size", "payload.", 0, MAX_PLAIN_SIZE)
    compressed = c.integer(payload, "compressed_size", "payload.", 1, MAX_PLAIN_SIZE)
    chunks = c.integer(payload, "chunks", "payload.", 1, 2**31)
    if chunks != -(-compressed // chunk):
        raise c.fail("payload.chunks", "does not match compressed_size / chunk_size")
    if c.integer(payload, "ciphertext_size", "payload.", 1, 2**40) != compressed + 16 * chunks:
        raise c.fail("payload.ciphertext_size", "does not match compressed_size and chunks")


def _check_fragments(c: _Check, raw: dict[str, Any]) -> None:
    fragments = c.obj(raw.get("fragments"), "fragments")
    total = c.integer(fragments, "total", "fragments.", 1, 255)
    c.integer(fragments, "needed", "fragments.", 1, total)
    hashes = c.get(fragments, "hashes", "fragments.", list)
    sizes = c.get(fragments, "sizes", "fragments.", list)
    if len(hashes) != total or len(sizes) != total:
        raise c.fail("fragments.hashes", f"must list {total} fragments")
    for index in range(total):
        c.hexstr({"h": hashes[index]}, "h", f"fragments.hashes[{index}]", 32)
        c.integer({"s": sizes[index]}, "s", f"fragments.sizes[{index}]", 1, 2**40)


def _check_shares(c: _Check, raw: dict[str, Any]) -> None:
    shares = c.obj(raw.get("shares"), "shares")
    holders = c.integer(shares, "holders", "shares.", 2, 255)
    c.integer(shares, "threshold", "shares.", 2, holders)
    c.get(shares, "set_id", "shares.", str)
    c.hexstr(shares, "salt", "shares.", 16)
    commitments = c.obj(shares.get("commitments"), "shares.commitments")
    if sorted(commitments) != sorted(str(x) for x in range(1, holders + 1)):
        raise c.fail("shares.commitments", f"must hold one commitment for each holder 1..{holders}")
    for x, value in commitments.items():
        c.get({"c": value}, "c", f"shares.commitments.{x}", str)
