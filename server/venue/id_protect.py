"""ID numbers at rest (issue 16, F12; art. 46-47): the venue keeps only what login needs.

The roster's ID numbers are stored as
- `id_hash`: hex HMAC-SHA256 of the normalised number (whitespace removed, upper case) under
  the venue's ID key, which is derived (HKDF-SHA256, info `cbt-venue-id-hash-v1`) from the
  venue's X25519 private key in DIR/keys/venue-wrap.pem: the database and its backups alone
  do not hold it, so a stolen database or backup cannot be searched for a known number or
  brute-forced without the key file;
- `id_masked`: the first 3 and the last 4 characters, the rest as `*`, for the room monitor's
  identity check (art. 30).

The number itself is never stored: a login compares the HMAC of what the candidate typed with
`id_hash` (constant time). The centre needs no ID number from the venue: its registration CSV
carries them (`cbt central score --roster`, server.scoring.registration); the venue's export
carries tickets only. Rows written by an older build (or a test fixture) with a plaintext
`id_number` are converted when the venue opens the database (`protect_id_numbers`), with
`secure_delete` on, then the file is rebuilt (`VACUUM`, so no free page keeps an old number)
and the WAL checkpointed and truncated.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from pathlib import Path

from sqlite_utils import Database

from paperpack import crypto
from server.errors import CbtError

log = logging.getLogger(__name__)

ID_KEY_INFO = b"cbt-venue-id-hash-v1"
WRAP_KEY_FILE = "venue-wrap.pem"  # server.venue.workspace.WRAP_KEY (no import: no cycle)


def normalise_id_number(text: str) -> str:
    """What is compared: the number without whitespace, in upper case (`x` = `X`)."""
    return "".join(text.split()).upper()


def id_hash(key: bytes, id_number: str) -> str:
    """Hex HMAC-SHA256 of the normalised ID number under the venue's ID key."""
    return hmac.new(key, normalise_id_number(id_number).encode(), hashlib.sha256).hexdigest()


def mask_id(id_number: str) -> str:
    """The first 3 and last 4 characters, `*` between (all `*` when 7 or fewer)."""
    n = normalise_id_number(id_number)
    if len(n) <= 7:
        return "*" * len(n)
    return n[:3] + "*" * (len(n) - 7) + n[-4:]


@functools.lru_cache(maxsize=64)
def venue_id_key(directory: Path) -> bytes:
    """The venue's ID key, derived from its X25519 private key (cached per directory)."""
    path = directory / "keys" / WRAP_KEY_FILE
    try:
        key = crypto.load_private_key(path)
    except (OSError, crypto.CryptoError) as exc:
        raise CbtError(
            f"cannot read the venue key {path} the ID numbers are keyed with: {exc}"
        ) from None
    if not isinstance(key, crypto.X25519PrivateKey):
        raise CbtError(f"{path} is not an X25519 key")
    raw = key.private_bytes_raw()
    return bytes(crypto.hkdf(raw, info=ID_KEY_INFO))


def id_key_for(db: Database) -> bytes:
    """The ID key of the venue whose database `db` is (DIR/venue.db -> DIR/keys/)."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    if row is None or not row[2]:
        raise CbtError("the venue database has no file: its ID key cannot be found")
    return venue_id_key(Path(row[2]).resolve().parent)


def protect_id_numbers(db: Database) -> int:
    """Replace every plaintext `id_number` left by an older build with its hash and mask;
    return how many rows changed. Runs in its own transaction, with secure_delete."""
    plain = db.conn.execute(
        "SELECT session_id, ticket, id_number FROM candidates WHERE id_number != ''"
    ).fetchall()
    if not plain:
        return 0
    key = id_key_for(db)
    db.conn.execute("PRAGMA secure_delete = ON")
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        db.conn.executemany(
            "UPDATE candidates SET id_hash = ?, id_masked = ?, id_number = ''"
            " WHERE session_id = ? AND ticket = ?",
            [(id_hash(key, number), mask_id(number), s, t) for s, t, number in plain],
        )
        db.conn.execute("COMMIT")
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    # The pages the plaintext lived in before (the table the F12 migration dropped, rows an
    # older build deleted) are free but not wiped: rebuild the file without them.
    db.conn.execute("VACUUM")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    log.warning(
        "roster.id_numbers_protected rows=%d (plaintext ID numbers replaced by keyed hashes)",
        len(plain),
    )
    return len(plain)
