"""The exam rules (art. 29, 31) as plain functions of times: no HTTP, no database.

Defaults follow ARCHITECTURE.md and a session may override them (the `rules` object of the
signed manifest):

- entry cut-off: 5 min after the start (audio/video: at the start); a login at or after the
  cut-off is refused;
- sealed period, no submission: duration <= 135 min -> until 15 min before the candidate's
  end; longer -> 2 h from the start; audio/video -> until the end;
- a candidate's end = start + duration + granted time + time the room or venue was paused;
- a venue may delay its start by up to 30 min on its own authority; more needs an approval
  signed by the centre, for that package and not expired (`check_start_delay`,
  `paperpack.approval`).

Boundaries are exact: "at or after" a moment counts as past it, to the millisecond.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from paperpack.approval import ApprovalRejected
from server.clock import iso
from server.errors import CbtError

MINUTE_MS = 60_000
SHORT_EXAM_LIMIT_MS = 135 * MINUTE_MS  # exams up to this long seal until 15 min before the end
VENUE_DELAY_LIMIT_MS = 30 * MINUTE_MS  # art. 31: longer delays need the centre's approval


class RuleViolation(CbtError):
    """An action the exam rules do not allow now; `slug` names the rule for problem+json and
    `extra` holds its values (times as ISO-8601 UTC), so pages can say it in their language."""

    def __init__(self, slug: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.slug = slug
        self.extra = extra


# Session rules that are not about time, read by their own modules (the inspection
# sign-off: server.venue.inspection).
NON_TIMING_RULES = frozenset({"inspection_required"})


@dataclass(frozen=True)
class ExamRules:
    """The timing rules of one session, in milliseconds relative to the start."""

    kind: str = "standard"  # "standard" or "audio_video"
    duration_ms: int = 120 * MINUTE_MS  # the paper's working time
    entry_cutoff_ms: int = 5 * MINUTE_MS  # logins refused from start + this
    sealed_before_end_ms: int = 15 * MINUTE_MS  # short exams: submission opens end - this
    sealed_long_ms: int = 120 * MINUTE_MS  # long exams: submission opens start + this

    @classmethod
    def for_session(
        cls, kind: str, duration_minutes: int, overrides: Mapping[str, Any] | None = None
    ) -> ExamRules:
        """The defaults for `kind`, with a session's overrides in minutes applied on top.

        Recognised overrides: `entry_cutoff_minutes`, `sealed_before_end_minutes`,
        `sealed_long_minutes`; anything else is refused so a typo cannot pass silently.
        """
        audio_video = kind == "audio_video"
        values = {
            "entry_cutoff_ms": 0 if audio_video else 5 * MINUTE_MS,
            "sealed_before_end_ms": 15 * MINUTE_MS,
            "sealed_long_ms": 120 * MINUTE_MS,
        }
        for key, minutes in (overrides or {}).items():
            if key in NON_TIMING_RULES or key in POLICY_RULES:  # not the timeline's
                continue
            field = key.removesuffix("_minutes") + "_ms"
            if field not in values or not key.endswith("_minutes"):
                raise CbtError(f"unknown exam rule {key!r}: use one of {_override_names()}")
            if not isinstance(minutes, int | float) or isinstance(minutes, bool) or minutes < 0:
                raise CbtError(f"exam rule {key} must be a non-negative number of minutes")
            values[field] = int(minutes * MINUTE_MS)
        return cls(kind=kind, duration_ms=duration_minutes * MINUTE_MS, **values)


def _override_names() -> str:
    return "entry_cutoff_minutes, sealed_before_end_minutes, sealed_long_minutes, " + ", ".join(
        POLICY_RULES
    )


# --- the room's rules (art. 30, 31) -------------------------------------------------------

POLICY_RULES = ("identity_check", "time_changes_limit_minutes", "grant_cap_minutes")
DEFAULT_GRANT_CAP_MS = 30 * MINUTE_MS  # one candidate's grants an invigilator may give


@dataclass(frozen=True)
class RoomPolicy:
    """A session's room rules, from its signed overrides with the regulation's defaults.

    - `identity_check`: a candidate answers only once an invigilator has verified them
      (art. 30); default on for real sessions, off for practice;
    - `time_changes_limit_ms`: start delay, venue and room pauses and room-wide grants together
      beyond this need the centre's signed approval (art. 31); default 30 min, and an override
      can only make it stricter: past 30 min the regulation always asks the centre;
    - `grant_cap_ms`: the time an invigilator may grant one candidate in all; beyond it only
      the chief examiner, under their own login (default 30 min).
    """

    identity_check: bool = True
    time_changes_limit_ms: int = VENUE_DELAY_LIMIT_MS
    grant_cap_ms: int = DEFAULT_GRANT_CAP_MS

    @classmethod
    def for_session(cls, overrides: Mapping[str, Any] | None, practice: bool) -> RoomPolicy:
        values = dict(overrides or {})
        check = values.get("identity_check", 0 if practice else 1)
        limit = values.get("time_changes_limit_minutes", VENUE_DELAY_LIMIT_MS // MINUTE_MS)
        cap = values.get("grant_cap_minutes", DEFAULT_GRANT_CAP_MS // MINUTE_MS)
        return cls(
            identity_check=bool(check),
            # Never relaxed past the regulation's 30 minutes, whatever the override says.
            time_changes_limit_ms=min(int(limit * MINUTE_MS), VENUE_DELAY_LIMIT_MS),
            grant_cap_ms=int(cap * MINUTE_MS),
        )


@dataclass(frozen=True)
class Timeline:
    """One candidate's moments, all absolute UTC times."""

    starts_at: datetime
    ends_at: datetime
    submit_opens_at: datetime
    entry_closes_at: datetime


