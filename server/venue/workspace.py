"""The venue directory: what `cbt venue init DIR` lays out and every other command opens.

```
DIR/venue.json        venue id, name, format version, the public keys (no secrets) and the
                      identity of its database (server.venue.integrity)
DIR/keys/             venue-sign.pem (Ed25519, signs exports and release requests) and
                      venue-wrap.pem (X25519, receives the wrapped device secret and releases),
                      mode 0600; *.pub beside them (base64 of the raw 32 bytes)
DIR/venue.db          the SQLite database (server.venue.schema), WAL, synchronous=FULL
DIR/backup/           the continuous backup and `cbt venue backup` copies (another disk in
                      practice: make it a mount point)
DIR/packages/         imported, verified package fragments (still encrypted)
DIR/photos/           candidate photos named in the roster
```

Every file is 0600 and every folder 0700 (server.private): readable by the venue's account only.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from paperpack import crypto
from server.clock import iso
from server.errors import CbtError
from server.private import tighten
from server.store import Store, connect, migrate, open_store
from server.venue.id_protect import protect_id_numbers
from server.venue.integrity import (
    check_database,
    mark_serving,
    new_identity,
    unmark_serving,
    write_identity,
    write_json_atomically,
)
from server.venue.schema import migrations

log = logging.getLogger(__name__)

FORMAT = "cbt-venue/1"
VENUE_FILE = "venue.json"
DB_FILE = "venue.db"
SIGN_KEY = "venue-sign.pem"
WRAP_KEY = "venue-wrap.pem"


class WorkspaceError(CbtError):
    """The venue directory is missing, incomplete or already initialised."""


@dataclass(frozen=True)
class Venue:
    """One venue directory as `venue.json` describes it."""

    directory: Path
    venue_id: str
    name: str
    sign_public: str  # Ed25519 public key, base64 of 32 raw bytes
    wrap_public: str  # X25519 public key, base64 of 32 raw bytes
    created_at: str
    database_id: str | None = None  # the identity of DIR/venue.db; None: made before F5

    @property
    def db_path(self) -> Path:
        return self.directory / DB_FILE

    @property
    def keys_dir(self) -> Path:
        return self.directory / "keys"

    @property
    def backup_dir(self) -> Path:
        return self.directory / "backup"

    @property
    def packages_dir(self) -> Path:
        return self.directory / "packages"

    @property
    def photos_dir(self) -> Path:
        return self.directory / "photos"


def init_venue(
    directory: Path, venue_id: str, name: str = "", now: datetime | None = None
) -> Venue:
    """Create the layout, the two key pairs and the migrated database; refuse to overwrite."""
    _check_venue_id(venue_id)
    if (directory / VENUE_FILE).exists():
        raise WorkspaceError(
            f"{directory} is already a venue directory ({VENUE_FILE} exists): choose an empty one"
        )
    for sub in ("", "keys", "backup", "packages", "photos"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(directory / "keys", 0o700)
    sign_key = crypto.generate_signing_key()
    wrap_key = crypto.generate_wrapping_key()
    crypto.write_private_key(directory / "keys" / SIGN_KEY, sign_key)
    crypto.write_private_key(directory / "keys" / WRAP_KEY, wrap_key)
    now = now or datetime.now(UTC)
    identity = new_identity(venue_id, now)
    venue = Venue(
        directory=directory,
        venue_id=venue_id,
        name=name or venue_id,
        sign_public=crypto.public_key_text(sign_key.public_key()),
        wrap_public=crypto.public_key_text(wrap_key.public_key()),
        created_at=iso(now),
        database_id=identity["database_id"],
    )
    (directory / "keys" / "venue-sign.pub").write_text(venue.sign_public + "\n")
    (directory / "keys" / "venue-wrap.pub").write_text(venue.wrap_public + "\n")
    if (directory / DB_FILE).exists():
        raise WorkspaceError(
            f"{directory / DB_FILE} exists already without {VENUE_FILE}: choose an empty folder"
        )
    db = _migrated(directory / DB_FILE)
    try:
        write_identity(db, identity, now)
    finally:
        db.close()
    # venue.json last: its presence means the directory is complete.
    (directory / VENUE_FILE).write_text(json.dumps(_venue_json(venue), indent=2) + "\n")
    tighten(directory)  # 0600 files in 0700 folders even where the caller's umask is loose
    return venue


def _check_venue_id(venue_id: str) -> None:
    if not venue_id or not all(c.isalnum() or c in "-_." for c in venue_id):
        raise WorkspaceError(
            f"venue id {venue_id!r} is not valid: use letters, digits, '-', '_' or '.'"
        )


def _venue_json(venue: Venue) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": FORMAT,
        "venue_id": venue.venue_id,
        "name": venue.name,
        "sign_public": venue.sign_public,
        "wrap_public": venue.wrap_public,
        "created_at": venue.created_at,
    }
    if venue.database_id is not None:
        data["database"] = {"database_id": venue.database_id}
    return data


def load_venue(directory: Path) -> Venue:
    """Read DIR/venue.json, or say how to make one."""
    path = directory / VENUE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkspaceError(
            f"{directory} is not a venue directory (no {VENUE_FILE}): run `cbt venue init` first"
        ) from None
    except ValueError as exc:
        raise WorkspaceError(f"{path} is not valid JSON ({exc}): restore it from backup") from None
    if data.get("format") != FORMAT:
        raise WorkspaceError(f"{path} has format {data.get('format')!r}; this build reads {FORMAT}")
    return Venue(
        directory=directory,
        venue_id=data["venue_id"],
        name=data.get("name", data["venue_id"]),
        sign_public=data["sign_public"],
        wrap_public=data["wrap_public"],
        created_at=data.get("created_at", ""),
        database_id=(data.get("database") or {}).get("database_id"),
    )


def load_signing_key(venue: Venue) -> crypto.Ed25519PrivateKey:
    """The venue's Ed25519 private key (signs exports and release requests)."""
    key = crypto.load_private_key(venue.keys_dir / SIGN_KEY)
    if not isinstance(key, crypto.Ed25519PrivateKey):
        raise WorkspaceError(f"{venue.keys_dir / SIGN_KEY} is not an Ed25519 key")
    return key


