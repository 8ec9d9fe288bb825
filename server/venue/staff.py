"""Staff accounts, logins and the checks every staff endpoint makes (art. 19, 41, 50).

Roles: `chief_examiner`, `system_administrator`, `invigilator`. Passwords are hashed with
argon2id (argon2-cffi); a login sets an HttpOnly, SameSite=Strict cookie (Secure over TLS)
holding a random session token, of which only the SHA-256 is stored. CSRF: the login reply
carries a second random token; every state-changing staff request must echo it in the
`X-CSRF-Token` header (compared by hash in constant time). Rate limiting: growing delays per
address and per account, never binding a clean address (`server.staffauth.login_wait_s`, on
the injected clock); failures older than the window are deleted as new ones come.

For other modules: `await require_role(request, *roles) -> StaffIdentity` (Problem 401/403),
or the decorator `@staff_only(*roles)` on a handler taking `(request, staff)`.
Routes here: POST /api/v1/staff/login, POST /api/v1/staff/logout, GET /api/v1/staff/me.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server.audit import record
from server.clock import iso
from server.problems import Problem
from server.staffauth import (
    CSRF_HEADER,
    DUMMY_HASH,
    FAILURE_WINDOW,
    FAILURES_READ,
    SAFE_METHODS,
    StaffError,
    check_csrf,
    check_login_name,
    check_password,
    login_locked,
    login_wait_s,
    new_token,
    read_credentials,
    set_session_cookie,
    token_hash,
)
from server.venue import keys

ROLES = ("chief_examiner", "system_administrator", "invigilator")
COOKIE = "cbt_staff"
SESSION_TTL = timedelta(hours=12)

staff_routes = web.RouteTableDef()


@dataclass(frozen=True)
class StaffIdentity:
    """The logged-in staff member behind a request."""

    staff_id: int
    login: str
    name: str
    role: str

    def as_json(self) -> dict[str, Any]:
        return {
            "staff_id": self.staff_id,
            "login": self.login,
            "name": self.name,
            "role": self.role,
        }


# --- accounts --------------------------------------------------------------------------------


def add_staff(
    db: Database,
    login: str,
    name: str,
    role: str,
    password_hash: str,
    *,
    actor: str,
    now: datetime,
) -> int:
    """Create an account (password already hashed by `hash_password`); audited."""
    if role not in ROLES:
        raise StaffError(f"role {role!r} is not one of {', '.join(ROLES)}")
    check_login_name(login)
    if not name.strip():
        raise StaffError("the staff member's name is empty: pass --name")
    if db.execute("SELECT 1 FROM staff WHERE login = ?", (login,)).fetchone():
        raise StaffError(f"login {login!r} already exists: choose another login")
    cursor = db.execute(
        "INSERT INTO staff (login, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        (login, name.strip(), role, password_hash, iso(now)),
    )
    record(db, actor, "staff.added", f"staff:{login}", {"role": role}, now=now)
    return int(cursor.lastrowid or 0)


def disable_staff(db: Database, login: str, reason: str, *, actor: str, now: datetime) -> None:
    """Disable an account and end its sessions at once; audited with the reason."""
    if not reason.strip():
        raise StaffError("disabling an account needs a reason")
    row = db.execute("SELECT staff_id, active FROM staff WHERE login = ?", (login,)).fetchone()
    if row is None:
        raise StaffError(f"no staff account {login!r}: see `cbt venue staff list`")
    if not row[1]:
        raise StaffError(f"the account {login!r} is already disabled")
    db.execute("UPDATE staff SET active = 0 WHERE staff_id = ?", (row[0],))
    db.execute(
        "UPDATE staff_sessions SET ended_at = ? WHERE staff_id = ? AND ended_at IS NULL",
        (iso(now), row[0]),
    )
    record(db, actor, "staff.disabled", f"staff:{login}", {"reason": reason}, now=now)


def list_staff(db: Database) -> list[dict[str, Any]]:
    """Every account (no hashes), by login, with its conflict of interest (0/1)."""
    return list(
        db.query(
            "SELECT staff_id, login, name, role, active, conflict_declared FROM staff"
            " ORDER BY login"
        )
    )


# --- role counts and conflicts of interest (art. 19, 48) -------------------------------------


class RoleCountWrong(StaffError):
    """The venue lacks its chief examiner or system administrator, or has two chiefs."""


def role_count_problem(db: Database) -> str | None:
    """What is wrong with the active staff for serving a session (art. 19), or None: exactly
    one chief examiner and at least one system administrator, naming the command that fixes it."""
    counts: dict[str, list[str]] = {role: [] for role in ROLES}
    for login, role in db.execute("SELECT login, role FROM staff WHERE active = 1 ORDER BY login"):
        counts.setdefault(role, []).append(login)
    chiefs, admins = counts["chief_examiner"], counts["system_administrator"]
    if not chiefs:
        return (
            "the venue has no chief examiner (art. 19 needs exactly one): add one with "
            "`cbt venue staff add DIR --login LOGIN --role chief_examiner --name NAME`"
        )
    if len(chiefs) > 1:
        return (
            f"the venue has {len(chiefs)} chief examiners ({', '.join(chiefs)}); art. 19 needs "
            "exactly one: disable the others with `cbt venue staff disable DIR --login LOGIN "
            "--reason REASON`"
        )
    if not admins:
        return (
            "the venue has no system administrator (art. 19 needs at least one): add one with "
            "`cbt venue staff add DIR --login LOGIN --role system_administrator --name NAME`"
        )
    return None


def check_role_counts(db: Database) -> None:
    """Raise RoleCountWrong unless the venue may serve a session (art. 19)."""
    problem = role_count_problem(db)
    if problem is not None:
        raise RoleCountWrong(problem)


def declare_conflict(
    db: Database, login: str, rooms: list[str], reason: str, *, actor: str, now: datetime
) -> None:
    """Record a staff member's conflict of interest (art. 48) for `rooms` (empty: every room):
    they are left out of the invigilator draw for those rooms and can hold no share."""
    if not reason.strip():
        raise StaffError("a conflict of interest needs a reason: pass --reason")
    row = db.execute("SELECT staff_id FROM staff WHERE login = ?", (login,)).fetchone()
    if row is None:
        raise StaffError(f"no staff account {login!r}: see `cbt venue staff list`")
    known = {r[0] for r in db.execute("SELECT room_id FROM rooms")}
    unknown = [room for room in rooms if room not in known]
    if unknown:
        raise StaffError(
            f"no room {', '.join(unknown)} at this venue"
            f" (rooms: {', '.join(sorted(known)) or 'none'})"
        )
    db.execute("UPDATE staff SET conflict_declared = 1 WHERE staff_id = ?", (row[0],))
    targets: list[str | None] = [*rooms] if rooms else [None]
    db.conn.executemany(
        "INSERT INTO staff_conflicts (staff_id, room_id, reason, declared_by, declared_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(row[0], room, reason.strip(), actor, iso(now)) for room in targets],
    )
    record(
        db, actor, "staff.conflict_declared", f"staff:{login}", {"rooms": rooms or "all"}, now=now
    )


def conflict_rooms(db: Database, login: str) -> set[str | None]:
    """The rooms `login` declared a conflict for (None in the set: every room)."""
    return {
        r[0]
        for r in db.execute(
            "SELECT c.room_id FROM staff_conflicts c JOIN staff s ON s.staff_id = c.staff_id"
            " WHERE s.login = ?",
            (login,),
        )
    }


def has_conflict(db: Database, login: str) -> bool:
    row = db.execute("SELECT conflict_declared FROM staff WHERE login = ?", (login,)).fetchone()
    return bool(row and row[0])


# --- logins ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginCheck:
    """What a login needs to know before the (slow) password check, read in one snapshot."""

    staff: StaffIdentity | None
    password_hash: str
    locked_for_s: int  # seconds until another try is allowed, 0 = not locked


def check_login(db: Database, login: str, remote: str, now: datetime) -> LoginCheck:
    """Look up the account and how long this address must wait before trying this login."""
    since = iso(now - FAILURE_WINDOW)
    recent: dict[str, list[datetime]] = {}
    for column, value in (("login", login), ("remote", remote)):
        rows = db.execute(
            f"SELECT failed_at FROM login_failures WHERE {column} = ? AND failed_at > ?"  # noqa: S608 - column from the fixed tuple above
            " ORDER BY failed_at DESC LIMIT ?",
            (value, since, FAILURES_READ),
        ).fetchall()
        recent[column] = [datetime.fromisoformat(r[0].replace("Z", "+00:00")) for r in rows]
    locked = login_wait_s(recent["login"], recent["remote"], now)
    row = db.execute(
        "SELECT staff_id, login, name, role, password_hash FROM staff"
        " WHERE login = ? AND active = 1",
        (login,),
    ).fetchone()
    if row is None:
        return LoginCheck(None, DUMMY_HASH, locked)
    return LoginCheck(StaffIdentity(row[0], row[1], row[2], row[3]), row[4], locked)


def record_failure(db: Database, login: str, remote: str, now: datetime) -> None:
    """Count one failed login (for the rate limit; failures past the window are deleted) and
    audit it."""
    db.execute("DELETE FROM login_failures WHERE failed_at <= ?", (iso(now - FAILURE_WINDOW),))
    db.execute(
        "INSERT INTO login_failures (login, remote, failed_at) VALUES (?, ?, ?)",
        (login, remote, iso(now)),
    )
    record(db, f"anonymous@{remote}", "staff.login_failed", f"staff:{login}", {}, now=now)


def open_staff_session(
    db: Database,
    staff: StaffIdentity,
    session_token: str,
    csrf_token: str,
    remote: str,
    now: datetime,
) -> None:
    """Store a new login (token hashes only), forget this address's failures for this login
    (the typos before it; an attacker's from elsewhere stay counted), audit it."""
    db.execute(
        "INSERT INTO staff_sessions (token_hash, csrf_hash, staff_id, created_at, expires_at,"
        " last_seen_at, remote) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            token_hash(session_token),
            token_hash(csrf_token),
            staff.staff_id,
            iso(now),
            iso(now + SESSION_TTL),
            iso(now),
            remote,
        ),
    )
    db.execute("DELETE FROM login_failures WHERE login = ? AND remote = ?", (staff.login, remote))
    record(db, staff.login, "staff.login", f"staff:{staff.login}", {"remote": remote}, now=now)


