"""Limits on guessing (issue 16, F2 and F3): growing delays that slow an attacker down without
ever locking the right person out for good.

A `Backoff` counts failures (never mere attempts) under one key (a staff login, an address,
a candidate's ticket) within `window_s`. The first `free` failures cost nothing; after that
each further failure must wait `first_delay_s`, doubling with every failure, up to
`max_delay_s`, counted from the newest failure. A try refused while waiting is not checked
and so is not counted: an attacker gets about one guess per delay, and the right person
waits at most `max_delay_s`. Failures older than the window are forgotten.

`FailureLimiter` keeps such counts in memory (the venue's candidate logins) on the injected
clock and prunes keys whose failures have all aged out. The staff logins keep their failures
in their database and use `Backoff.wait_s` on what they read (`server.staffauth`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.clock import Clock

# Failures past the free ones worth keeping: by then the delay is at any cap (2**40 s).
MAX_COUNTED = 48


@dataclass(frozen=True)
class Backoff:
    """Growing delays after `free` failures within `window_s` (see the module docstring)."""

    free: int
    first_delay_s: float
    max_delay_s: float
    window_s: float

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_s)

    def delay_s(self, failures: int, extra_free: int = 0) -> float:
        """The wait after the newest of `failures` failures (0 while they are free)."""
        free = self.free + extra_free
        if failures < free:
            return 0.0
        return min(self.max_delay_s, self.first_delay_s * 2.0 ** min(failures - free, 40))

    def wait_s(self, newest_first: Sequence[datetime], now: datetime, extra_free: int = 0) -> int:
        """Whole seconds until another try is allowed, given the failures inside the window
        (newest first, the list may stop at `free + MAX_COUNTED`); 0 when a try is allowed now.
        `extra_free` raises the free failures for this key (see the candidates' limiter)."""
        recent = [t for t in newest_first if t > now - self.window]
        if not recent:
            return 0
        until = recent[0] + timedelta(seconds=self.delay_s(len(recent), extra_free))
        return max(0, math.ceil((until - now).total_seconds()))


class FailureLimiter:
    """Failures per key in memory, on the injected clock, pruned as they age out."""

    def __init__(self, backoff: Backoff, clock: Clock) -> None:
        self.backoff = backoff
        self.clock = clock
        self._failures: dict[str, deque[datetime]] = {}
        self._pruned_at: datetime | None = None
        self.maxlen = backoff.free + MAX_COUNTED  # a caller giving extra_free raises it

    def __len__(self) -> int:
        """How many keys hold failures (for tests of the pruning)."""
        return len(self._failures)

    def count(self, key: str) -> int:
        """Failures of `key` inside the window (at most `free + MAX_COUNTED`)."""
        found = self._failures.get(key)
        if not found:
            return 0
        oldest_kept = self.clock.now() - self.backoff.window
        return sum(1 for t in found if t > oldest_kept)

    def wait_s(self, key: str, extra_free: int = 0) -> int:
        """Seconds until `key` may try again (0: now); prunes aged-out keys when due."""
        self._prune(self.clock.now())
        found = self._failures.get(key)
        if not found:
            return 0
        return self.backoff.wait_s(list(reversed(found)), self.clock.now(), extra_free)

    def failed(self, key: str) -> None:
        """Count one failure of `key` now; forget failures (and keys) past the window."""
        now = self.clock.now()
        found = self._failures.setdefault(key, deque(maxlen=self.maxlen))
        found.append(now)
        self._prune(now)

    def _prune(self, now: datetime) -> None:
        """At most once per window: drop every key whose newest failure has aged out."""
        if self._pruned_at is not None and now - self._pruned_at < self.backoff.window:
            return
        self._pruned_at = now
        oldest_kept = now - self.backoff.window
        for key in [k for k, found in self._failures.items() if found[-1] <= oldest_kept]:
            del self._failures[key]
