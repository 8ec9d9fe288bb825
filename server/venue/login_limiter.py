"""The candidate login limiter: failed logins counted per client address, in memory.

A room's computers share no secret with the server, so guessing ID numbers is slowed at the
address: after `limit` failures within `window_s` seconds, logins from that address are
refused (`RateLimited`, 429) until the oldest failure ages out. A correct login is never
counted. The counts live in memory only: a restart forgets them.
"""

from __future__ import annotations

import time
from collections import deque

from server.errors import RateLimited


class LoginLimiter:
    """Failed candidate logins per client address: at most `limit` in `window_s` seconds."""

    def __init__(self, limit: int = 20, window_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def check(self, client: str) -> None:
        recent = self._recent(client)
        if len(recent) >= self.limit:
            raise RateLimited(
                "too-many-attempts",
                "too many failed logins from this computer; "
                "wait a few minutes or ask an invigilator",
            )

    def failed(self, client: str) -> None:
        self._recent(client).append(time.monotonic())

    def _recent(self, client: str) -> deque[float]:
        recent = self._failures.setdefault(client, deque())
        while recent and recent[0] < time.monotonic() - self.window_s:
            recent.popleft()
        return recent
