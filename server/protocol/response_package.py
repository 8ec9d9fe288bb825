"""The response package: a venue's answers for one session, sealed for the centre.

Owns the file format and the two functions around it: `build_response_package` (venue side)
and `open_response_package` / `verify_response_package` (centre side). The contents are
plain data (journals, final answers, variants served, seating, incidents, violations,
absences, time grants, pauses, an audit excerpt); collecting them from the venue tables is
`server.venue.export`'s job.

Layout (all integers big-endian):

    magic  b"CBTRESP" + version byte (8)
    header length (4) | header: canonical JSON (format version, session, venue, created_at,
                        export_seq, signer fingerprint, wrapped content key, sizes, payload hash)
    signature (64): Ed25519 by the venue key over b"cbt-response-v3|" + header (format 3;
                    formats 1 and 2 were signed over b"cbt-response-v1|" + header)
    payload: zstd(canonical JSON of the contents) followed (format 2) by a second zstd
             frame, of the canonical JSON of the evidence (journals, audit log;
             `evidence_compressed_size` bytes, 0 for none), encrypted together with the
             STREAM AEAD under a fresh content key; the key is wrapped to the centre's
             X25519 key (format 3: HPKE, `crypto.wrap`; formats 1 and 2: the version 1
             wrap). Format 1 had the contents alone. Scoring decompresses and decodes
             only the contents: the evidence, most of the bytes of a real export, only when
             its journals are checked (once per package, server.scoring.journals).

The signature covers the header, and the header holds the payload's SHA-256, so one
signature check plus one hash covers every byte. `export_seq` rises with every export, so
the centre refuses a replayed older package (`server.central.storage.PackageReplayed`).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from paperpack import crypto
from paperpack.canonical import canonical_json, strict_loads
from paperpack.compress import compress_stream, decompress_stream
from paperpack.errors import PaperpackError
from server.errors import CbtError

MAGIC = b"CBTRESP\x01"
FORMAT = "cbt-response"
FORMAT_VERSION = 3  # the signature under cbt-response-v3, the content key in an HPKE wrap
READABLE_VERSIONS = (1, 2, 3)  # 1: contents only, journals inline; 1 and 2: tag v1, wrap 1
SIGNING_KIND = "response"
CHUNK_SIZE = 1 << 20  # plaintext bytes per STREAM chunk
MAX_HEADER = 64 * 1024  # a header is a few hundred bytes; anything larger is not ours
MAX_PLAINTEXT = 4 << 30  # 4 GiB: far above 3,000 candidates' journals, refuses absurd claims
SIGNATURE_SIZE = 64
_LEN = struct.Struct(">I")


class ResponsePackageError(CbtError):
    """A response package was refused; the subclass and message say why."""


class PackageMalformed(ResponsePackageError):
    """Not a response package of a version this code reads, or its header is inconsistent."""


class PackageSignerUnknown(ResponsePackageError):
    """The package is signed by a key other than the venue's registered key."""


class PackageTampered(ResponsePackageError):
    """Bytes changed after signing: the signature or the payload hash does not check out."""


class PackageUnreadable(ResponsePackageError):
    """The payload does not decrypt or decompress (wrapped to another centre key?)."""


@dataclass(frozen=True)
class ResponseHeader:
    """The signed, readable part of a package: who, what session, which export, sizes."""

    session_id: str
    venue_id: str
    created_at: str  # ISO-8601 UTC, venue clock
    export_seq: int  # rises with every export of this venue; replays of older ones are refused
    signer: str  # hex SHA-256 of the venue's raw Ed25519 public key
    wrapped_key: str  # base64: the content key wrapped to the centre's X25519 key
    plaintext_size: int  # bytes of the canonical JSON contents
    compressed_size: int  # bytes after zstd
    payload_size: int  # bytes of the encrypted payload
    payload_sha256: str  # hex SHA-256 of the encrypted payload
    chunk_size: int  # plaintext bytes per STREAM chunk
    summary: dict[str, Any]  # counts for the centre's status page and retention, see summarise()
    format_version: int = FORMAT_VERSION
    evidence_size: int = 0  # bytes of the evidence's canonical JSON (0: no evidence)
    evidence_compressed_size: int = 0  # bytes of its zstd frame, the end of the compressed

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **self.__dict__}


