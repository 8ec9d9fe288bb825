"""Answers in the venue's backups are encrypted (issue 16, F12; art. 46-47).

Backups go to another disk, often removable. What they hold of the candidates' answers is
encrypted to the venue's X25519 key (DIR/keys/venue-wrap.pem, which never goes to the backup
disk) and, once it is pinned (DIR/keys/authority-upload.pub, `cbt venue export --central-key`),
also to the centre's upload key, each with HPKE (`paperpack.crypto.wrap`, context
`cbt-venue-backup-v1|<venue id>`):

- the continuous backup (`continuous.db`): each server run draws a random data key, stores it
  wrapped in the backup's `backup_keys` table, and encrypts every journal row's `responses`
  and every submission's `answers` with AES-256-GCM under it (a random nonce per value; the
  table, column and row number as associated data, so a value cannot be moved to another
  row). Sealed values read `cbtbk1:<key id>:<base64>`. Row numbers, times, seqs, hashes and
  the audit chain stay readable: the backup can be checked and its position known without a
  key, and the hash chains still prove the decrypted answers are the ones saved.
- whole-database copies (the base snapshot `base.db.enc`, `cbt venue backup`'s
  `venue-<time>.db.enc`): the file as a header line (format, venue id, the wrapped data key)
  and AES-256-GCM STREAM chunks (`paperpack.crypto.StreamEncryptor`, the header as associated
  data). The plaintext copy is made on the venue's own disk first and removed after.

`cbt venue restore` opens both with the venue's private key.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from paperpack import crypto
from paperpack.canonical import canonical_json
from server.clock import iso
from server.errors import CbtError
from server.private import private_file

FILE_MAGIC = b"CBTBK1\n"
FILE_FORMAT = "cbt-venue-backup/1"
VALUE_PREFIX = "cbtbk1:"
CONTEXT = b"cbt-venue-backup-v1|"
CHUNK = 1 << 20
SEALED_COLUMNS = {"journal": ("responses",), "submissions": ("answers",)}
CENTRE_KEY_FILE = "authority-upload.pub"  # server.venue.export.CENTRAL_KEY_FILE


class BackupCryptoError(CbtError):
    """A backup cannot be encrypted or opened; the message says which and why."""


@dataclass(frozen=True)
class Recipients:
    """Who can open the venue's backups: the venue, and the centre once its key is pinned."""

    venue_id: str
    venue: crypto.X25519PublicKey
    centre: crypto.X25519PublicKey | None

    @classmethod
    def of(cls, venue_id: str, wrap_public: str, keys_dir: Path) -> Recipients:
        pinned = keys_dir / CENTRE_KEY_FILE
        centre = None
        if pinned.is_file():
            centre = crypto.read_wrapping_public(pinned.read_text(encoding="ascii").strip())
        return cls(venue_id, crypto.read_wrapping_public(wrap_public), centre)

    def wrap(self, data_key: bytes | bytearray) -> dict[str, str | None]:
        context = CONTEXT + self.venue_id.encode()
        sealed = {"venue": crypto.wrap(self.venue, data_key, context=context)}
        if self.centre is not None:
            sealed["centre"] = crypto.wrap(self.centre, data_key, context=context)
        return {k: base64.b64encode(v).decode() for k, v in sealed.items()}


def unwrap(wrapped: dict[str, Any], venue_id: str, private: crypto.X25519PrivateKey) -> bytearray:
    """The data key, opened with the venue's private key (or the centre's upload key)."""
    context = CONTEXT + venue_id.encode()
    for blob_text in wrapped.values():
        try:
            blob = base64.b64decode(str(blob_text), validate=True)
            return crypto.unwrap(private, blob, context=context)
        except (ValueError, crypto.CryptoError):
            continue
    raise BackupCryptoError(
        f"the backup's key does not open with this key (backup of venue {venue_id!r}): it is "
        "another venue's backup, or damaged"
    )


# --- the continuous backup's values ------------------------------------------------------------


