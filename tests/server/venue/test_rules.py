"""The exam rules as plain functions: entry cut-off, sealed period, ends, delays."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack.approval import ApprovalRejected
from server.errors import CbtError
from server.venue import rules
from server.venue.rules import ExamRules, RuleViolation

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_entry_is_refused_from_five_minutes_after_the_start() -> None:
    """A first login one second before the cut-off passes; at the cut-off it is refused."""
    r = ExamRules.for_session("standard", 120)
    rules.check_entry(START + timedelta(minutes=5) - SECOND, START, r)
    with pytest.raises(RuleViolation) as err:
        rules.check_entry(START + timedelta(minutes=5), START, r)
    assert err.value.slug == "entry-closed"
    assert "5 minutes" in str(err.value)


def test_audio_video_entry_closes_at_the_start() -> None:
    """Audio/video exams admit nobody from the start on."""
    r = ExamRules.for_session("audio_video", 60)
    rules.check_entry(START - SECOND, START, r)
    with pytest.raises(RuleViolation, match="audio/video"):
        rules.check_entry(START, START, r)


def test_short_exam_is_sealed_until_fifteen_minutes_before_the_end() -> None:
    """For 120 min, submission opens at 1:45 exactly."""
    line = rules.timeline(START, ExamRules.for_session("standard", 120))
    assert line.submit_opens_at == START + timedelta(minutes=105)
    with pytest.raises(RuleViolation):
        rules.check_submit(line.submit_opens_at - SECOND, line)
    rules.check_submit(line.submit_opens_at, line)


def test_exam_of_exactly_135_minutes_counts_as_short() -> None:
    """135 minutes is still 'up to 135': sealed until 15 min before the end."""
    line = rules.timeline(START, ExamRules.for_session("standard", 135))
    assert line.submit_opens_at == START + timedelta(minutes=120)


def test_long_exam_is_sealed_for_two_hours() -> None:
    """For 180 min, submission opens 2 h after the start, whatever the grants."""
    line = rules.timeline(START, ExamRules.for_session("standard", 180), granted_ms=600_000)
    assert line.submit_opens_at == START + timedelta(hours=2)
    assert line.ends_at == START + timedelta(minutes=190)


def test_audio_video_is_sealed_to_the_end() -> None:
    """Audio/video exams cannot be submitted before the end."""
    line = rules.timeline(START, ExamRules.for_session("audio_video", 60))
    assert line.submit_opens_at == line.ends_at


def test_grants_and_pauses_move_the_end() -> None:
    """End = start + duration + granted + paused."""
    line = rules.timeline(START, ExamRules.for_session("standard", 60), 120_000, 30_000)
    assert line.ends_at == START + timedelta(minutes=62, seconds=30)


def test_open_pause_freezes_time_left() -> None:
    """While a pause is open, time left does not go down."""
    r = ExamRules.for_session("standard", 60)
    began = START + timedelta(minutes=10)
    lefts = []
    for minutes in (11, 20):
        now = START + timedelta(minutes=minutes)
        line = rules.timeline(START, r, 0, rules.paused_ms([(began, None)], now))
        lefts.append(rules.time_left_ms(now, line))
    assert lefts[0] == lefts[1] == 50 * 60_000


def test_session_overrides_apply_and_typos_are_refused() -> None:
    """Overrides in minutes replace defaults; an unknown rule name is an error."""
    r = ExamRules.for_session("standard", 90, {"entry_cutoff_minutes": 10})
    assert r.entry_cutoff_ms == 600_000
    with pytest.raises(CbtError, match="unknown exam rule"):
        ExamRules.for_session("standard", 90, {"entry_cutof_minutes": 10})


def _approves(expected: str) -> Callable[[str], None]:
    """A stand-in for paperpack.approval.check_delay_approval: accepts one code."""

    def check(code: str) -> None:
        if code != expected:
            raise ApprovalRejected("delay-approval-mismatch", "not the approved delay")

    return check


def test_delay_up_to_thirty_minutes_needs_no_approval() -> None:
    """A venue may delay by 30 minutes on its own authority."""
    rules.check_start_delay(30, None, _approves("never asked"))


def test_longer_delay_needs_the_centres_approval() -> None:
    """31 minutes without approval, or with a code the check refuses, is refused with the
    check's own slug; an approved code passes."""
    with pytest.raises(RuleViolation) as err:
        rules.check_start_delay(31, None, _approves("A60"))
    assert err.value.slug == "delay-needs-approval"
    with pytest.raises(RuleViolation) as err:
        rules.check_start_delay(60, "A45", _approves("A60"))
    assert err.value.slug == "delay-approval-mismatch"
    rules.check_start_delay(60, "A60", _approves("A60"))


@settings(max_examples=100)
@given(
    duration=st.integers(1, 400),
    granted=st.integers(0, 3_600_000),
    paused=st.integers(0, 3_600_000),
    kind=st.sampled_from(["standard", "audio_video"]),
)
def test_submission_never_opens_after_the_end(
    duration: int, granted: int, paused: int, kind: str
) -> None:
    """Whatever the duration, grants and pauses, submission opens no later than the end
    and no earlier than the start."""
    line = rules.timeline(START, ExamRules.for_session(kind, duration), granted, paused)
    assert line.starts_at <= line.submit_opens_at <= line.ends_at


def test_overlapping_pauses_stop_the_clock_once() -> None:
    """A room paused inside a venue pause, and an open pause over another: counted once."""
    t0 = START + timedelta(minutes=10)
    minute = timedelta(minutes=1)
    assert rules.paused_ms([(t0, t0 + 10 * minute), (t0 + minute, t0 + 3 * minute)], t0) == 600_000
    assert rules.paused_ms([(t0, t0 + 2 * minute), (t0 + minute, None)], t0 + 5 * minute) == 300_000
    assert rules.paused_ms([(t0, t0 + minute), (t0 + 2 * minute, t0 + 3 * minute)], t0) == 120_000