@dataclass(frozen=True)
class OpenedPackage:
    """A verified and decrypted package."""

    header: ResponseHeader
    contents: dict[str, Any]
    package_sha256: str
    evidence_frame: bytes = b""  # the evidence, still compressed (see `evidence`)

    def evidence(self) -> dict[str, Any]:
        """The evidence document (journals, audit log), decoded now; {} when there is none."""
        if not self.evidence_frame:
            return {}
        try:
            plain = b"".join(
                decompress_stream(_chunks(self.evidence_frame, 1 << 16), self.header.evidence_size)
            )
            evidence = orjson.loads(plain)
        except (PaperpackError, ValueError) as exc:
            raise PackageUnreadable(
                f"the package's evidence (journals) does not decode: {exc}; export the session "
                "again at the venue and upload it"
            ) from None
        if not isinstance(evidence, dict):
            raise PackageMalformed(
                "the package's evidence (journals) is not a JSON object: a venue software "
                "fault; export the session again at the venue and report its version"
            )
        return evidence


def key_fingerprint(public_key: crypto.Ed25519PublicKey) -> str:
    """Hex SHA-256 of a raw Ed25519 public key: how a header names its signer."""
    return hashlib.sha256(base64.b64decode(crypto.public_key_text(public_key))).hexdigest()