class RowSealer:
    """Encrypts the answer columns of the rows the continuous backup copies (one key a run)."""

    def __init__(self, recipients: Recipients) -> None:
        self.recipients = recipients
        self.key_id = 0
        self._aead: AESGCM | None = None

    def prepare(self, conn: sqlite3.Connection) -> None:
        """Draw this run's data key and store it, wrapped, in the backup database."""
        conn.execute(
            "CREATE TABLE IF NOT EXISTS backup_keys (key_id INTEGER PRIMARY KEY,"
            " wrapped TEXT NOT NULL, created_at TEXT NOT NULL)"
        )
        data_key = crypto.random_bytes(32)
        try:
            wrapped = canonical_json(self.recipients.wrap(data_key)).decode()
            cur = conn.execute(
                "INSERT INTO backup_keys (wrapped, created_at) VALUES (?, ?)",
                (wrapped, iso(datetime.now(UTC))),
            )
            self.key_id = int(cur.lastrowid or 0)
            self._aead = AESGCM(bytes(data_key))
        finally:
            crypto.zeroise(data_key)

    def seal_rows(
        self, table: str, columns: list[str], rows: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """The rows (rowid first) with their answer columns encrypted."""
        sealed = SEALED_COLUMNS.get(table)
        if not sealed or not rows:
            return rows
        if self._aead is None:
            raise BackupCryptoError("the backup's key is not prepared")
        at = [(columns.index(c) + 1, c) for c in sealed if c in columns]
        out = []
        for row in rows:
            values = list(row)
            for i, column in at:
                values[i] = self._seal(table, column, int(row[0]), str(values[i]))
            out.append(tuple(values))
        return out

    def _seal(self, table: str, column: str, rowid: int, text: str) -> str:
        assert self._aead is not None
        nonce = os.urandom(12)
        ad = f"{table}|{column}|{rowid}".encode()
        blob = nonce + self._aead.encrypt(nonce, text.encode(), ad)
        return f"{VALUE_PREFIX}{self.key_id}:{base64.b64encode(blob).decode()}"


def row_opener(
    conn: sqlite3.Connection, venue_id: str, private: crypto.X25519PrivateKey
) -> Callable[[str, str, int, Any], Any]:
    """A function (table, column, rowid, value) -> the plaintext value, for the continuous
    backup `conn`; values written before encryption pass through unchanged."""
    keys: dict[int, AESGCM] = {}
    try:
        stored = conn.execute("SELECT key_id, wrapped FROM backup_keys").fetchall()
    except sqlite3.OperationalError:  # a backup from before F12: nothing is sealed
        stored = []
    for key_id, wrapped in stored:
        data_key = unwrap(json.loads(wrapped), venue_id, private)
        keys[int(key_id)] = AESGCM(bytes(data_key))
        crypto.zeroise(data_key)

    def open_value(table: str, column: str, rowid: int, value: Any) -> Any:
        if not isinstance(value, str) or not value.startswith(VALUE_PREFIX):
            return value
        key_id, _, text = value[len(VALUE_PREFIX) :].partition(":")
        try:
            aead = keys[int(key_id)]
            blob = base64.b64decode(text, validate=True)
            ad = f"{table}|{column}|{rowid}".encode()
            return aead.decrypt(blob[:12], blob[12:], ad).decode()
        except (KeyError, ValueError, InvalidTag):
            raise BackupCryptoError(
                f"the continuous backup's {table} row {rowid} ({column}) does not open: "
                "damaged, moved from another row, or its key is missing"
            ) from None

    return open_value


# --- whole files -------------------------------------------------------------------------------


def seal_file(source: Path, target: Path, recipients: Recipients) -> None:
    """Encrypt `source` into `target` (created 0600): header line, then STREAM chunks."""
    data_key = crypto.random_bytes(32)
    try:
        header = {
            "format": FILE_FORMAT,
            "venue_id": recipients.venue_id,
            "wrapped": recipients.wrap(data_key),
        }
        head = FILE_MAGIC + canonical_json(header) + b"\n"
        encryptor = crypto.StreamEncryptor(data_key, associated_data=head)
        with source.open("rb") as src, private_file(target).open("wb") as dst:
            dst.write(head)
            chunk = src.read(CHUNK)
            while True:
                following = src.read(CHUNK)
                sealed = encryptor.encrypt(chunk, last=not following)
                dst.write(struct.pack(">I", len(sealed)) + sealed)
                if not following:
                    break
                chunk = following
            dst.flush()
            os.fsync(dst.fileno())
    finally:
        crypto.zeroise(data_key)


def is_sealed_file(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(FILE_MAGIC)) == FILE_MAGIC


def open_file(source: Path, target: Path, private: crypto.X25519PrivateKey) -> dict[str, Any]:
    """Decrypt a sealed backup `source` into `target` (0600); return its header."""
    with source.open("rb") as src:
        if src.read(len(FILE_MAGIC)) != FILE_MAGIC:
            raise BackupCryptoError(f"{source} is not an encrypted venue backup")
        line = src.readline()
        try:
            header = json.loads(line)
            venue_id = str(header["venue_id"])
        except (ValueError, KeyError, TypeError):
            raise BackupCryptoError(f"{source} has a damaged header") from None
        data_key = unwrap(header.get("wrapped") or {}, venue_id, private)
        decryptor = crypto.StreamDecryptor(data_key, associated_data=FILE_MAGIC + line)
        try:
            finished = False
            with private_file(target).open("wb") as dst:
                for chunk, last in _chunks(src, source):
                    dst.write(decryptor.decrypt(chunk, last=last))
                    finished = last
            if not finished:
                raise crypto.CryptoError(
                    "the encrypted file is truncated: its last chunk is missing"
                )
        except (crypto.CryptoError, BackupCryptoError) as exc:
            target.unlink(missing_ok=True)
            raise BackupCryptoError(f"{source} does not decrypt: {exc}") from None
        finally:
            crypto.zeroise(data_key)
    return dict(header)


def _chunks(src: Any, source: Path) -> Any:
    while True:
        size_bytes = src.read(4)
        if not size_bytes:
            return
        if len(size_bytes) < 4:
            raise BackupCryptoError(f"{source} is truncated")
        (size,) = struct.unpack(">I", size_bytes)
        chunk = src.read(size)
        if len(chunk) < size:
            raise BackupCryptoError(f"{source} is truncated")
        following = src.peek(1) if hasattr(src, "peek") else b""
        yield chunk, not following