def find_staff_session(
    db: Database, session_token: str, now: datetime
) -> tuple[StaffIdentity, str] | None:
    """The staff member and CSRF hash of a valid (not ended, not expired) session, or None."""
    row = db.execute(
        "SELECT s.staff_id, s.login, s.name, s.role, ss.csrf_hash FROM staff_sessions ss"
        " JOIN staff s ON s.staff_id = ss.staff_id"
        " WHERE ss.token_hash = ? AND ss.ended_at IS NULL AND ss.expires_at > ? AND s.active = 1",
        (token_hash(session_token), iso(now)),
    ).fetchone()
    if row is None:
        return None
    return StaffIdentity(row[0], row[1], row[2], row[3]), row[4]


def end_staff_session(
    db: Database, session_token: str, staff: StaffIdentity, now: datetime
) -> None:
    """Log out: end the session and audit it."""
    db.execute(
        "UPDATE staff_sessions SET ended_at = ? WHERE token_hash = ? AND ended_at IS NULL",
        (iso(now), token_hash(session_token)),
    )
    record(db, staff.login, "staff.logout", f"staff:{staff.login}", {}, now=now)


# --- request checks --------------------------------------------------------------------------


async def current_staff(request: web.Request) -> StaffIdentity:
    """The logged-in staff member; Problem 401 without a valid session, 403 on a bad CSRF token.

    State-changing methods (anything but GET/HEAD/OPTIONS) must carry `X-CSRF-Token`.
    """
    token = request.cookies.get(COOKIE, "")
    if not token:
        raise Problem(401, "not-logged-in", "log in as staff first (POST /api/v1/staff/login)")
    now = request.app[keys.CLOCK].now()
    found = request.app[keys.STORE].read_now(find_staff_session, token, now)  # one indexed row
    if found is None:
        raise Problem(401, "not-logged-in", "the staff session has ended or expired: log in again")
    staff, csrf_hash = found
    if request.method not in SAFE_METHODS:
        check_csrf(request.headers.get(CSRF_HEADER, ""), csrf_hash)
    return staff


