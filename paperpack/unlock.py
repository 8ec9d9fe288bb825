"""The unlock ceremony's object: shares one at a time, the time release, then the paper.

    opened = open_package(package_dir, authority_key, highest_seen_version=seen)
    unlock = Unlock(opened, device_private_key, now)      # OutsideWindow / WrongVenue here
    unlock.add_share(card_text, holder_login)            # checked on entry
    unlock.add_release(code_or_record, now)              # checked on entry, in the window
    unlock.progress                                      # "2 of 3"
    unlocked = unlock.open(now, seal_to=venue_public)    # the paper without keys
    again = reopen(opened, device_private_key, unlocked.sealed_key)  # after a restart

Every share is checked against its commitment in the signed manifest as it is entered, so a
wrong card is named by its holder number at once; each holder and each login counts once.
Key material (S_dev, S_time, S_sup, K) lives in bytearrays that are overwritten after use.
The window is checked against the signed manifest with the injected time `now`.

`open(now, seal_to=...)` can also seal the opened paper key (K and its commitment) to this
machine's own X25519 key (HPKE, `crypto.wrap`, context `cbt-paper-key-v1|session|venue|
package`). `reopen` opens the same package again from that sealed key alone: no shares, no
release and no window, only this machine's private key. The venue keeps it for the rest of the
session so a restart costs no one time, and destroys it at the session's end (docs/sealing.md,
"Reopening after a restart").
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paperpack import shamir, sharecards
from paperpack.canonical import strict_loads
from paperpack.compress import decompress_stream
from paperpack.crypto import (
    CryptoError,
    X25519PrivateKey,
    X25519PublicKey,
    constant_time_equal,
    decrypt_chunks,
    unwrap,
    wrap,
    zeroise,
)
from paperpack.errors import OutsideWindow, PayloadCorrupt, UnlockIncomplete, WrongVenue
from paperpack.fragments import read_stripes
from paperpack.manifest import Manifest, derive_key
from paperpack.model import Asset, Paper, paper_from_dict
from paperpack.pack import PAYLOAD_FORMAT, PAYLOAD_MAGIC, device_context
from paperpack.package import OpenedPackage
from paperpack.release import parse_record, secret_from_code, secret_from_record


@dataclass(frozen=True)
class UnlockedPaper:
    """What an unlock yields: the paper (no answer keys), variant secret and rules."""

    paper: Paper
    variant_secret: bytes  # seeds per-candidate variants (paperpack.variants)
    rules: dict[str, int]  # the session's rule overrides, in minutes
    manifest: Manifest
    # The paper key (K | key commitment) wrapped to this machine's key, when asked for.
    sealed_key: bytes | None = None


PAPER_KEY_CONTEXT = b"cbt-paper-key-v1"
PAPER_KEY_SIZE = 64  # the content key (32) and the key commitment tag (32)


def paper_key_context(manifest: Manifest) -> bytes:
    """What a sealed paper key is bound to: its purpose, session, venue and package."""
    return b"|".join(
        [
            PAPER_KEY_CONTEXT,
            manifest.session_id.encode(),
            manifest.venue_id.encode(),
            manifest.package_id_bytes,
        ]
    )


def check_window(manifest: Manifest, now: datetime, action: str) -> None:
    """OutsideWindow unless not_before <= now < not_after (timezone-aware `now`)."""
    if now.tzinfo is None:
        raise OutsideWindow("the unlock clock must be timezone-aware")
    if now < manifest.not_before:
        raise OutsideWindow(
            f"cannot {action} before the unlock window opens at {manifest.window['not_before']}"
            f" (now {now.isoformat()}): wait, or check the server clock"
        )
    if now >= manifest.not_after:
        raise OutsideWindow(
            f"cannot {action}: the unlock window closed at {manifest.window['not_after']}"
            f" (now {now.isoformat()}); call the centre"
        )


class Unlock:
    """One venue's unlock in progress (not thread-safe: one ceremony, one object)."""

    def __init__(
        self, opened: OpenedPackage, device_private_key: X25519PrivateKey, now: datetime
    ) -> None:
        self.opened = opened
        self.manifest = opened.manifest
        check_window(self.manifest, now, "start the unlock")
        self._device_key = device_private_key
        m = self.manifest
        try:
            self._s_dev = unwrap(
                device_private_key,
                m.wrapped_device_secret,
                context=device_context(m.session_id, m.venue_id, m.package_id_bytes),
                legacy=m.legacy_wrap,
            )
        except CryptoError:
            raise WrongVenue(
                f"this server's key does not open the package for venue {m.venue_id}: it was sealed"
                " to another venue server's key (wrong machine, or the venue key was re-created)"
            ) from None
        self._shares: dict[int, shamir.Share] = {}
        self._logins: dict[str, int] = {}
        self._s_time: bytearray | None = None
        self._opened = False

    @property
    def threshold(self) -> int:
        return int(self.manifest.shares["threshold"])

    @property
    def progress(self) -> str:
        return f"{len(self._shares)} of {self.threshold}"

    @property
    def holders_entered(self) -> list[int]:
        return sorted(self._shares)

    @property
    def has_release(self) -> bool:
        return self._s_time is not None

    def add_share(self, card_text: str, holder_login: str) -> int:
        """Check one supervisor's share as it is entered; returns the holder number."""
        parsed = sharecards.parse_card(card_text)
        shares = self.manifest.shares
        sharecards.check_share(
            parsed,
            expected_set_id=shares["set_id"],
            commitments={int(x): c for x, c in shares["commitments"].items()},
            salt=bytes.fromhex(shares["salt"]),
        )
        if parsed.holder in self._shares:
            raise sharecards.DuplicateShare(
                f"the share of holder {parsed.holder} is already entered:"
                " another holder must enter theirs",
                holder=parsed.holder,
            )
        if holder_login in self._logins:
            raise sharecards.DuplicateShare(
                f"login {holder_login} already entered the share of holder"
                f" {self._logins[holder_login]}: each supervisor enters one share"
                " under their own login (art. 23)",
                holder=parsed.holder,
            )
        self._shares[parsed.holder] = parsed.share
        self._logins[holder_login] = parsed.holder
        return parsed.holder

    def add_release(self, code_or_record: str | dict[str, Any], now: datetime) -> None:
        """Take the time release, a typed code or a signed record (JSON text or dict), only
        inside the signed window (OutsideWindow otherwise)."""
        check_window(self.manifest, now, "accept the release")
        if isinstance(code_or_record, dict) or code_or_record.lstrip().startswith("{"):
            record = parse_record(code_or_record)
            s_time = secret_from_record(
                self.manifest, record, self._device_key, self.opened.authority_key
            )
        else:
            s_time = secret_from_code(self.manifest, code_or_record)
        if self._s_time is not None:
            zeroise(self._s_time)
        self._s_time = s_time

    def open(self, now: datetime, *, seal_to: X25519PublicKey | None = None) -> UnlockedPaper:
        """Assemble the key, decrypt and decode the paper; refused outside the window.

        With `seal_to` (this machine's X25519 public key) the result also carries the paper
        key sealed to it, for `reopen` after a restart; the bare key never leaves here."""
        if self._opened:
            raise UnlockIncomplete("this unlock has already opened the paper: start a new one")
        check_window(self.manifest, now, "open the paper")
        if len(self._shares) < self.threshold:
            raise UnlockIncomplete(
                f"{self.progress} shares entered: {self.threshold} supervisors must enter theirs"
            )
        if self._s_time is None:
            raise UnlockIncomplete(
                "the time release is missing: enter the code from the centre or fetch it"
            )
        s_sup = bytearray(shamir.combine(list(self._shares.values())))
        key, tag = derive_key(s_sup, self._s_time, self._s_dev, self.manifest.raw)
        zeroise(s_sup)
        try:
            if not constant_time_equal(tag.encode(), self.manifest.key_commitment.encode()):
                raise PayloadCorrupt(
                    "the assembled key does not match the manifest's key commitment"
                )
            unlocked = decode_payload(payload_plaintext(self.opened, key), self.manifest)
            if seal_to is not None:
                material = bytearray(key) + bytes.fromhex(tag)
                try:
                    sealed = wrap(seal_to, material, context=paper_key_context(self.manifest))
                finally:
                    zeroise(material)
                unlocked = dataclasses.replace(unlocked, sealed_key=sealed)
        finally:
            zeroise(key)
        self._opened = True
        self.close()  # the held secrets are not needed again
        return unlocked

    def close(self) -> None:
        """Overwrite the secrets held so far (after open, or when a ceremony is abandoned)."""
        zeroise(self._s_dev)
        if self._s_time is not None:
            zeroise(self._s_time)
        self._shares.clear()