def load_wrapping_key(venue: Venue) -> crypto.X25519PrivateKey:
    """The venue's X25519 private key (unwraps the device secret and releases)."""
    key = crypto.load_private_key(venue.keys_dir / WRAP_KEY)
    if not isinstance(key, crypto.X25519PrivateKey):
        raise WorkspaceError(f"{venue.keys_dir / WRAP_KEY} is not an X25519 key")
    return key


def _migrated(path: Path) -> Database:
    db = connect(path)
    migrate(db, migrations)
    return db


def verify_venue_database(venue: Venue, *, full: bool = False) -> Venue:
    """Refuse an empty, damaged or foreign database (one line naming the restore: F5); adopt
    the database of a directory made before identities existed. Returns the venue as read."""
    if venue.database_id is None:
        return _adopt(venue)
    check_database(venue.directory, venue.db_path, venue.database_id, full=full)
    return venue


def _adopt(venue: Venue) -> Venue:
    """A venue directory from before database identities: give its database one, once."""
    if not venue.db_path.exists():
        _migrated(venue.db_path).close()
    check_database(venue.directory, venue.db_path, None)
    now = datetime.now(UTC)
    identity = new_identity(venue.venue_id, now)
    db = _migrated(venue.db_path)
    try:
        write_identity(db, identity, now)
    finally:
        db.close()
    adopted = replace(venue, database_id=identity["database_id"])
    write_json_atomically(venue.directory / VENUE_FILE, _venue_json(adopted))
    log.warning(
        "venue.database_adopted dir=%s database=%s (a directory from before database "
        "identities: the database found there is now this venue's)",
        venue.directory,
        identity["database_id"][:12],
    )
    return adopted


def open_venue_db(directory: Path) -> Database:
    """A checked (identity, quick_check), migrated (WAL + FULL) connection for command-line
    tools; DatabaseRefused (one line naming the restore) for an empty, damaged or foreign one."""
    verify_venue_database(load_venue(directory))
    db = _migrated(directory / DB_FILE)
    try:
        protect_id_numbers(db)  # plaintext ID numbers from an older build: hashed now (F12)
    except BaseException:
        db.close()
        raise
    return db


async def open_venue_store(
    directory: Path, *, continuous_backup: bool = True, **options: Any
) -> Store:
    """The venue's group-committing Store (the server's one database handle).

    With `continuous_backup` (the default) the store first writes the base snapshot
    DIR/backup/base.db, then runs the continuous backup into DIR/backup/ (server.venue.backup)
    until it is closed, so every server has what `cbt venue restore` needs.
    """
    venue = load_venue(directory)
    tighten(directory)  # a workspace made by an older build or copied in: private again
    # Checked (F5: never serve an empty, damaged or foreign database), migrated, ID numbers
    # protected (F12), before serving.
    open_venue_db(directory).close()
    store = await open_store(directory / DB_FILE, migrations, **options)
    mark_serving(venue.db_path)  # checked above: this process's later opens skip the check

    async def not_serving() -> None:
        unmark_serving(venue.db_path)

    store.before_close(not_serving)
    if continuous_backup:
        from server.venue.backup import start_continuous_backup
        from server.venue.backup_crypto import Recipients, RowSealer
        from server.venue.base_snapshot import start_base_snapshots

        try:
            # The restore's starting point (F5): the whole database as it is now, before any
            # request, refreshed while set-up data changes; the continuous backup carries
            # every save from there.
            # Both encrypt the answers to the venue's (and the centre's) key (F12).
            recipients = Recipients.of(venue.venue_id, venue.wrap_public, venue.keys_dir)
            await start_base_snapshots(store, venue.db_path, venue.backup_dir, recipients)
            await start_continuous_backup(
                store, venue.backup_dir / "continuous.db", sealer=RowSealer(recipients)
            )
        except BaseException:
            await store.close()
            raise
    return store