async def require_role(request: web.Request, *roles: str) -> StaffIdentity:
    """The logged-in staff member if their role is one of `roles` (all roles when empty)."""
    staff = await current_staff(request)
    if roles and staff.role not in roles:
        raise Problem(
            403,
            "forbidden-role",
            f"this needs the role {' or '.join(roles)}; you are logged in as {staff.role}",
        )
    return staff


StaffHandler = Callable[[web.Request, StaffIdentity], Awaitable[web.StreamResponse]]


def staff_only(*roles: str) -> Callable[[StaffHandler], Callable[[web.Request], Any]]:
    """Decorate a handler `(request, staff)` so it runs only for the given roles."""

    def decorate(handler: StaffHandler) -> Callable[[web.Request], Any]:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            return await handler(request, await require_role(request, *roles))

        wrapped.staff_roles = roles  # type: ignore[attr-defined]  # read by the authz matrix test
        return wrapped

    return decorate


def client_address(request: web.Request) -> str:
    """The peer's address (the venue LAN has no proxy in front, so no forwarded headers)."""
    return request.remote or "unknown"


# --- routes ----------------------------------------------------------------------------------


@staff_routes.post("/api/v1/staff/login", name="staff_login")
async def login(request: web.Request) -> web.Response:
    """Check the password (rate-limited) and start a staff session; returns the CSRF token."""
    login_name, password = await read_credentials(request)
    store, now, remote = (
        request.app[keys.STORE],
        request.app[keys.CLOCK].now(),
        client_address(request),
    )
    check = await store.read(check_login, login_name, remote, now)
    if check.locked_for_s:
        raise login_locked(check.locked_for_s)
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(None, check_password, check.password_hash, password)
    if check.staff is None or not ok:
        await store.write(record_failure, login_name, remote, now)
        raise Problem(401, "login-failed", "wrong login or password")
    session_token, csrf_token = new_token(), new_token()
    await store.write(open_staff_session, check.staff, session_token, csrf_token, remote, now)
    response = web.json_response({"staff": check.staff.as_json(), "csrf_token": csrf_token})
    set_session_cookie(
        response,
        COOKIE,
        session_token,
        secure=request.secure,
        max_age_s=int(SESSION_TTL.total_seconds()),
    )
    return response


@staff_routes.post("/api/v1/staff/logout", name="staff_logout")
async def logout(request: web.Request) -> web.Response:
    """End the staff session (CSRF-checked) and clear the cookie."""
    staff = await current_staff(request)
    now = request.app[keys.CLOCK].now()
    await request.app[keys.STORE].write(end_staff_session, request.cookies[COOKIE], staff, now)
    response = web.json_response({"logged_out": True})
    response.del_cookie(COOKIE, path="/")
    return response


@staff_routes.get("/api/v1/staff/me", name="staff_me")
async def me(request: web.Request) -> web.Response:
    """Who is logged in."""
    staff = await current_staff(request)
    return web.json_response({"staff": staff.as_json()})
