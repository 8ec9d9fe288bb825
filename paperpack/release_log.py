"""The authority's release log: every issuance of a time release, hash-chained and signed.

The window is a cryptographic fact only at the venue (the manifest binds it); at the centre,
whoever holds the authority keys can issue S_time at any time. What keeps that honest is this
log: `paperpack release` (a code read out by phone) and the central server (a record served
online) both append one entry per issuance to `AUTH/release-log.jsonl`:

    {"seq": 3, "at": "...", "who": "...", "session_id": "...", "venue_id": "...",
     "channel": "phone" | "online", "forced": false, "reason": null,
     "window": {"not_before": "...", "not_after": "..."},
     "prev": "<hash of entry 2>", "hash": "<sha256 of this entry without hash/signature>",
     "signature": "<Ed25519 by the authority key, tag cbt-release-log-v1, over the hash>"}

Each entry names the hash of the one before, and the authority key signs each hash, so an
entry cannot be changed, removed or inserted without the key; a log cut short at the end is
visible against the central server's own audit (each online release is audited there too)
and against the phone log the operators keep. `verify_log` names the first bad entry.

Appends take an exclusive lock on the file, so the CLI and several central processes can
share one authority directory.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from paperpack.canonical import canonical_json, strict_loads
from paperpack.crypto import CryptoError, Ed25519PrivateKey, Ed25519PublicKey, sign, verify

LOG_NAME = "release-log.jsonl"
SIGNING_KIND = "release-log"
GENESIS = "0" * 64
CHANNELS = ("phone", "online")


@dataclass(frozen=True)
class LogCheck:
    """The outcome of `verify_log`: how many entries held, and the first that did not."""

    entries: int
    first_bad: int | None = None  # 1-based line number of the first bad entry
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad is None


def log_path(authority_dir: Path) -> Path:
    return authority_dir / LOG_NAME


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k not in ("hash", "signature")}
    return hashlib.sha256(canonical_json(body)).hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[IO[str]]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _last_entry(handle: IO[str]) -> dict[str, Any] | None:
    handle.seek(0)
    last = None
    for line in handle:
        if line.strip():
            last = line
    return json.loads(last) if last else None


def append_issuance(
    authority_dir: Path,
    signing_key: Ed25519PrivateKey,
    *,
    session_id: str,
    venue_id: str,
    channel: str,
    who: str,
    at: datetime,
    window: dict[str, str],
    reason: str | None = None,
) -> dict[str, Any]:
    """Append one issuance (durably: fsync before the release leaves) and return the entry.
    `reason` is given only when the issuance was forced outside the window."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    with _locked(log_path(authority_dir)) as handle:
        last = _last_entry(handle)
        entry: dict[str, Any] = {
            "seq": 1 if last is None else int(last["seq"]) + 1,
            "at": at.isoformat(),
            "who": who,
            "session_id": session_id,
            "venue_id": venue_id,
            "channel": channel,
            "forced": reason is not None,
            "reason": reason,
            "window": window,
            "prev": GENESIS if last is None else last["hash"],
        }
        entry["hash"] = entry_hash(entry)
        signature = sign(signing_key, SIGNING_KIND, entry["hash"].encode("ascii"))
        entry["signature"] = base64.b64encode(signature).decode("ascii")
        handle.seek(0, os.SEEK_END)
        handle.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def read_log(authority_dir: Path) -> list[dict[str, Any]]:
    """The entries as written (an absent log is empty); a line that is not JSON is kept as
    an empty dict so that `verify_log` reports it at its place."""
    path = log_path(authority_dir)
    if not path.is_file():
        return []
    entries: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            parsed = strict_loads(line)
        except ValueError:
            parsed = {}
        entries.append(parsed if isinstance(parsed, dict) else {})
    return entries


def verify_log(entries: list[dict[str, Any]], authority_key: Ed25519PublicKey) -> LogCheck:
    """Check the chain and every signature; the first bad entry is named by its line."""
    prev = GENESIS
    for number, entry in enumerate(entries, start=1):
        problem = _entry_problem(entry, number, prev, authority_key)
        if problem is not None:
            return LogCheck(entries=number - 1, first_bad=number, problem=problem)
        prev = entry["hash"]
    return LogCheck(entries=len(entries))


def _entry_problem(
    entry: dict[str, Any], number: int, prev: str, authority_key: Ed25519PublicKey
) -> str | None:
    if not entry or not isinstance(entry.get("hash"), str):
        return f"entry {number} is not a log entry (unreadable line)"
    if entry.get("seq") != number:
        return f"entry {number} says seq {entry.get('seq')!r}: an entry was removed or inserted"
    if entry.get("prev") != prev:
        return f"entry {number} does not follow entry {number - 1} (prev hash differs)"
    if entry_hash(entry) != entry["hash"]:
        return f"entry {number} was changed after it was written (hash differs)"
    try:
        signature = base64.b64decode(str(entry.get("signature")), validate=True)
        verify(authority_key, SIGNING_KIND, entry["hash"].encode("ascii"), signature)
    except (ValueError, CryptoError):
        return f"entry {number} is not signed by the authority key"
    return None
