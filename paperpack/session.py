"""The session file: one scheduled sitting of one paper, and the venues it is packed for.

A session file is YAML (see `examples/session.yaml` and docs/sealing.md). Loading it checks
every field and reports every problem at once (`SessionInvalid`), each naming the field.

Defaults: the unlock window opens 60 minutes before the start and closes 30 minutes after it;
a venue's package has 5 fragments of which any 3 rebuild it; the manifest version is 1.
Rule overrides are the names the venue's rules engine knows (`entry_cutoff_minutes`,
`sealed_before_end_minutes`, `sealed_long_minutes`, `time_changes_limit_minutes` (at most 30),
`grant_cap_minutes`), in minutes, `identity_check` (1 or 0: whether a candidate answers only
once an invigilator has checked their identity, art. 30; 1 by default) and `inspection_required`
(0 or 1: whether the real unlock needs the venue's inspection sign-off and a passed dry run,
art. 21(3); 0, the default, shows a warning on the ceremony screen). `inspection` lists the
checklist the venue's staff sign off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from paperpack.crypto import CryptoError, X25519PublicKey, read_wrapping_public
from paperpack.errors import SessionInvalid

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
KINDS = ("standard", "audio_video")
RULE_NAMES = (
    "entry_cutoff_minutes",
    "sealed_before_end_minutes",
    "sealed_long_minutes",
    "inspection_required",  # 1: the real unlock needs the inspection sign-off (art. 21(3))
    "identity_check",  # art. 30: 1 = checked before answering (real default), 0 = not needed
    "time_changes_limit_minutes",  # art. 31: at most 30 (the regulation's "always")
    "grant_cap_minutes",  # one candidate's grants an invigilator may give (art. 31)
)
MAX_CHECKLIST_LINES = 50
MAX_CHECKLIST_LINE = 200  # characters
TIME_CHANGES_LIMIT_MAX = 30  # art. 31: time changes past 30 min always need the centre
DEFAULT_OPENS_BEFORE = 60  # minutes before the start the unlock window opens
DEFAULT_CLOSES_AFTER = 30  # minutes after the start it closes
DEFAULT_FRAGMENTS = 5
DEFAULT_REBUILD = 3


@dataclass(frozen=True)
class Venue:
    """One test centre: who receives a package and how it is split."""

    venue_id: str
    name: str
    public_key: X25519PublicKey  # the venue server's own key (`cbt venue init` prints it)
    public_key_text: str  # as written in the session file (base64 of 32 bytes)
    supervisors: int  # n share cards
    threshold: int  # k of them unlock, 2 <= k <= n
    fragments: int  # m fragments
    rebuild: int  # k' fragments rebuild the payload


@dataclass(frozen=True)
class Session:
    """A validated session file."""

    session_id: str
    subject_code: str
    subject_name: str
    start: datetime  # timezone-aware
    duration_minutes: int | None  # None: take the paper's
    kind: str | None  # None: take the paper's
    not_before: datetime  # unlock window opens
    not_after: datetime  # unlock window closes
    rules: dict[str, int]  # overrides in minutes (names in RULE_NAMES)
    manifest_version: int  # monotonically increasing per (session, venue)
    venues: tuple[Venue, ...]
    paper: str | None = None  # the paper file named in the session (informational)
    # The venue's inspection checklist (art. 21(3)), signed into the manifest; two staff
    # logins sign it off at the venue.
    inspection: tuple[str, ...] = ()

    def venue(self, venue_id: str) -> Venue:
        for venue in self.venues:
            if venue.venue_id == venue_id:
                return venue
        known = ", ".join(v.venue_id for v in self.venues)
        raise SessionInvalid(
            [f"venue {venue_id!r} is not in session {self.session_id} (venues: {known})"]
        )


def load_session(path: Path) -> Session:
    """Read and validate a session YAML file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SessionInvalid([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise SessionInvalid([f"{path}: not valid YAML: {exc}"]) from None
    return session_from_dict(raw, str(path))


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{self.source}: {where}: {what}")


def _ident(raw: dict[str, Any], key: str, where: str, problems: _Problems) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        problems.add(f"{where}{key}", "required; 1-64 letters, digits, '.', '_' or '-'")
        return ""
    return value


def _int(
    raw: dict[str, Any],
    key: str,
    where: str,
    problems: _Problems,
    default: int | None,
    lo: int,
    hi: int,
) -> int:
    value = raw.get(key, default)
    if value is None:
        problems.add(f"{where}{key}", "required")
        return lo
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        problems.add(f"{where}{key}", f"must be a whole number from {lo} to {hi}, got {value!r}")
        return lo
    return value


def _start(raw: dict[str, Any], problems: _Problems) -> datetime:
    value = raw.get("start")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            problems.add("start", f"not an ISO 8601 date-time: {value!r}")
            return datetime.now(UTC)
    if not isinstance(value, datetime):
        problems.add("start", "required: ISO 8601 with a time zone, e.g. 2026-06-13T09:00:00+08:00")
        return datetime.now(UTC)
    if value.tzinfo is None:
        problems.add("start", "must carry a time zone (e.g. +08:00 or Z)")
        return value.replace(tzinfo=UTC)
    return value


def _rules(raw: Any, problems: _Problems) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add("rules", "must be a mapping of rule name to minutes")
        return {}
    rules: dict[str, int] = {}
    for name, minutes in raw.items():
        if name not in RULE_NAMES:
            problems.add(f"rules.{name}", f"unknown rule; use one of {', '.join(RULE_NAMES)}")
        elif not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 0:
            problems.add(f"rules.{name}", "must be a non-negative whole number of minutes")
        elif name == "identity_check" and minutes not in (0, 1):
            problems.add(f"rules.{name}", "must be 1 (checked before answering) or 0")
        elif name == "time_changes_limit_minutes" and minutes > TIME_CHANGES_LIMIT_MAX:
            problems.add(
                f"rules.{name}",
                f"cannot be over {TIME_CHANGES_LIMIT_MAX}: time changes past 30 minutes always"
                " need the centre's approval (art. 31)",
            )
        else:
            rules[name] = minutes
    return rules


def _inspection(raw: Any, problems: _Problems) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_CHECKLIST_LINES:
        problems.add("inspection", f"must be a list of up to {MAX_CHECKLIST_LINES} lines")
        return ()
    lines = []
    for index, line in enumerate(raw):
        if not isinstance(line, str) or not line.strip() or len(line) > MAX_CHECKLIST_LINE:
            problems.add(
                f"inspection[{index}]", f"must be text of 1-{MAX_CHECKLIST_LINE} characters"
            )
        else:
            lines.append(line.strip())
    return tuple(lines)


def _venue(raw: Any, index: int, problems: _Problems) -> Venue | None:
    where = f"venues[{index}]."
    if not isinstance(raw, dict):
        problems.add(
            f"venues[{index}]",
            "must be a mapping with id, name, public_key, supervisors, threshold",
        )
        return None
    venue_id = _ident(raw, "id", where, problems)
    where = f"venues[{venue_id or index}]."
    name = raw.get("name", venue_id)
    if not isinstance(name, str) or not name.strip():
        problems.add(f"{where}name", "must be a non-empty string")
    n = _int(raw, "supervisors", where, problems, None, 2, 255)
    k = _int(raw, "threshold", where, problems, None, 2, 255)
    if k > n:
        problems.add(f"{where}threshold", f"{k} is more than the {n} supervisors")
    m = _int(raw, "fragments", where, problems, DEFAULT_FRAGMENTS, 1, 255)
    rebuild = _int(raw, "rebuild", where, problems, min(DEFAULT_REBUILD, m), 1, 255)
    if rebuild > m:
        problems.add(f"{where}rebuild", f"{rebuild} is more than the {m} fragments")
    key_text = raw.get("public_key")
    key: X25519PublicKey | None = None
    if not isinstance(key_text, str):
        problems.add(
            f"{where}public_key",
            "required: the venue server's X25519 key (cbt venue init prints it)",
        )
    else:
        try:
            key = read_wrapping_public(key_text, f"venue {venue_id}")
        except CryptoError as exc:
            problems.add(f"{where}public_key", str(exc))
    if key is None or not isinstance(key_text, str):
        return None
    return Venue(venue_id, str(name), key, key_text.strip(), n, k, m, rebuild)


def session_from_dict(raw: Any, source: str = "session") -> Session:
    """Validate plain data (as loaded from YAML); raises SessionInvalid listing every problem."""
    problems = _Problems(source)
    if not isinstance(raw, dict):
        raise SessionInvalid(
            [f"{source}: must be a mapping with session_id, subject, start, venues"]
        )
    session_id = _ident(raw, "session_id", "", problems)
    subject = raw.get("subject")
    if not isinstance(subject, dict):
        problems.add("subject", "required: a mapping with code and name")
        subject = {}
    code = _ident(subject, "code", "subject.", problems)
    name = subject.get("name", "")
    if not isinstance(name, str) or not name:
        problems.add("subject.name", "required: the subject's name")
    start = _start(raw, problems)
    duration = raw.get("duration_minutes")
    if duration is not None:
        duration = _int(raw, "duration_minutes", "", problems, None, 1, 24 * 60)
    kind = raw.get("kind")
    if kind is not None and kind not in KINDS:
        problems.add("kind", f"must be one of {', '.join(KINDS)}")
    window = raw.get("window") or {}
    if not isinstance(window, dict):
        problems.add(
            "window", "must be a mapping with opens_minutes_before and closes_minutes_after"
        )
        window = {}
    for key in window:
        if key not in ("opens_minutes_before", "closes_minutes_after"):
            problems.add(f"window.{key}", "unknown; use opens_minutes_before, closes_minutes_after")
    opens = _int(
        window, "opens_minutes_before", "window.", problems, DEFAULT_OPENS_BEFORE, 0, 7 * 24 * 60
    )
    closes = _int(
        window, "closes_minutes_after", "window.", problems, DEFAULT_CLOSES_AFTER, 0, 24 * 60
    )
    if opens + closes == 0:
        problems.add("window", "the unlock window is empty: it must open before it closes")
    rules = _rules(raw.get("rules"), problems)
    if rules.get("inspection_required", 0) > 1:
        problems.add("rules.inspection_required", "must be 0 (a warning) or 1 (required)")
    inspection = _inspection(raw.get("inspection"), problems)
    version = _int(raw, "manifest_version", "", problems, 1, 1, 2**31 - 1)
    paper = raw.get("paper")
    if paper is not None and not isinstance(paper, str):
        problems.add("paper", "must be a path to the paper file")
    venues_raw = raw.get("venues")
    venues: list[Venue] = []
    if not isinstance(venues_raw, list) or not venues_raw:
        problems.add("venues", "required: a list of at least one venue")
    else:
        for index, venue_raw in enumerate(venues_raw):
            venue = _venue(venue_raw, index, problems)
            if venue is not None:
                if any(v.venue_id == venue.venue_id for v in venues):
                    problems.add(f"venues[{venue.venue_id}]", "duplicate venue id")
                venues.append(venue)
    if problems.items:
        raise SessionInvalid(problems.items)
    return Session(
        session_id=session_id,
        subject_code=code,
        subject_name=str(name),
        start=start,
        duration_minutes=duration,
        kind=kind,
        not_before=start - timedelta(minutes=opens),
        not_after=start + timedelta(minutes=closes),
        rules=rules,
        manifest_version=version,
        venues=tuple(venues),
        paper=paper,
        inspection=inspection,
    )
