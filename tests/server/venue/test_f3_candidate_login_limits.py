"""Issue 16, F3: candidate logins are limited per ticket and per address, counting failures
only, on the injected clock, with Retry-After on every 429 and state that is pruned.

A room behind one NAT address must log in whatever its typos; guessing one ticket's ID
number must stay slow from any number of addresses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.clock import SettableClock
from server.errors import RateLimited
from server.limits import Backoff
from server.venue.login_limiter import LoginLimiter
from tests.server.addresses import post_from
from tests.server.conftest import START, VenueKit, id_number, ticket

LOGIN = "/api/v1/candidate/login"


async def attempt(kit: VenueKit, n: int, id_text: str) -> Any:
    return await kit.client.post(LOGIN, json={"ticket": ticket(n), "id_number": id_text})


async def refused(resp: Any, status: int, slug: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert body["type"].endswith("/" + slug), body
    if status == 429:
        assert resp.headers["Retry-After"] == str(body["retry_after_s"])
    return body


async def test_f3_a_room_behind_one_address_logs_in_despite_its_typos(venue_kit: VenueKit) -> None:
    """50 candidates behind one address each mistype their ID once (50 failures; the old
    limit locked the address after 20), then every one of them logs in."""
    await venue_kit.import_package()
    for n in range(1, 51):
        await refused(await attempt(venue_kit, n, "110101199001019999"), 401, "login-failed")
    for n in range(1, 51):
        resp = await attempt(venue_kit, n, id_number(n))
        assert resp.status == 200, await resp.text()


async def test_f3_guessing_one_tickets_id_number_stays_slow(venue_kit: VenueKit) -> None:
    """After 3 wrong ID numbers for one ticket each guess waits twice as long as the last
    (2, 4, 8, 16 s), from this address or any other, right ID or wrong; once the wait has
    passed the right ID number logs in."""
    kit = venue_kit
    await kit.import_package()
    for _ in range(3):
        await refused(await attempt(kit, 7, "000000000000000000"), 401, "login-failed")
    waits = []
    for _ in range(4):
        body = await refused(await attempt(kit, 7, "000000000000000001"), 429, "too-many-attempts")
        waits.append(body["retry_after_s"])
        status, headers, other = await post_from(
            kit.client, "127.0.0.2", LOGIN, json={"ticket": ticket(7), "id_number": "1"}
        )
        assert status == 429 and other["type"].endswith("/too-many-attempts")
        assert headers["Retry-After"] == str(other["retry_after_s"])
        kit.clock.advance(seconds=body["retry_after_s"])
        await refused(await attempt(kit, 7, "000000000000000002"), 401, "login-failed")
    assert waits == [2, 4, 8, 16]
    await refused(await attempt(kit, 7, id_number(7)), 429, "too-many-attempts")
    kit.clock.advance(seconds=32)
    assert (await attempt(kit, 7, id_number(7))).status == 200
    assert (await attempt(kit, 8, id_number(8))).status == 200  # other tickets never waited


async def test_f3_an_address_guessing_across_tickets_waits(venue_kit: VenueKit) -> None:
    """60 failures from one address spread over tickets (unknown ones count for the address
    only) make that address wait; another address logs in at once."""
    kit = venue_kit
    await kit.import_package()
    for n in range(60):
        resp = await kit.client.post(LOGIN, json={"ticket": f"X{n:04d}", "id_number": "1"})
        await refused(resp, 401, "login-failed")
    body = await refused(await attempt(kit, 1, id_number(1)), 429, "too-many-attempts-network")
    assert 0 < body["retry_after_s"] <= 15
    status, _, _ = await post_from(
        kit.client, "127.0.0.2", LOGIN, json={"ticket": ticket(1), "id_number": id_number(1)}
    )
    assert status == 200
    kit.clock.advance(seconds=body["retry_after_s"])
    assert (await attempt(kit, 2, id_number(2))).status == 200


def test_f3_limits_run_on_the_injected_clock_and_prune_their_state() -> None:
    """The limiter reads only the clock it is given, and drops keys whose failures have all
    aged out (at most once per window), so guesses at many tickets cannot grow it for ever."""
    clock = SettableClock(START)
    limiter = LoginLimiter(
        clock, ticket=Backoff(free=1, first_delay_s=5, max_delay_s=60, window_s=600)
    )
    for n in range(200):
        limiter.failed(f"10.0.0.{n % 50}", ticket(n))
    assert len(limiter.tickets) == 200 and len(limiter.addresses) == 50
    try:
        limiter.check("10.0.0.99", ticket(3))
    except RateLimited as exc:
        assert exc.extra["retry_after_s"] == 5
    else:
        raise AssertionError("a ticket past its free failures must wait")
    clock.advance(seconds=5)
    limiter.check("10.0.0.99", ticket(3))  # the wait is over by the clock given, not by time
    clock.advance(seconds=600)
    limiter.failed("10.0.0.1", ticket(1))
    assert len(limiter.tickets) == 1  # T0001's failure just now; the rest pruned
    clock.set(START + timedelta(hours=2))
    limiter.failed("10.0.0.2", None)
    limiter.check("10.0.0.2", ticket(5))  # a check prunes too
    assert len(limiter.tickets) == 0 and len(limiter.addresses) == 1


def test_f3_an_address_that_lets_many_in_may_mistype_more() -> None:
    """Each 4 tickets logged in from an address give it one more free failure (a big room
    behind NAT mistypes more), and the same ticket logging in again gives nothing more."""
    clock = SettableClock(START)
    limiter = LoginLimiter(clock)
    for _ in range(60):
        limiter.failed("10.1.1.1", None)
    for _ in range(100):  # one ticket again and again (an attacker's own) earns nothing
        limiter.succeeded("10.1.1.1", ticket(1))
    assert limiter.allowance("10.1.1.1") == 0
    try:
        limiter.check("10.1.1.1", ticket(2))
    except RateLimited as exc:
        assert exc.slug == "too-many-attempts-network"
    else:
        raise AssertionError("60 failures with no room behind them must wait")
    for n in range(2, 41):
        limiter.succeeded("10.1.1.1", ticket(n))
    assert limiter.allowance("10.1.1.1") == 10
    limiter.check("10.1.1.1", ticket(2))  # 60 failures, 70 free now
    for _ in range(10):
        limiter.failed("10.1.1.1", None)
    try:
        limiter.check("10.1.1.1", ticket(2))
    except RateLimited as exc:
        assert exc.extra["retry_after_s"] == 1
    else:
        raise AssertionError("past 70 failures the address waits")
    clock.advance(minutes=11)
    assert limiter.allowance("10.1.1.1") == 0  # the logins have aged out with the failures
    limiter.check("10.1.1.1", ticket(2))
