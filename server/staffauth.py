"""What the venue's and the centre's staff logins share: passwords, tokens, CSRF, rate limits.

Passwords are hashed with argon2id (argon2-cffi) and checked in constant time, against a dummy
hash when the login does not exist so both answers take as long. A login hands out two random
tokens: the session token (in an HttpOnly, SameSite=Strict cookie) and a CSRF token; the
server keeps only their SHA-256. State-changing requests must echo the CSRF token in the
`X-CSRF-Token` header (or a `csrf_token` form field), compared by hash in constant time.
Rate limiting (issue 16, F2): growing delays (`server.limits.Backoff`) per address and per
account. An address that keeps failing waits longer and longer whatever login it tries. An
account under attack makes the addresses that have been guessing wait, but never one that has
not: from a clean address the right password works at once, however many wrong guesses came
from elsewhere. A successful login forgets only its own address's failures for that login.

The stores differ (the venue's SQLite via sqlite-utils, the centre's SQLite or PostgreSQL), so
each side keeps its own tables and queries; the rules and the request parsing live here.
`server.venue.staff` and `server.central.staff` build on this module.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.errors import CbtError, Forbidden, Malformed, RateLimited
from server.http import parse_json
from server.limits import MAX_COUNTED, Backoff
from server.problems import Problem

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"  # the same token in a plain HTML form
# After 5 failures for one account: 2 s, 4 s, 8 s ... up to 5 minutes between guesses.
PER_ACCOUNT = Backoff(free=5, first_delay_s=2, max_delay_s=300, window_s=3600)
# After 10 failures from one address (any logins): 2 s, 4 s ... up to 15 minutes.
PER_ADDRESS = Backoff(free=10, first_delay_s=2, max_delay_s=900, window_s=3600)
# An address with fewer failures than this (a typo or two) is not guessing: the account's
# delay does not apply to it.
GUESSING_FAILURES = 3
FAILURE_WINDOW = PER_ADDRESS.window  # both backoffs forget after the same hour
FAILURES_READ = PER_ADDRESS.free + MAX_COUNTED  # the newest failures a login reads per key
MIN_PASSWORD_LENGTH = 10
MAX_LOGIN_LENGTH = 100
MAX_PASSWORD_LENGTH = 1000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# argon2id with OWASP's minimum-memory profile (19 MiB, t=2, p=1): ~20 ms per check here.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the login does not exist, so both paths take the same time.
DUMMY_HASH = _hasher.hash("not a real password, only for timing")


class StaffError(CbtError):
    """A staff account cannot be created or changed as asked."""


def hash_password(password: str) -> str:
    """An argon2id PHC string for `password` (refusing passwords that are too short)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffError(f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    """True when `password` matches the hash (argon2 compares in constant time)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_login_name(login: str) -> None:
    """Raise `StaffError` unless `login` is letters, digits, '-', '_' or '.' (at most 100)."""
    if (
        not login
        or len(login) > MAX_LOGIN_LENGTH
        or not all(c.isalnum() or c in "-_." for c in login)
    ):
        raise StaffError(f"login {login!r} is not valid: use letters, digits, '-', '_' or '.'")


def new_token() -> str:
    """A fresh random session or CSRF token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the server stores of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def login_wait_s(
    account_failures: Sequence[datetime], address_failures: Sequence[datetime], now: datetime
) -> int:
    """Seconds until this address may try this login again (0: now), given the newest
    failures (newest first) for the login from any address and from this address for any
    login. The account's delay binds only an address that has been guessing."""
    wait = PER_ADDRESS.wait_s(address_failures, now)
    recent = [t for t in address_failures if t > now - FAILURE_WINDOW]
    if len(recent) >= GUESSING_FAILURES:
        wait = max(wait, PER_ACCOUNT.wait_s(account_failures, now))
    return wait


def check_csrf(sent: str, csrf_hash: str) -> None:
    """`Forbidden` (`csrf-failed`) unless `sent` is the token whose hash the session holds."""
    if not sent or not hmac.compare_digest(token_hash(sent), csrf_hash):
        raise Forbidden(
            "csrf-failed",
            f"missing or wrong {CSRF_HEADER} header: send the csrf_token the login returned",
        )


def login_locked(seconds: int) -> RateLimited:
    """The refusal while a login or address is locked out."""
    return RateLimited(
        "login-locked",
        f"too many failed logins from here: try again in {seconds} s, or from another computer",
        retry_after_s=seconds,
    )


def check_credentials(body: object) -> tuple[str, str]:
    """(login, password) from a parsed body; `Malformed` when they are missing or too long."""
    if not isinstance(body, dict):
        raise Malformed("malformed-json", "the body must be a JSON object: {login, password}")
    login, password = body.get("login"), body.get("password")
    if not isinstance(login, str) or not isinstance(password, str) or not login or not password:
        raise Malformed("invalid-body", "login and password must be non-empty strings")
    if len(login) > MAX_LOGIN_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        raise Malformed("invalid-body", "login or password is too long")
    return login, password


async def read_credentials(request: web.Request) -> tuple[str, str]:
    """(login, password) from a JSON body `{login, password}`; Problem 400 otherwise."""
    try:
        body = parse_json(await request.read())
    except ValueError:
        raise Problem(400, "malformed-json", "the body must be JSON: {login, password}") from None
    return check_credentials(body)


def set_session_cookie(
    response: web.StreamResponse, name: str, token: str, *, secure: bool, max_age_s: int
) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, path /, Secure when asked."""
    response.set_cookie(
        name, token, httponly=True, samesite="Strict", secure=secure, path="/", max_age=max_age_s
    )
