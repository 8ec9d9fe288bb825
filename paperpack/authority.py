"""The exam authority's key directory (the centre's secrets at rest).

Layout of `DIR` (created by `paperpack authority init DIR`):

    signing.key   Ed25519 private key, PKCS#8 PEM, mode 0600, optionally passphrase-encrypted
    signing.pub   its public key, base64 of 32 bytes: pinned at every venue
    upload.key    X25519 private key (answer uploads, answer-key records, central secrets)
    upload.pub    its public key
    authority.json  the two public keys (non-secret summary)
    sessions/<session>/<venue>/   central-only material written by `paperpack pack`

The central-only material lives here rather than beside the venue packages in `pack --out`,
because that output directory is what gets copied to venues; keeping the centre's secrets
out of it means a careless copy cannot leak a release secret or an answer key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from paperpack.crypto import (
    CryptoError,
    Ed25519PrivateKey,
    Ed25519PublicKey,
    X25519PrivateKey,
    X25519PublicKey,
    generate_signing_key,
    generate_wrapping_key,
    load_private_key,
    public_key_text,
    read_signing_public,
    write_private_key,
)
from paperpack.errors import PaperpackError

SIGNING_KEY = "signing.key"
SIGNING_PUB = "signing.pub"
UPLOAD_KEY = "upload.key"
UPLOAD_PUB = "upload.pub"


class AuthorityError(PaperpackError):
    """The authority directory is missing, incomplete, or its keys do not load."""


@dataclass(frozen=True)
class Authority:
    """The centre's loaded private keys."""

    directory: Path
    signing_key: Ed25519PrivateKey
    wrapping_key: X25519PrivateKey

    @property
    def signing_public(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @property
    def wrapping_public(self) -> X25519PublicKey:
        return self.wrapping_key.public_key()

    def central_dir(self, session_id: str, venue_id: str) -> Path:
        return self.directory / "sessions" / session_id / venue_id


def init_authority(directory: Path, passphrase: bytes | None = None) -> dict[str, str]:
    """Create the key pairs in `directory` (new or empty); returns the public keys."""
    if directory.exists() and any(directory.iterdir()):
        raise AuthorityError(
            f"{directory} is not empty: choose a new directory for the authority keys"
        )
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    signing = generate_signing_key()
    wrapping = generate_wrapping_key()
    write_private_key(directory / SIGNING_KEY, signing, passphrase)
    write_private_key(directory / UPLOAD_KEY, wrapping, passphrase)
    public = {
        "signing_public_key": public_key_text(signing.public_key()),
        "upload_public_key": public_key_text(wrapping.public_key()),
    }
    (directory / SIGNING_PUB).write_text(public["signing_public_key"] + "\n", encoding="ascii")
    (directory / UPLOAD_PUB).write_text(public["upload_public_key"] + "\n", encoding="ascii")
    (directory / "authority.json").write_text(json.dumps(public, indent=2) + "\n", encoding="ascii")
    for name in (SIGNING_PUB, UPLOAD_PUB, "authority.json"):  # private folder, private files
        os.chmod(directory / name, 0o600)
    return public


def load_authority(directory: Path, passphrase: bytes | None = None) -> Authority:
    """Load both private keys; AuthorityError says which file is missing or wrong."""
    if not (directory / SIGNING_KEY).is_file():
        raise AuthorityError(
            f"{directory} holds no {SIGNING_KEY}: run `paperpack authority init {directory}`"
        )
    try:
        signing = load_private_key(directory / SIGNING_KEY, passphrase)
        wrapping = load_private_key(directory / UPLOAD_KEY, passphrase)
    except CryptoError as exc:
        raise AuthorityError(str(exc)) from None
    if not isinstance(signing, Ed25519PrivateKey) or not isinstance(wrapping, X25519PrivateKey):
        raise AuthorityError(f"{directory}: {SIGNING_KEY} must be Ed25519 and {UPLOAD_KEY} X25519")
    return Authority(directory, signing, wrapping)


def read_authority_public(path: Path) -> Ed25519PublicKey:
    """The pinned signing key: a `signing.pub` file, or an authority directory holding one."""
    if path.is_dir():
        path = path / SIGNING_PUB
    try:
        text = path.read_text(encoding="ascii")
    except OSError as exc:
        raise AuthorityError(
            f"cannot read the authority public key {path}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise AuthorityError(
            f"{path} is not a public key file: give the authority's signing.pub"
        ) from None
    try:
        return read_signing_public(text, "authority signing")
    except CryptoError as exc:
        raise AuthorityError(f"{path}: {exc}") from None


def read_passphrase(path: Path | None) -> bytes | None:
    """The passphrase from a file (first line, without its newline), or None."""
    if path is None:
        return None
    try:
        text = path.read_bytes().splitlines()
    except OSError as exc:
        raise AuthorityError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    if not text or not text[0]:
        raise AuthorityError(f"passphrase file {path} is empty")
    return text[0]
