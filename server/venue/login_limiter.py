"""The candidate login limiter (issue 16, F3): failed logins per ticket and per address, in
memory, on the injected clock.

A room's computers share no secret with the server and often one address (NAT), so the
limits count failures, never attempts, and a correct login is never counted:

- per ticket: after 3 failures for one roster ticket, each further guess waits 2 s, 4 s,
  8 s ... up to 10 minutes (`TICKET`). Guessing one ticket's ID number stays slow, whatever
  addresses the guesses come from.
- per address: after 60 failures within 10 minutes from one address (any tickets), 1 s, 2 s
  ... up to 15 s (`ADDRESS`), plus one more free failure for every 4 different tickets that
  logged in from that address within the window (`TICKETS_PER_FREE_FAILURE`). A room of
  3,000 behind one address may so mistype about 800 times without waiting, while one
  attacker, who can log in as few real tickets, spreads guesses over many tickets slowly.

A refused try is answered 429 with `retry_after_s` (and the `Retry-After` header):
`too-many-attempts` while the ticket waits, `too-many-attempts-network` while the address
does. Failures for a ticket that is not on the roster count against the address only, so the
memory held is bounded by the roster and the LAN's addresses; keys whose failures have aged
out are pruned. A restart forgets the counts.
"""

from __future__ import annotations

from datetime import datetime

from server.clock import Clock
from server.errors import RateLimited
from server.limits import Backoff, FailureLimiter

TICKET = Backoff(free=3, first_delay_s=2, max_delay_s=600, window_s=3600)
ADDRESS = Backoff(free=60, first_delay_s=1, max_delay_s=15, window_s=600)
TICKETS_PER_FREE_FAILURE = 4  # tickets logged in from an address per extra free failure
MAX_KEPT_PER_ADDRESS = 20_000  # failure times kept per address (free ones included)


class LoginLimiter:
    """Failed candidate logins per ticket and per client address (see the module docstring)."""

    def __init__(self, clock: Clock, *, ticket: Backoff = TICKET, address: Backoff = ADDRESS):
        self.clock = clock
        self.tickets = FailureLimiter(ticket, clock)
        self.addresses = FailureLimiter(address, clock)
        self.addresses.maxlen = MAX_KEPT_PER_ADDRESS
        # address -> ticket -> when it last logged in from there (within the window)
        self._logged_in: dict[str, dict[str, datetime]] = {}
        self._pruned_at: datetime | None = None

    def allowance(self, client: str) -> int:
        """Extra free failures of `client`: one per 4 tickets logged in from it lately."""
        oldest_kept = self.clock.now() - self.addresses.backoff.window
        tickets = self._logged_in.get(client, {})
        return sum(1 for at in tickets.values() if at > oldest_kept) // TICKETS_PER_FREE_FAILURE

    def succeeded(self, client: str, ticket: str) -> None:
        """Note a correct login of `ticket` from `client` (it never counts as a failure)."""
        now = self.clock.now()
        self._logged_in.setdefault(client, {})[ticket] = now
        window = self.addresses.backoff.window
        if self._pruned_at is None or now - self._pruned_at >= window:
            self._pruned_at = now
            for address in list(self._logged_in):
                kept = {t: at for t, at in self._logged_in[address].items() if at > now - window}
                if kept:
                    self._logged_in[address] = kept
                else:
                    del self._logged_in[address]

    def check(self, client: str, ticket: str) -> None:
        """Raise `RateLimited` while this ticket or this address must wait."""
        by_ticket = self.tickets.wait_s(ticket)
        by_address = self.addresses.wait_s(client, self.allowance(client))
        if by_ticket >= by_address and by_ticket:
            raise RateLimited(
                "too-many-attempts",
                f"too many failed logins for this ticket: wait {by_ticket} s, "
                "or ask an invigilator",
                retry_after_s=by_ticket,
            )
        if by_address:
            raise RateLimited(
                "too-many-attempts-network",
                f"too many failed logins from this computer's network: wait {by_address} s, "
                "or ask an invigilator",
                retry_after_s=by_address,
            )

    def failed(self, client: str, ticket: str | None) -> None:
        """Count a failed login from `client`, and for `ticket` when it is on the roster."""
        self.addresses.failed(client)
        if ticket is not None:
            self.tickets.failed(ticket)
