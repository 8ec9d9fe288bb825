"""The one front door to `cryptography` (as `allmydata.crypto` is for Tahoe-LAFS).

Owns: Ed25519 signatures, always over a domain tag (`sign(key, kind, body)` signs
`b"cbt-<kind>-v<N>|" + body`, so no signed thing can pass for another kind or another
version), X25519 key wrapping (HPKE base mode, RFC 9180: DHKEM(X25519, HKDF-SHA256),
HKDF-SHA256, AES-256-GCM, with the older hand-made wrap still read), HKDF, the STREAM
chunked AEAD (AES-256-GCM, nonce = 11-byte big-endian chunk counter + 1-byte last-chunk flag,
as in age, so truncation, reordering and appending all fail authentication), private-key files
(mode 0600, optional passphrase via `BestAvailableEncryption`) and zeroising of bytearrays.

Every check raises `CryptoError` (a `PaperpackError`), never returns False. No other module
imports `cryptography`.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from paperpack.errors import PaperpackError

__all__ = [
    "SIGNING_KINDS",
    "TAG_SIZE",
    "CryptoError",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "StreamDecryptor",
    "StreamEncryptor",
    "X25519PrivateKey",
    "X25519PublicKey",
    "constant_time_equal",
    "generate_signing_key",
    "generate_wrapping_key",
    "hkdf",
    "load_private_key",
    "public_key_text",
    "random_bytes",
    "read_signing_public",
    "read_wrapping_public",
    "sign",
    "signing_tag",
    "unwrap",
    "verify",
    "verify_undomained",
    "wrap",
    "write_private_key",
    "zeroise",
]

KEY_SIZE = 32  # AES-256
TAG_SIZE = 16  # GCM tag appended to every chunk
NONCE_SIZE = 12
MAX_CHUNKS = 2**88  # 11-byte counter; never reached, but checked rather than wrapped
WRAP_FORMAT = b"CBTW\x02"  # magic + version of a wrapped blob: 2 is HPKE
WRAP_INFO = b"cbt-wrap-hpke-v2"  # HPKE info = WRAP_INFO | context
LEGACY_WRAP_FORMAT = b"CBTW\x01"  # version 1: the hand-made X25519 wrap, still read
LEGACY_WRAP_INFO = b"cbt-wrap-x25519-v1"
_HPKE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_HPKE_ENC_SIZE = 32  # the encapsulated X25519 key in front of the ciphertext

# Every kind of thing the project signs, with the version N of its current tag
# `cbt-<kind>-v<N>`. N is the format version of the signed artifact; a kind's N rises when
# the meaning of its signed bytes changes. docs/sealing.md lists the history.
SIGNING_KINDS: dict[str, int] = {
    "manifest": 2,  # package manifest (paperpack.manifest), package format 2
    "release-record": 2,  # the time-release record (paperpack.release), record format 2
    "release-request": 2,  # a venue asking the centre for its release (request 2)
    "receipt": 1,  # the centre's upload receipt
    "response": 3,  # response package header, format 3 (formats 1 and 2: tag v1)
    "delay-approval": 2,  # the centre's approval of a start delay over 30 min (approval 2)
    "release-log": 1,  # each entry of the authority's release log (paperpack.release_log)
    "upload-request": 1,  # a venue's signed upload call (server.protocol.upload_auth)
}


class CryptoError(PaperpackError):
    """A signature, tag, key or key file did not check out."""


def random_bytes(size: int) -> bytearray:
    """`size` bytes from the OS CSPRNG, in a bytearray so they can be zeroised."""
    return bytearray(os.urandom(size))


def zeroise(*buffers: bytearray) -> None:
    """Overwrite key material in place. Python may hold other copies; this removes ours."""
    for buf in buffers:
        buf[:] = bytes(len(buf))


def constant_time_equal(a: bytes | bytearray, b: bytes | bytearray) -> bool:
    return hmac.compare_digest(bytes(a), bytes(b))


def hkdf(
    ikm: bytes | bytearray, *, info: bytes, length: int = KEY_SIZE, salt: bytes | None = None
) -> bytearray:
    """HKDF-SHA256 (RFC 5869) into a bytearray."""
    return bytearray(HKDF(hashes.SHA256(), length, salt, info).derive(bytes(ikm)))


# --- signing (Ed25519) ------------------------------------------------------------------


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def signing_tag(kind: str, version: int | None = None) -> bytes:
    """The domain tag `cbt-<kind>-v<N>` (current N unless `version`), as signed: with its `|`."""
    current = SIGNING_KINDS.get(kind)
    if current is None:
        raise CryptoError(f"{kind!r} is not a signing kind (known: {', '.join(SIGNING_KINDS)})")
    chosen = current if version is None else version
    if not 1 <= chosen <= current:
        raise CryptoError(f"signing kind {kind} has no version {chosen} (current: {current})")
    return f"cbt-{kind}-v{chosen}|".encode("ascii")


def sign(key: Ed25519PrivateKey, kind: str, body: bytes, *, version: int | None = None) -> bytes:
    """Ed25519 over `cbt-<kind>-v<N>|` + `body`, N the kind's current version unless
    `version` names an older tag (for a format that still specifies it, and for tests and
    vector generators that make artifacts of an older format)."""
    return key.sign(signing_tag(kind, version) + body)


def verify(
    public_key: Ed25519PublicKey,
    kind: str,
    body: bytes,
    signature: bytes,
    *,
    version: int | None = None,
) -> None:
    """Raise CryptoError unless `signature` is `public_key`'s over the tagged `body`.

    `version` names an older tag of the kind, for reading artifacts of an older format that
    already carried one (response packages 1 and 2 were signed under `cbt-response-v1`)."""
    _verify_raw(public_key, signature, signing_tag(kind, version) + body)


def verify_undomained(public_key: Ed25519PublicKey, body: bytes, signature: bytes) -> None:
    """Raise CryptoError unless `signature` is over `body` alone, with no domain tag.

    Only for artifacts of a format made before domain tags (package format 1, release record
    format 1, release request 1): the caller decides the artifact is of such a version, and
    refuses a newer one signed this way. Nothing signs without a tag any more."""
    _verify_raw(public_key, signature, body)


def _verify_raw(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        raise CryptoError("the Ed25519 signature does not match the signed bytes") from None


# --- key wrapping (HPKE; the hand-made X25519 wrap of version 1 is still read) ----------


def generate_wrapping_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def _raw_public(key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def wrap(
    recipient: X25519PublicKey,
    plaintext: bytes | bytearray,
    *,
    context: bytes,
    version: int = 2,
) -> bytes:
    """Encrypt `plaintext` to `recipient`; `context` (e.g. session|venue) must match on unwrap.

    Layout: `CBTW` + version 2 (5) | HPKE enc (32) | HPKE ciphertext + tag. HPKE base mode
    (RFC 9180) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM and
    info = "cbt-wrap-hpke-v2" | context, so a blob cannot be replayed to another recipient
    or in another context. `version=1` writes the old wrap, for a format that still
    specifies it (and for tests that make old artifacts).
    """
    if version == 1:
        return _wrap_legacy(recipient, plaintext, context)
    if version != 2:
        raise CryptoError(f"there is no key wrap version {version} (1 and 2 exist)")
    return WRAP_FORMAT + _HPKE.encrypt(bytes(plaintext), recipient, info=_info(context))


def _info(context: bytes) -> bytes:
    return WRAP_INFO + b"|" + context


def unwrap(
    private_key: X25519PrivateKey, blob: bytes, *, context: bytes, legacy: bool = False
) -> bytearray:
    """Decrypt a `wrap` blob with the recipient's private key; CryptoError if not for it.

    `legacy=True` also reads version 1 (the hand-made X25519 wrap): only for artifacts of a
    format made before HPKE, or files with no version of their own; otherwise a version 1
    blob is refused, so a new-format artifact cannot carry the old wrap."""
    if blob.startswith(LEGACY_WRAP_FORMAT):
        if not legacy:
            raise CryptoError(
                "the wrapped key uses the old X25519 wrap (version 1) inside a format that"
                " requires HPKE (version 2): the artifact is damaged or forged"
            )
        return _unwrap_legacy(private_key, blob, context)
    if len(blob) < len(WRAP_FORMAT) + _HPKE_ENC_SIZE + TAG_SIZE or not blob.startswith(WRAP_FORMAT):
        raise CryptoError("the wrapped key is not a cbt key wrap (bad magic or too short)")
    try:
        return bytearray(_HPKE.decrypt(blob[len(WRAP_FORMAT) :], private_key, info=_info(context)))
    except (InvalidTag, ValueError):
        raise CryptoError(
            "the wrapped key does not open with this private key: it was wrapped to another key"
            " or for another session/venue"
        ) from None


def _wrap_legacy(recipient: X25519PublicKey, plaintext: bytes | bytearray, context: bytes) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    eph_pub = _raw_public(ephemeral.public_key())
    shared = bytearray(ephemeral.exchange(recipient))
    salt = eph_pub + _raw_public(recipient)
    key = hkdf(shared, salt=salt, info=LEGACY_WRAP_INFO + b"|" + context)
    try:
        sealed = AESGCM(bytes(key)).encrypt(bytes(NONCE_SIZE), bytes(plaintext), LEGACY_WRAP_FORMAT)
    finally:
        zeroise(shared, key)
    return LEGACY_WRAP_FORMAT + eph_pub + sealed


def _unwrap_legacy(private_key: X25519PrivateKey, blob: bytes, context: bytes) -> bytearray:
    """Version 1: ephemeral X25519 (32) | AES-256-GCM under HKDF(shared, salt = ephemeral pub
    | recipient pub, info = "cbt-wrap-x25519-v1" | context), nonce zero, AD the magic."""
    magic = LEGACY_WRAP_FORMAT
    if len(blob) < len(magic) + 32 + TAG_SIZE:
        raise CryptoError("the wrapped key is not a cbt key wrap (bad magic or too short)")
    eph_pub = blob[len(magic) : len(magic) + 32]
    try:
        shared = bytearray(private_key.exchange(X25519PublicKey.from_public_bytes(eph_pub)))
    except ValueError:
        raise CryptoError("the wrapped key holds an invalid X25519 public key") from None
    recipient_pub = _raw_public(private_key.public_key())
    key = hkdf(shared, salt=eph_pub + recipient_pub, info=LEGACY_WRAP_INFO + b"|" + context)
    try:
        return bytearray(
            AESGCM(bytes(key)).decrypt(bytes(NONCE_SIZE), blob[len(magic) + 32 :], magic)
        )
    except InvalidTag:
        raise CryptoError(
            "the wrapped key does not open with this private key: it was wrapped to another key"
            " or for another session/venue"
        ) from None
    finally:
        zeroise(shared, key)


# --- STREAM chunked AEAD ----------------------------------------------------------------


def _stream_nonce(counter: int, last: bool) -> bytes:
    if counter >= MAX_CHUNKS:
        raise CryptoError("too many chunks for one STREAM key")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class StreamEncryptor:
    """Encrypt a stream chunk by chunk; the caller marks the final chunk `last=True`."""

    def __init__(self, key: bytearray, associated_data: bytes = b"") -> None:
        self._aead = AESGCM(bytes(key))
        self._ad = associated_data
        self._counter = 0
        self._finished = False

    def encrypt(self, chunk: bytes, *, last: bool) -> bytes:
        if self._finished:
            raise CryptoError("the STREAM is already finished")
        out = self._aead.encrypt(_stream_nonce(self._counter, last), chunk, self._ad)
        self._counter += 1
        self._finished = last
        return out


class StreamDecryptor:
    """Decrypt STREAM chunks in order; a wrong, reordered, truncated or extended chunk fails."""

    def __init__(self, key: bytearray, associated_data: bytes = b"") -> None:
        self._aead = AESGCM(bytes(key))
        self._ad = associated_data
        self._counter = 0
        self._finished = False

    def decrypt(self, chunk: bytes, *, last: bool) -> bytes:
        if self._finished:
            raise CryptoError("data follows the final STREAM chunk")
        try:
            out = self._aead.decrypt(_stream_nonce(self._counter, last), chunk, self._ad)
        except InvalidTag:
            raise CryptoError(
                f"encrypted chunk {self._counter} fails authentication"
                " (corrupt, reordered, truncated or under another key)"
            ) from None
        self._counter += 1
        self._finished = last
        return out


def decrypt_chunks(key: bytearray, chunks: Iterator[tuple[bytes, bool]]) -> Iterator[bytes]:
    """Decrypt `(chunk, is_last)` pairs in order; raises if the stream ends before `last`."""
    decryptor = StreamDecryptor(key)
    finished = False
    for chunk, last in chunks:
        yield decryptor.decrypt(chunk, last=last)
        finished = last
    if not finished:
        raise CryptoError("the encrypted stream is truncated: its final chunk is missing")


# --- key files --------------------------------------------------------------------------


def public_key_text(key: X25519PublicKey | Ed25519PublicKey) -> str:
    """A public key as one copy-pastable line: base64 of the 32 raw bytes."""
    return base64.b64encode(_raw_public(key)).decode("ascii")


def _raw_from_text(text: str, what: str) -> bytes:
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise CryptoError(f"the {what} public key is not a valid PEM public key") from None
        if not isinstance(key, X25519PublicKey | Ed25519PublicKey):
            raise CryptoError(f"the {what} public key is of the wrong type")
        return _raw_public(key)
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (ValueError, UnicodeEncodeError):
        raise CryptoError(f"the {what} public key is not base64 (expected 44 characters)") from None
    if len(raw) != 32:
        raise CryptoError(f"the {what} public key must be 32 bytes, got {len(raw)}")
    return raw


def read_wrapping_public(text: str, what: str = "X25519") -> X25519PublicKey:
    """Parse an X25519 public key (base64 of 32 raw bytes, or PEM)."""
    try:
        return X25519PublicKey.from_public_bytes(_raw_from_text(text, what))
    except ValueError:
        raise CryptoError(f"the {what} public key is not a valid X25519 key") from None


def read_signing_public(text: str, what: str = "Ed25519") -> Ed25519PublicKey:
    """Parse an Ed25519 public key (base64 of 32 raw bytes, or PEM)."""
    try:
        return Ed25519PublicKey.from_public_bytes(_raw_from_text(text, what))
    except ValueError:
        raise CryptoError(f"the {what} public key is not a valid Ed25519 key") from None


def write_private_key(
    path: Path, key: Ed25519PrivateKey | X25519PrivateKey, passphrase: bytes | None = None
) -> None:
    """Write a PKCS#8 PEM private key with mode 0600 (created so, never widened later)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def load_private_key(
    path: Path, passphrase: bytes | None = None
) -> Ed25519PrivateKey | X25519PrivateKey:
    """Read a private key file written by `write_private_key`."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise CryptoError(f"cannot read private key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(pem, passphrase or None)
    except TypeError:
        if passphrase:
            raise CryptoError(
                f"{path} is not passphrase-protected: drop --passphrase-file"
            ) from None
        raise CryptoError(f"{path} is passphrase-protected: pass --passphrase-file") from None
    except ValueError:
        raise CryptoError(
            f"cannot load private key {path}: wrong passphrase or not a PEM private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise CryptoError(f"{path} holds a key of the wrong type (expected Ed25519 or X25519)")
    return key