def payload_plaintext(opened: OpenedPackage, key: bytearray) -> Iterator[bytes]:
    """The decrypted, decompressed payload of a verified package under content key `key`."""
    m = opened.manifest
    lengths = m.stripe_lengths()
    stripes = read_stripes(
        opened.fragments,
        opened.header_lengths,
        lengths,
        m.fragments["needed"],
        m.fragments["total"],
    )
    chunks = ((stripe, i == len(lengths) - 1) for i, stripe in enumerate(stripes))
    compressed_length = m.payload["compressed_size"] + 16 * m.payload["chunks"]
    try:
        yield from decompress_stream(decrypt_chunks(key, chunks), m.payload["plain_size"])
    except CryptoError as exc:
        raise PayloadCorrupt(
            f"the payload ({compressed_length} bytes) fails authentication: {exc}"
        ) from None


def reopen(
    opened: OpenedPackage, device_private_key: X25519PrivateKey, sealed_key: bytes
) -> UnlockedPaper:
    """Open the paper again from its key sealed to this machine by `Unlock.open(seal_to=...)`.

    No shares, no release and no window: whoever holds this machine's private key and the
    sealed key can do this, which is why the venue keeps the sealed key only while the
    session runs (docs/sealing.md). `PayloadCorrupt` if the key is not this package's."""
    m = opened.manifest
    try:
        material = unwrap(device_private_key, sealed_key, context=paper_key_context(m))
    except CryptoError as exc:
        raise PayloadCorrupt(
            f"the sealed paper key does not open on this machine for this package: {exc}"
        ) from None
    try:
        if len(material) != PAPER_KEY_SIZE:
            raise PayloadCorrupt("the sealed paper key has the wrong length")
        key = material[:32]
        if not constant_time_equal(material[32:].hex().encode(), m.key_commitment.encode()):
            raise PayloadCorrupt("the sealed paper key does not match the manifest's commitment")
        try:
            return decode_payload(payload_plaintext(opened, key), m)
        finally:
            zeroise(key)
    finally:
        zeroise(material)


