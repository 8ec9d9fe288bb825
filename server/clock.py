"""The injected clock. Domain code asks the app's clock for the time, never `time.time()`,
so tests can move time to a boundary to the second."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.errors import CbtError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class SettableClock:
    """A clock tests (and dry runs) set and advance by hand."""

    current: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self.current = moment


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, the form every `*_at` field uses."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as written in a `*_at` field, as an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def check_time_zone(name: str, setting: str) -> None:
    """Refuse a time zone the pages could not show times in, naming the setting to fix."""
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise CbtError(
            f"time zone {name!r} is unknown: use an IANA name such as Asia/Shanghai ({setting})"
        ) from None
