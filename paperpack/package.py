"""The venue side of a package: open and verify a package directory, decrypting nothing.

`open_package` checks, in order: the manifest signature against the pinned authority key
(before the manifest is trusted for anything), the manifest's fields and canonical form, its
version against the highest this venue has seen (no rollback), the venue and session it is
bound to, then every fragment on its own: header (magic, version, package, session, venue,
index), size and SHA-256 against the signed manifest. Missing fragments are allowed while
enough remain to rebuild; a present but wrong fragment is always refused, because it means
the package was tampered with or mixed up, and the operator must know.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from paperpack.canonical import canonical_json
from paperpack.crypto import Ed25519PublicKey
from paperpack.errors import (
    FragmentCorrupt,
    ManifestInvalid,
    ManifestRolledBack,
    SignatureInvalid,
    TooFewFragments,
    WrongSession,
    WrongVenue,
)
from paperpack.fragments import FragmentHeader, fragment_name, parse_header
from paperpack.manifest import MAX_MANIFEST_BYTES, Manifest, parse_manifest, verify_manifest

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_FRAGMENT_FILE = re.compile(r"^fragment-(\d{3})\.cbtf$")
_READ = 1 << 20


@dataclass(frozen=True)
class OpenedPackage:
    """A verified package: its manifest and the intact fragments, by index."""

    directory: Path
    manifest: Manifest
    authority_key: Ed25519PublicKey
    fragments: dict[int, Path]
    header_lengths: dict[int, int]

    @property
    def missing(self) -> list[int]:
        return [i for i in range(self.manifest.fragments["total"]) if i not in self.fragments]


def read_manifest_file(directory: Path) -> tuple[bytes, bytes]:
    """The raw manifest and signature file bytes (ManifestInvalid if either is absent)."""
    if not directory.is_dir():
        raise ManifestInvalid(f"{directory} is not a directory: give the package directory")
    try:
        if (directory / MANIFEST).stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestInvalid(f"{MANIFEST} is too large to be a manifest: refuse the package")
        data = (directory / MANIFEST).read_bytes()
    except OSError:
        raise ManifestInvalid(
            f"{directory} holds no {MANIFEST}: this is not a package directory"
        ) from None
    try:
        signature = (directory / SIGNATURE).read_bytes()
    except OSError:
        raise SignatureInvalid(
            f"{directory} holds no {SIGNATURE}: the package is unsigned; refuse it"
        ) from None
    return data, signature


def read_manifest_unverified(directory: Path) -> Manifest:
    """Parse the manifest without checking its signature (for `inspect` only)."""
    data, _ = read_manifest_file(directory)
    return parse_manifest(data)


def verify_signed_manifest(
    data: bytes, signature: bytes, authority_key: Ed25519PublicKey
) -> Manifest:
    """Signature first, then fields, then canonical form."""
    verify_manifest(data, signature, authority_key)
    manifest = parse_manifest(data)
    if canonical_json(manifest.raw) != data:
        raise ManifestInvalid(
            "manifest.json is not in canonical form: it was re-encoded after signing"
        )
    return manifest


def check_binding(
    manifest: Manifest, *, venue_id: str | None, session_id: str | None, highest_seen_version: int
) -> None:
    if venue_id is not None and manifest.venue_id != venue_id:
        raise WrongVenue(
            f"this package is for venue {manifest.venue_id}, not {venue_id}:"
            " ask the centre for this venue's package"
        )
    if session_id is not None and manifest.session_id != session_id:
        raise WrongSession(f"this package is for session {manifest.session_id}, not {session_id}")
    if manifest.manifest_version < highest_seen_version:
        raise ManifestRolledBack(
            f"manifest version {manifest.manifest_version} is older than version"
            f" {highest_seen_version} already seen for session {manifest.session_id} at venue"
            f" {manifest.venue_id}: refused (rollback)"
        )


def _check_header(manifest: Manifest, header: FragmentHeader, name: str) -> None:
    if header.session_id != manifest.session_id:
        raise WrongSession(
            f"{name} belongs to session {header.session_id!r}, not {manifest.session_id}"
        )
    if header.venue_id != manifest.venue_id:
        raise WrongVenue(f"{name} belongs to venue {header.venue_id!r}, not {manifest.venue_id}")
    if header.package_id != manifest.package_id_bytes:
        raise FragmentCorrupt(
            f"{name} belongs to another package of this session and venue (an older pack?)"
        )
    fragments = manifest.fragments
    if (header.total, header.needed) != (fragments["total"], fragments["needed"]):
        raise FragmentCorrupt(
            f"{name}: header says {header.needed} of {header.total}, the manifest otherwise"
        )


def check_fragment(
    manifest: Manifest, path: Path, expected_index: int | None = None
) -> tuple[int, int]:
    """Check one fragment file against the manifest; returns (index, header length).

    Reads the file once, in 1 MiB blocks, so it can run as each fragment arrives.
    """
    name = path.name
    digest = hashlib.sha256()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise FragmentCorrupt(f"{name} cannot be read: {exc.strerror}") from None
    with handle:
        first = handle.read(_READ)
        header, header_length = parse_header(first, name)
        _check_header(manifest, header, name)
        if expected_index is not None and header.index != expected_index:
            raise FragmentCorrupt(
                f"{name} holds fragment {header.index}, not {expected_index}:"
                " fragments were swapped or renamed"
            )
        # The size is checked before hashing, so a truncated or padded file fails at once.
        size, expected_size = (
            os.fstat(handle.fileno()).st_size,
            manifest.fragments["sizes"][header.index],
        )
        if size != expected_size:
            raise FragmentCorrupt(
                f"{name} is {size} bytes, the manifest says {expected_size}: truncated or padded"
            )
        block = first
        while block:
            digest.update(block)
            block = handle.read(_READ)
    index = header.index
    if digest.hexdigest() != manifest.fragments["hashes"][index]:
        raise FragmentCorrupt(
            f"{name} does not match its SHA-256 in the manifest: the fragment is corrupt"
        )
    return index, header_length


def open_package(
    directory: Path,
    authority_public_key: Ed25519PublicKey,
    *,
    highest_seen_version: int = 0,
    venue_id: str | None = None,
    session_id: str | None = None,
) -> OpenedPackage:
    """Verify everything about a package directory and decrypt nothing."""
    data, signature = read_manifest_file(directory)
    manifest = verify_signed_manifest(data, signature, authority_public_key)
    check_binding(
        manifest,
        venue_id=venue_id,
        session_id=session_id,
        highest_seen_version=highest_seen_version,
    )
    total, needed = manifest.fragments["total"], manifest.fragments["needed"]
    fragments: dict[int, Path] = {}
    header_lengths: dict[int, int] = {}
    for path in sorted(directory.iterdir()):
        match = _FRAGMENT_FILE.match(path.name)
        if match is None:
            continue
        named = int(match.group(1))
        if named >= total:
            raise FragmentCorrupt(
                f"{path.name}: the package has only {total} fragments (0..{total - 1})"
            )
        index, header_lengths[named] = check_fragment(manifest, path, named)
        fragments[index] = path
    if len(fragments) < needed:
        absent = ", ".join(fragment_name(i) for i in range(total) if i not in fragments)
        raise TooFewFragments(
            f"only {len(fragments)} of {total} fragments are here and {needed} are needed:"
            f" fetch the missing ones ({absent})"
        )
    return OpenedPackage(directory, manifest, authority_public_key, fragments, header_lengths)
