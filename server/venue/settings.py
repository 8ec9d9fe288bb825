"""The venue server's settings: one frozen dataclass, from CLI flags and `CBT_*` env vars.

Every setting is documented in `SETTING_DOCS` (meaning, unit, env var); a test fails if a
field has no entry there, so a new setting cannot slip in undocumented. Precedence: an
explicit keyword (a CLI flag) beats the environment, which beats the default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.clock import check_time_zone
from server.errors import CbtError

# name -> what it means (with its unit) and the env var that sets it.
SETTING_DOCS: dict[str, str] = {
    "venue_dir": "the venue directory made by `cbt venue init` (database, keys, packages); "
    "env CBT_VENUE_DIR",
    "host": "address `cbt venue serve` listens on; env CBT_HOST",
    "port": "TCP port `cbt venue serve` listens on; env CBT_PORT",
    "central_url": "base URL of the central server for the online time release, or empty "
    "for an offline venue (the release code is typed in); env CBT_CENTRAL_URL",
    "heartbeat_s": "seconds between the heartbeats a venue with a central URL sends to the "
    "centre (session state and counts; a serious violation goes at once); env CBT_HEARTBEAT_S",
    "central_timeout_s": "seconds to wait for the central server's release; env "
    "CBT_CENTRAL_TIMEOUT_S",
    "ceremony_timeout_s": "seconds an unlock ceremony may stay open before it resets and every "
    "entered share is forgotten; env CBT_CEREMONY_TIMEOUT_S",
    "max_save_bytes": "largest accepted body of one autosave (PUT responses), in bytes; "
    "env CBT_MAX_SAVE_BYTES",
    "max_package_bytes": "largest accepted package upload (tar or zip), in bytes; env "
    "CBT_MAX_PACKAGE_BYTES",
    "token_ttl_s": "seconds a candidate token stays valid after login; env CBT_TOKEN_TTL_S",
    "close_interval_s": "seconds between runs of the task that closes attempts at the end of "
    "their time; env CBT_CLOSE_INTERVAL_S",
    "stale_after_s": "seconds without a heartbeat or save after which the room monitor shows a "
    "candidate as not seen; env CBT_STALE_AFTER_S",
    "alive_interval_s": "seconds between the server's alive marks (DIR/run/alive.json); after a "
    "crash the exam clocks stop from the last mark, so candidates lose nothing and gain at "
    "most this much; env CBT_ALIVE_INTERVAL_S",
    "reopen_sealed": "keep the opened paper key sealed to this machine's key from the exam's "
    "start to the session's end, so a restart reopens the paper by itself (1); with 0 a "
    "restart needs the unlock ceremony again (docs/sealing.md); env CBT_REOPEN_SEALED (1/0)",
    "time_zone": "IANA time zone in which the pages show times to people (the sessions' local "
    "time, e.g. Asia/Shanghai); env CBT_TIME_ZONE",
    "disk_warn_mb": "the staff dashboard warns when the venue directory's file system has "
    "less free space than this, in MiB (with the exam-minutes of journal it holds); env "
    "CBT_DISK_WARN_MB",
    "log_requests": "write one log line per request (method, path, status, ms; never bodies or "
    "tokens); env CBT_LOG_REQUESTS (1/0)",
}


@dataclass(frozen=True)
class Settings:
    """How one venue server runs. Each field is explained in `SETTING_DOCS`."""

    venue_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    central_url: str = ""
    central_timeout_s: float = 10.0
    heartbeat_s: float = 60.0
    ceremony_timeout_s: int = 15 * 60
    max_save_bytes: int = 256 * 1024
    max_package_bytes: int = 2 * 1024 * 1024 * 1024
    token_ttl_s: int = 12 * 3600
    close_interval_s: float = 1.0
    stale_after_s: int = 60
    alive_interval_s: float = 1.0
    reopen_sealed: bool = True
    time_zone: str = "Asia/Shanghai"
    log_requests: bool = True
    disk_warn_mb: int = 1024

    def __post_init__(self) -> None:
        check_time_zone(self.time_zone, "CBT_TIME_ZONE")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `CBT_*` variables, with non-None `overrides` (CLI flags) on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get("CBT_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "venue_dir" not in values:
            raise CbtError("no venue directory: pass DIR or set CBT_VENUE_DIR")
        values["venue_dir"] = Path(values["venue_dir"])
        return cls(**values)


def _parse(name: str, type_name: str, raw: str) -> Any:
    """Convert one env value to the field's type, or say which variable is wrong."""
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(raw)
            return raw.lower() in {"1", "true", "yes"}
    except ValueError:
        raise CbtError(
            f"CBT_{name.upper()}={raw!r} is not a valid {type_name}: fix or unset it"
        ) from None
    return raw