def _list(contents: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = contents.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def summarise(contents: dict[str, Any]) -> dict[str, Any]:
    """The counts a header carries, so the centre can accept without decoding the JSON."""
    attempts, violations = _list(contents, "attempts"), _list(contents, "violations")
    session = contents.get("session")
    return {
        "attempts": len(attempts),
        "submitted": sum(1 for a in attempts if a.get("submission")),
        "absent": len(_list(contents, "absences")),
        "violations": len(violations),
        "incidents": len(_list(contents, "incidents")),
        "serious_violation": any(bool(v.get("serious")) for v in violations),
        "unlocked_at": session.get("unlocked_at") if isinstance(session, dict) else None,
    }


def _context(session_id: str, venue_id: str, export_seq: int) -> bytes:
    return canonical_json(
        {"purpose": "cbt-response-payload", "session_id": session_id, "venue_id": venue_id,
         "export_seq": export_seq}
    )  # fmt: skip


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _encrypt(plain: bytes, key: bytearray, context: bytes) -> bytes:
    encryptor = crypto.StreamEncryptor(key, context)
    pieces = list(_chunks(plain, CHUNK_SIZE)) or [b""]
    return b"".join(
        encryptor.encrypt(piece, last=index == len(pieces) - 1)
        for index, piece in enumerate(pieces)
    )


def _decrypt(payload: bytes, key: bytearray, context: bytes, compressed_size: int) -> bytes:
    decryptor = crypto.StreamDecryptor(key, context)
    sealed = CHUNK_SIZE + crypto.TAG_SIZE
    pieces = list(_chunks(payload, sealed)) or [b""]
    out = [decryptor.decrypt(piece, last=i == len(pieces) - 1) for i, piece in enumerate(pieces)]
    plain = b"".join(out)
    if len(plain) != compressed_size:
        raise PackageUnreadable("the decrypted payload is not the signed size")
    return plain


def build_response_package(
    contents: dict[str, Any],
    *,
    evidence: dict[str, Any] | None = None,
    session_id: str,
    venue_id: str,
    export_seq: int,
    created_at: str,
    venue_key: crypto.Ed25519PrivateKey,
    central_wrap_public: crypto.X25519PublicKey,
) -> bytes:
    """Seal `contents` and `evidence` (JSON-able) for the centre: compress, encrypt, sign.
    Returns the file."""
    if export_seq < 1:
        raise PackageMalformed("export_seq starts at 1 and rises with every export")
    plain = canonical_json({**contents, "session_id": session_id, "venue_id": venue_id})
    evidence_json = canonical_json(evidence) if evidence else b""
    evidence_frame = b"".join(compress_stream(_chunks(evidence_json, CHUNK_SIZE)))
    compressed = b"".join(compress_stream(_chunks(plain, CHUNK_SIZE)))
    if evidence_json:
        compressed += evidence_frame
    context = _context(session_id, venue_id, export_seq)
    key = crypto.random_bytes(32)
    try:
        payload = _encrypt(compressed, key, context)
        wrapped = crypto.wrap(central_wrap_public, key, context=context)
    finally:
        crypto.zeroise(key)
    header = ResponseHeader(
        session_id=session_id,
        venue_id=venue_id,
        created_at=created_at,
        export_seq=export_seq,
        signer=key_fingerprint(venue_key.public_key()),
        wrapped_key=base64.b64encode(wrapped).decode("ascii"),
        plaintext_size=len(plain),
        compressed_size=len(compressed),
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        chunk_size=CHUNK_SIZE,
        summary=summarise(contents),
        evidence_size=len(evidence_json),
        evidence_compressed_size=len(evidence_frame) if evidence_json else 0,
    )
    header_bytes = canonical_json(header.to_dict())
    signature = crypto.sign(venue_key, SIGNING_KIND, header_bytes)
    return MAGIC + _LEN.pack(len(header_bytes)) + header_bytes + signature + payload


def _split(data: bytes) -> tuple[bytes, ResponseHeader, bytes, bytes]:
    """Cut a package into header bytes, parsed header, signature and payload (no checks)."""
    if not data.startswith(MAGIC[:7]):
        raise PackageMalformed("not a cbt response package (bad magic): was the right file chosen?")
    if data[7:8] != MAGIC[7:8]:
        raise PackageMalformed(
            f"response package format version {data[7]} is not supported (this server reads "
            f"{MAGIC[7]}): upgrade the central server"
        )
    if len(data) < len(MAGIC) + _LEN.size:
        raise PackageMalformed("the response package is truncated before its header")
    (length,) = _LEN.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    if length > MAX_HEADER or len(data) < start + length + SIGNATURE_SIZE:
        raise PackageMalformed("the response package is truncated or its header length is corrupt")
    header_bytes = data[start : start + length]
    signature = data[start + length : start + length + SIGNATURE_SIZE]
    payload = data[start + length + SIGNATURE_SIZE :]
    return header_bytes, _parse_header(header_bytes), signature, payload


def _parse_header(header_bytes: bytes) -> ResponseHeader:
    try:
        raw = strict_loads(header_bytes)  # a key twice: DuplicateKey, a ValueError naming it
        if raw.pop("format") != FORMAT:
            raise ValueError("format")
        header = ResponseHeader(**raw)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PackageMalformed(f"the response package header is not valid ({exc})") from None
    numbers = (
        header.export_seq,
        header.plaintext_size,
        header.compressed_size,
        header.payload_size,
        header.evidence_size,
        header.evidence_compressed_size,
    )
    if (
        not all(isinstance(n, int) and n >= 0 for n in numbers)
        or header.plaintext_size > MAX_PLAINTEXT
    ):
        raise PackageMalformed("the response package header holds an impossible size or sequence")
    if not isinstance(header.summary, dict):
        raise PackageMalformed("the response package header's summary is not an object")
    if (
        (header.evidence_size > 0) != (header.evidence_compressed_size > 0)
        or header.evidence_compressed_size >= header.compressed_size
        or header.evidence_size > MAX_PLAINTEXT
    ):
        raise PackageMalformed(
            "the response package header's evidence sizes do not fit the payload: the venue "
            "software made a broken package; export the session again and report its version"
        )
    if header.format_version not in READABLE_VERSIONS or header.chunk_size != CHUNK_SIZE:
        raise PackageMalformed(
            f"response package format version {header.format_version} is not supported"
        )
    return header


def read_header(data: bytes) -> ResponseHeader:
    """The header, parsed but NOT verified: only to find which venue key to verify with."""
    return _split(data)[1]


def head_length(data: bytes) -> int:
    """How many bytes the package's head has: magic, header length, header and signature
    (what `verify_package_head` checks; the payload follows)."""
    header_bytes = _split(data)[0]
    return len(MAGIC) + _LEN.size + len(header_bytes) + SIGNATURE_SIZE


def verify_package_head(head: bytes, venue_public: crypto.Ed25519PublicKey) -> ResponseHeader:
    """Check the signer and the signature of a package's head (its first `head_length` bytes;
    more may follow and are ignored): what the centre checks before it stores any byte."""
    header_bytes, header, signature, _ = _split(head)
    _check_signature(header_bytes, header, signature, venue_public)
    return header


def verify_response_package(data: bytes, venue_public: crypto.Ed25519PublicKey) -> ResponseHeader:
    """Check the signer, the signature and the payload hash; raise unless all hold."""
    header_bytes, header, signature, payload = _split(data)
    _check_signature(header_bytes, header, signature, venue_public)
    if (
        len(payload) != header.payload_size
        or hashlib.sha256(payload).hexdigest() != header.payload_sha256
    ):
        raise PackageTampered(
            "the encrypted payload does not match the hash in the signed header: the file was "
            "altered or truncated after signing; upload the venue's copy again"
        )
    return header


def _check_signature(
    header_bytes: bytes,
    header: ResponseHeader,
    signature: bytes,
    venue_public: crypto.Ed25519PublicKey,
) -> None:
    expected = key_fingerprint(venue_public)
    if header.signer != expected:
        raise PackageSignerUnknown(
            f"the package names signer {header.signer[:16]}, not venue {header.venue_id}'s "
            f"registered key {expected[:16]}: it was signed by another venue's key; "
            "check the venue registry or the venue's key"
        )
    try:
        crypto.verify(
            venue_public, SIGNING_KIND, header_bytes, signature, version=_tag_version(header)
        )
    except crypto.CryptoError:
        raise PackageTampered(
            f"the signature of venue {header.venue_id} does not match the package header: "
            "the file was altered after signing; export it again at the venue"
        ) from None


def _tag_version(header: ResponseHeader) -> int:
    """The version of the domain tag a header of this format is signed under: formats 1 and 2
    under cbt-response-v1, format 3 under cbt-response-v3. The version is inside the signed
    header, so a header claiming another format fails the signature check."""
    return 1 if header.format_version < 3 else header.format_version


def _content_key(
    data: bytes, venue_public: crypto.Ed25519PublicKey, central_wrap_key: crypto.X25519PrivateKey
) -> tuple[ResponseHeader, bytearray]:
    """Verify, then unwrap the content key with the centre's X25519 key."""
    header = verify_response_package(data, venue_public)
    context = _context(header.session_id, header.venue_id, header.export_seq)
    try:
        key = crypto.unwrap(
            central_wrap_key,
            base64.b64decode(header.wrapped_key),
            context=context,
            legacy=header.format_version < 3,  # formats 1 and 2 used the version 1 wrap
        )
    except (PaperpackError, ValueError):
        raise PackageUnreadable(
            "the content key does not unwrap with this centre's X25519 key: the package was "
            "sealed for another authority; check the venue's configured central key"
        ) from None
    return header, key


def _compressed(
    data: bytes, venue_public: crypto.Ed25519PublicKey, central_wrap_key: crypto.X25519PrivateKey
) -> tuple[ResponseHeader, bytes]:
    """Verify, unwrap the content key and decrypt: the authenticated zstd payload."""
    header, key = _content_key(data, venue_public, central_wrap_key)
    context = _context(header.session_id, header.venue_id, header.export_seq)
    try:
        return header, _decrypt(_split(data)[3], key, context, header.compressed_size)
    except PaperpackError as exc:
        raise PackageUnreadable(f"the payload does not decrypt: {exc}") from None
    finally:
        crypto.zeroise(key)


def check_response_package(
    data: bytes, venue_public: crypto.Ed25519PublicKey, central_wrap_key: crypto.X25519PrivateKey
) -> ResponseHeader:
    """What the upload endpoint checks before it accepts: the venue's signature over the
    header, the payload's hash in it, and that the content key unwraps with this centre's
    key (an authenticated wrap). Decrypting, decompressing and decoding the contents is left
    to whoever reads them (`open_response_package`)."""
    header, key = _content_key(data, venue_public, central_wrap_key)
    crypto.zeroise(key)
    return header


def open_response_package(
    data: bytes, venue_public: crypto.Ed25519PublicKey, central_wrap_key: crypto.X25519PrivateKey
) -> OpenedPackage:
    """Verify, then decrypt and decompress; the contents come back as plain data, the
    evidence as its undecoded JSON (`OpenedPackage.evidence()` decodes it)."""
    header, compressed = _compressed(data, venue_public, central_wrap_key)
    cut = len(compressed) - header.evidence_compressed_size
    try:
        # Fed in 64 KiB pieces: the zstd reader slices its input, and memory stays bounded.
        plain = b"".join(
            decompress_stream(_chunks(compressed[:cut], 1 << 16), header.plaintext_size)
        )
        contents = orjson.loads(plain)  # orjson: faster than json here
    except (PaperpackError, ValueError) as exc:
        raise PackageUnreadable(f"the payload does not decompress or decode: {exc}") from None
    if not isinstance(contents, dict):
        raise PackageMalformed(
            "the package's contents are not a JSON object: a venue software fault; export the "
            "session again at the venue and report its version"
        )
    if (
        contents.get("session_id") != header.session_id
        or contents.get("venue_id") != header.venue_id
    ):
        raise PackageMalformed("the contents name another session or venue than the signed header")
    return OpenedPackage(header, contents, hashlib.sha256(data).hexdigest(), compressed[cut:])