class _Reader:
    """Exact-length reads over an iterator of byte pieces (the decompressed payload); each
    byte is copied once, into the piece read (a 4 MiB asset from 1 MiB pieces: one join)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buffer = b""
        self._offset = 0

    def read(self, size: int) -> bytes:
        parts: list[bytes | memoryview] = []
        while size:
            if self._offset >= len(self._buffer):
                piece = next(self._pieces, None)
                if piece is None:
                    raise PayloadCorrupt("the payload ends early: it is shorter than its head says")
                self._buffer, self._offset = piece, 0
                continue
            take = min(size, len(self._buffer) - self._offset)
            parts.append(memoryview(self._buffer)[self._offset : self._offset + take])
            self._offset += take
            size -= take
        return b"".join(parts)

    def at_end(self) -> bool:
        return self._offset >= len(self._buffer) and next(self._pieces, None) is None


def decode_payload(pieces: Iterator[bytes], manifest: Manifest) -> UnlockedPaper:
    """Decode `CBTPAYL1 | u64 head length | head | assets` (see paperpack.pack)."""
    reader = _Reader(pieces)
    if reader.read(len(PAYLOAD_MAGIC)) != PAYLOAD_MAGIC:
        raise PayloadCorrupt("the decrypted payload is not a cbt payload (bad magic)")
    length = int.from_bytes(reader.read(8), "big")
    if length > manifest.payload["plain_size"]:
        raise PayloadCorrupt("the payload head is longer than the whole payload")
    try:
        head = strict_loads(reader.read(length))
        ids = (head["session_id"], head["venue_id"], head["package_id"])
        if head["format"] != PAYLOAD_FORMAT or ids != (
            manifest.session_id,
            manifest.venue_id,
            manifest.package_id,
        ):
            raise PayloadCorrupt("the payload names another session, venue or package")
        assets = tuple(
            Asset(a["name"], a["media_type"], reader.read(int(a["size"]))) for a in head["assets"]
        )
        paper = dataclasses.replace(paper_from_dict(head["paper"]), assets=assets)
        secret = base64.b64decode(head["variant_secret"])
        rules = dict(head["rules"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise PayloadCorrupt(f"the decrypted payload is not a valid paper: {exc}") from None
    if not reader.at_end():
        raise PayloadCorrupt("the payload has bytes after its last asset")
    return UnlockedPaper(paper, secret, rules, manifest)