def ms(amount: int) -> timedelta:
    return timedelta(milliseconds=amount)


def entry_closes_at(start: datetime, rules: ExamRules) -> datetime:
    """The moment from which a first login is refused (art. 29(2))."""
    return start + ms(rules.entry_cutoff_ms)


def candidate_ends_at(
    start: datetime, rules: ExamRules, granted_ms: int, paused_ms: int
) -> datetime:
    """Start + duration + time granted to this candidate + time their room was paused."""
    return start + ms(rules.duration_ms + granted_ms + paused_ms)


def submit_opens_at(
    start: datetime, rules: ExamRules, ends_at: datetime, paused_ms: int
) -> datetime:
    """When the sealed period ends for a candidate whose end is `ends_at` (art. 29(3))."""
    if rules.kind == "audio_video":
        return ends_at
    if rules.duration_ms <= SHORT_EXAM_LIMIT_MS:
        # A paper shorter than the sealed span is sealed from its start, never before it.
        return max(start, ends_at - ms(rules.sealed_before_end_ms))
    return min(ends_at, start + ms(rules.sealed_long_ms + paused_ms))


def timeline(
    start: datetime, rules: ExamRules, granted_ms: int = 0, paused_ms: int = 0
) -> Timeline:
    """Every moment that matters for one candidate."""
    end = candidate_ends_at(start, rules, granted_ms, paused_ms)
    return Timeline(
        starts_at=start,
        ends_at=end,
        submit_opens_at=submit_opens_at(start, rules, end, paused_ms),
        entry_closes_at=entry_closes_at(start, rules),
    )


def check_entry(now: datetime, start: datetime, rules: ExamRules) -> None:
    """Raise if a candidate who has not logged in yet may no longer enter."""
    closes = entry_closes_at(start, rules)
    if now >= closes:
        if rules.entry_cutoff_ms == 0:
            reason = "this is an audio/video exam: no entry after the start"
        else:
            reason = f"no entry {rules.entry_cutoff_ms // MINUTE_MS} minutes after the start"
        raise RuleViolation(
            "entry-closed",
            f"entry closed at {closes.isoformat()} ({reason}, art. 29(2)); see the chief examiner",
            closed_at=iso(closes),
            cutoff_minutes=rules.entry_cutoff_ms // MINUTE_MS,
        )


def check_submit(now: datetime, line: Timeline) -> None:
    """Raise during the sealed period, when submission is not yet allowed (art. 29(3))."""
    if now < line.submit_opens_at:
        raise RuleViolation(
            "sealed-period",
            f"submission opens at {line.submit_opens_at.isoformat()} (sealed period, art. 29(3)); "
            "keep answering, your answers are saved",
            submit_opens_at=iso(line.submit_opens_at),
        )


def paused_ms(pauses: Iterable[tuple[datetime, datetime | None]], now: datetime) -> int:
    """Total paused time in ms; an open pause (no end yet) counts up to `now`.

    Overlapping pauses count once (a room paused inside a venue pause, or a pause open while
    the server was down): the clock cannot stop twice over."""
    total = timedelta()
    reached: datetime | None = None  # the end of the time counted so far
    for began, ended in sorted((b, e or now) for b, e in pauses):
        if reached is not None:
            began = max(began, reached)
        if ended > began:
            total += ended - began
        reached = ended if reached is None else max(reached, ended)
    return int(total / timedelta(milliseconds=1))


def time_left_ms(now: datetime, line: Timeline) -> int:
    """Milliseconds the candidate has left; frozen while paused, since an open pause moves the
    end along with `now`."""
    if now < line.starts_at:
        return int((line.ends_at - line.starts_at) / timedelta(milliseconds=1))
    left = int((line.ends_at - now) / timedelta(milliseconds=1))
    return max(0, left)


# --- start delays (art. 31) ---------------------------------------------------------------


def check_start_delay(
    delay_minutes: int, approval: str | None, check_approval: Callable[[str], object]
) -> None:
    """Raise unless the delay is within the venue's own authority or approved by the centre.

    `check_approval(code)` must raise `paperpack.approval.ApprovalRejected` unless the code
    is the centre's approval of exactly this delay for this session, venue and package, not
    yet expired (the venue passes `paperpack.approval.check_delay_approval`).
    """
    if delay_minutes < 0:
        raise RuleViolation("bad-delay", "a start delay cannot be negative")
    if delay_minutes * MINUTE_MS <= VENUE_DELAY_LIMIT_MS:
        return
    if not approval:
        raise RuleViolation(
            "delay-needs-approval",
            f"a delay of {delay_minutes} min is over 30 min and needs the centre's signed "
            "approval code (art. 31); ask the exam authority for one",
        )
    try:
        check_approval(approval)
    except ApprovalRejected as exc:
        raise RuleViolation(exc.slug, str(exc)) from None
