"""The central server's settings and its directory (`cbt central init DIR`).

Settings are a frozen dataclass; each field can come from a `CBT_CENTRAL_*` environment
variable (documented in docs/central.md, a test checks every one is) or a CLI flag.
The directory holds `central.json` (which authority it speaks for), the SQLite database by
default. The authority directory (`paperpack authority init`) holds the keys: Ed25519 signs
receipts, X25519 opens response packages; the release records come from there too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from paperpack import crypto
from paperpack.authority import Authority, load_authority
from server.clock import check_time_zone
from server.errors import CbtError
from server.private import tighten

CENTRAL_FILE = "central.json"
DEFAULT_DATABASE = "central.db"


class CentralConfigError(CbtError):
    """The central directory or a setting is missing or wrong."""


@dataclass(frozen=True)
class CentralSettings:
    """Every knob of the central server. Env var = CBT_CENTRAL_ + the field name upper-cased."""

    directory: Path  # the central directory made by `cbt central init`
    database: str = ""  # SQLite path or postgresql:// URL; "" = DIR/central.db
    # PostgreSQL: the folder for the packages' bytes, seen by every central process at this
    # path ("" = DIR/packages); "database" keeps them in PostgreSQL (bytea rows). SQLite
    # always keeps them beside its database file.
    packages_dir: str = ""
    host: str = "127.0.0.1"  # address `cbt central serve` listens on
    port: int = 8700  # TCP port `cbt central serve` listens on
    max_package_bytes: int = 2 << 30  # largest response package accepted, bytes
    max_chunk_bytes: int = 16 << 20  # largest PATCH body, bytes
    release_skew_ms: int = 300_000  # how far a venue's signed request time may be from now, ms
    max_open_uploads: int = 8  # unfinished uploads one venue may hold at once
    max_open_upload_bytes: int = 4 << 30  # bytes one venue's unfinished uploads may announce
    upload_stale_s: int = 86_400  # an unfinished upload with no chunk for this long is dropped
    pg_pool_size: int = 10  # PostgreSQL connections per central process
    log_requests: bool = True  # one log line per request (never bodies)
    staff_session_ttl_s: int = 28_800  # seconds a console login lasts (8 hours)
    secure_cookies: bool = False  # mark the console's cookies Secure even over plain HTTP
    time_zone: str = "Asia/Shanghai"  # IANA zone the console shows times in (sessions' local)

    def __post_init__(self) -> None:
        check_time_zone(self.time_zone, "CBT_CENTRAL_TIME_ZONE")

    def database_url(self) -> str:
        return self.database or str(self.directory / DEFAULT_DATABASE)

    def packages_path(self) -> Path | None:
        """Where a PostgreSQL store writes the packages' bytes (None: in the database)."""
        if self.packages_dir == "database":
            return None
        return Path(self.packages_dir) if self.packages_dir else self.directory / "packages"


ENV_PREFIX = "CBT_CENTRAL_"


def env_names() -> list[str]:
    """The environment variable of every setting (the docs test checks each is documented)."""
    return [ENV_PREFIX + f.name.upper() for f in fields(CentralSettings) if f.name != "directory"]


def settings_from_env(
    directory: Path, environ: dict[str, str] | None = None, **flags: Any
) -> CentralSettings:
    """Build settings: CLI flags (not None) win over CBT_CENTRAL_* variables over defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {"directory": Path(directory)}
    for f in fields(CentralSettings):
        if f.name == "directory":
            continue
        raw = env.get(ENV_PREFIX + f.name.upper())
        if flags.get(f.name) is not None:
            values[f.name] = flags[f.name]
        elif raw is not None:
            values[f.name] = _coerce(f.name, f.type, raw)
    return CentralSettings(**values)


def _coerce(name: str, kind: Any, raw: str) -> Any:
    try:
        if kind in (int, "int"):
            return int(raw)
        if kind in (bool, "bool"):
            return raw.strip().lower() in ("1", "true", "yes", "on")
    except ValueError:
        raise CentralConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number") from None
    return raw


def init_central(directory: Path, authority_dir: Path) -> dict[str, Any]:
    """Create the central directory bound to an authority; refuse to overwrite one."""
    keys = load_authority(authority_dir, _passphrase())
    marker = directory / CENTRAL_FILE
    if marker.exists():
        raise CentralConfigError(f"{directory} is already a central directory; use another DIR")
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "authority": str(authority_dir.resolve()),
        "signing_public": crypto.public_key_text(keys.signing_public),
        "wrap_public": crypto.public_key_text(keys.wrapping_public),
    }
    marker.write_text(json.dumps(config, indent=2) + "\n")
    tighten(directory)  # 0600 files in 0700 folders even where the caller's umask is loose
    return config


def read_central(directory: Path) -> dict[str, Any]:
    marker = directory / CENTRAL_FILE
    if not marker.is_file():
        raise CentralConfigError(
            f"{directory} is not a central directory: "
            f"run `cbt central init {directory} --authority AUTHDIR`"
        )
    return dict(json.loads(marker.read_text()))


def load_central_keys(directory: Path) -> Authority:
    """The authority keys of a central directory (passphrase from CBT_AUTHORITY_PASSPHRASE_FILE)."""
    return load_authority(Path(read_central(directory)["authority"]), _passphrase())


def _passphrase() -> bytes | None:
    path = os.environ.get("CBT_AUTHORITY_PASSPHRASE_FILE")
    return Path(path).read_bytes().strip() if path else None
