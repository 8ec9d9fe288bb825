"""The unlock ceremony (art. 23-24), routes and domain; the imported package comes from
`server.venue.packages`.

- Ceremony: the system administrator opens it (inside the unlock window); each supervisor,
  logged in under their own account, enters their share card, checked on entry (a wrong share
  is named by its holder number; the same person twice is refused); the time release is
  fetched from the central server when `central_url` is set, or typed in as the code. The
  ceremony times out after `ceremony_timeout_s` and can be reset by hand; either way every
  entered share is forgotten.
- On success the paper (without keys) is decrypted into memory only (`ExamState` in
  `server.venue.live`, kept on the app, never written to disk) and every candidate's variant is
  prepared. Each step is audited. With `reopen_sealed` the paper key also comes back sealed
  to this machine, kept on disk from the exam's start (`server.venue.restart`); after a
  restart, an unlock gives the time the paper was away back to every open attempt.
- A practice package (its signed manifest says `practice`) goes through the same steps: the
  dry run. A real one needs the venue's staff to be right (one chief examiner, at least one
  administrator, art. 19) and, by the session rule, the inspection and a passed dry run
  (`server.venue.inspection`; otherwise the screen warns). A supervisor who declared a
  conflict of interest enters no share (art. 48). Before the paper is served, each item is
  rendered once with its files (`server.venue.display_check`): a failure stops the opening.

The online time release (asking the centre) is `server.venue.time_release`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from paperpack import sharecards, unlock, variants
from paperpack.canonical import canonical_hash
from paperpack.crypto import X25519PublicKey, read_wrapping_public
from paperpack.errors import OutsideWindow, PaperpackError
from paperpack.model import Paper, paper_to_dict
from paperpack.typable import Mistyped
from server import audit
from server.clock import iso, parse_time
from server.errors import Conflict
from server.http import read_json_object, require_field
from server.problems import Problem
from server.venue import keys
from server.venue.background import run_in_background
from server.venue.display_check import DisplayFailed, check_display
from server.venue.inspection import unlock_gate
from server.venue.live import ExamState
from server.venue.packages import ImportRefused, verify_package
from server.venue.restart import close_outage
from server.venue.staff import has_conflict, require_role, role_count_problem
from server.venue.time_release import fetch_release_for
from server.venue.workspace import load_venue, load_wrapping_key

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

ADMIN = "system_administrator"
SUPERVISORS = ("chief_examiner", "invigilator")
RELEASE_ROLES = (ADMIN, "chief_examiner")  # who enters or fetches the time release
MAX_BODY = 64 * 1024


@dataclass
class CeremonyState:
    """One open ceremony: the unlock object holding the shares entered so far (in memory)."""

    ceremony_id: int
    session_id: str
    package_id: str
    dry_run: bool
    expires_at: datetime
    unlocker: unlock.Unlock
    holders: dict[int, str] = field(default_factory=dict)  # holder number -> staff login
    release_source: str | None = None
    opened_by: str = ""  # login of the administrator who opened it
    # The inspection and dry run still missing before a real unlock (art. 21(3)), shown as a
    # warning on the ceremony screen; None when done, for a dry run, or when required.
    inspection: dict[str, Any] | None = None

    def next_step(self) -> str:
        """What the ceremony waits for: "shares" (a supervisor who has not entered one yet),
        "release" (the chief examiner or the administrator) or "open" (nothing: it opens)."""
        if len(self.holders) < self.unlocker.threshold:
            return "shares"
        return "open" if self.release_source else "release"

    def view(self, now: datetime) -> dict[str, Any]:
        return {
            "ceremony_id": self.ceremony_id,
            "session_id": self.session_id,
            "package_id": self.package_id,
            "dry_run": self.dry_run,
            "status": "open",
            "expires_at": iso(self.expires_at),
            "shares_entered": len(self.holders),
            "shares_needed": self.unlocker.threshold,
            "progress": self.unlocker.progress,
            "entered_by": sorted(self.holders.values()),
            # The set code printed on every share card ("Set: XXXXXXXX"), for staff to compare.
            "set_code": self.unlocker.manifest.shares["set_id"],
            "opened_by": self.opened_by,
            "holders": [
                {"holder_no": number, "login": login}
                for number, login in sorted(self.holders.items())
            ],
            "shares_complete": len(self.holders) >= self.unlocker.threshold,
            "next_step": self.next_step(),
            "release_roles": list(RELEASE_ROLES),
            "share_roles": list(SUPERVISORS),
            "release": self.release_source,
            "inspection_warning": self.inspection,
            "server_time": iso(now),
        }


# --- the ceremony -------------------------------------------------------------------------


def latest_package(db: Database, session_id: str) -> dict[str, Any]:
    rows = list(
        db.query(
            "SELECT p.*, s.window_not_before, s.window_not_after FROM packages p"
            " JOIN sessions s ON s.package_id = p.package_id WHERE s.session_id = ?",
            [session_id],
        )
    )
    if not rows:
        raise Conflict(
            "no-package",
            f"no package is in force for session {session_id}: import it, and have a second "
            "staff member confirm the import",
        )
    return rows[0]


def check_window(package: Mapping[str, Any], now: datetime) -> None:
    opens = parse_time(package["window_not_before"])
    closes = parse_time(package["window_not_after"])
    if not opens <= now < closes:
        raise Conflict(
            "outside-window",
            f"the unlock window is {iso(opens)} to {iso(closes)}; it is {iso(now)}: the paper "
            "can only be unlocked inside it (art. 24)",
            opens_at=iso(opens),
            closes_at=iso(closes),
        )


def start_ceremony(
    db: Database, package: Mapping[str, Any], actor: str, now: datetime, expires: datetime
) -> int:
    cursor = db.execute(
        "INSERT INTO ceremonies (session_id, package_id, dry_run, status, opened_by, opened_at,"
        " expires_at) VALUES (?, ?, ?, 'open', ?, ?, ?)",
        [
            package["session_id"],
            package["package_id"],
            int(package["kind"] == "practice"),
            actor,
            iso(now),
            iso(expires),
        ],
    )
    ceremony_id = int(cursor.lastrowid or 0)
    audit.record(
        db,
        actor,
        "ceremony.opened",
        f"session:{package['session_id']}",
        {
            "ceremony_id": ceremony_id,
            "package_id": package["package_id"],
            "dry_run": package["kind"] == "practice",
        },
        now=now,
    )
    return ceremony_id


def end_ceremony(db: Database, ceremony_id: int, status: str, actor: str, now: datetime) -> None:
    db.execute(
        "UPDATE ceremonies SET status = ?, closed_at = ? WHERE ceremony_id = ? AND status = 'open'",
        [status, iso(now), ceremony_id],
    )
    audit.record(db, actor, f"ceremony.{status}", f"ceremony:{ceremony_id}", {}, now=now)


def record_share(
    db: Database, ceremony_id: int, holder: int, staff_login: str, now: datetime
) -> None:
    staff_id = db.execute("SELECT staff_id FROM staff WHERE login = ?", [staff_login]).fetchone()
    db.execute(
        "INSERT INTO ceremony_shares (ceremony_id, holder_no, staff_id, entered_at)"
        " VALUES (?, ?, ?, ?)",
        [ceremony_id, holder, staff_id[0] if staff_id else 0, iso(now)],
    )
    audit.record(
        db,
        staff_login,
        "ceremony.share_entered",
        f"ceremony:{ceremony_id}",
        {"holder_no": holder},
        now=now,
    )


def record_release(db: Database, ceremony_id: int, source: str, actor: str, now: datetime) -> None:
    db.execute(
        "UPDATE ceremonies SET release_source = ? WHERE ceremony_id = ?", [source, ceremony_id]
    )
    audit.record(
        db,
        actor,
        "ceremony.release_entered",
        f"ceremony:{ceremony_id}",
        {"source": source},
        now=now,
    )


def record_unlocked(
    db: Database, state: CeremonyState, exam: ExamState, paper_hash: str, now: datetime
) -> None:
    """Mark the session unlocked, keep every candidate's variant digest, and audit it."""
    digest = variants.variant_digest(exam.variants.values())
    db.conn.executemany(
        "INSERT OR REPLACE INTO variants (session_id, ticket, form_id, digest, prepared_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(state.session_id, v.ticket, v.form, v.digest, iso(now)) for v in exam.variants.values()],
    )
    db.execute(
        "UPDATE ceremonies SET status = 'unlocked', closed_at = ? WHERE ceremony_id = ?",
        [iso(now), state.ceremony_id],
    )
    db.execute(
        "UPDATE sessions SET status = 'unlocked', unlocked_at = ? WHERE session_id = ?",
        [iso(now), state.session_id],
    )
    audit.record(
        db,
        "system",
        "ceremony.unlocked",
        f"session:{state.session_id}",
        {
            "ceremony_id": state.ceremony_id,
            "paper_hash": paper_hash,
            "variants": len(exam.variants),
            "variant_digest": digest,
            "dry_run": state.dry_run,
            "holders": sorted(state.holders),
        },
        now=now,
    )
    # After a restart, the time the paper was away is given back to every open attempt.
    close_outage(db, state.session_id, f"ceremony:{state.ceremony_id}", now)


def roster_forms(db: Database, session_id: str) -> dict[str, str | None]:
    return {
        row[0]: row[1]
        for row in db.execute(
            "SELECT ticket, form_id FROM candidates WHERE session_id = ?", [session_id]
        )
    }


def open_exam(
    state: CeremonyState,
    roster: Mapping[str, str | None],
    now: datetime,
    seal_to: X25519PublicKey | None = None,
) -> ExamState:
    """Decrypt the paper into memory and prepare every candidate's variant (CPU: a thread).

    With `seal_to` (this machine's public key) the paper key also comes back sealed to it,
    for a restart (`server.venue.restart`)."""
    unlocked = state.unlocker.open(now, seal_to=seal_to)
    paper: Paper = unlocked.paper
    secret = bytes(unlocked.variant_secret)
    forms = {t: f for t, f in roster.items() if f}
    exam = ExamState(
        session_id=state.session_id,
        package_id=state.package_id,
        dry_run=state.dry_run,
        paper=paper,
        variant_secret=secret,
        forms=forms,
        sealed_key=unlocked.sealed_key,
        ceremony_id=state.ceremony_id,
    )
    exam.variants = variants.build_variants(paper, secret, state.session_id, roster, forms)
    return exam


async def _expire_if_due(app: web.Application, now: datetime) -> bool:
    """End the ceremony if it has timed out (its shares are forgotten); True if it did."""
    state = app[keys.LIVE].ceremony
    if state is None or now < state.expires_at:
        return False
    app[keys.LIVE].ceremony = None
    state.unlocker.close()
    await app[keys.STORE].write(end_ceremony, state.ceremony_id, "expired", "system", now)
    return True


async def _current(app: web.Application, now: datetime) -> CeremonyState:
    """The open ceremony, or `Conflict` saying it timed out or was never opened."""
    if await _expire_if_due(app, now):
        raise Conflict(
            "ceremony-expired",
            "the ceremony timed out and every entered share was forgotten: the administrator "
            "opens a new one",
        )
    state = app[keys.LIVE].ceremony
    if state is None:
        raise Conflict("no-ceremony", "no unlock ceremony is open: the administrator opens one")
    return state


async def _finish_if_complete(app: web.Application, state: CeremonyState) -> dict[str, Any]:
    """Open the paper once enough shares and the release are in; else report progress."""
    now = app[keys.CLOCK].now()
    unlocker = state.unlocker
    if len(unlocker.holders_entered) < unlocker.threshold or not unlocker.has_release:
        return state.view(now)
    roster = await app[keys.STORE].read(roster_forms, state.session_id)
    seal_to = None
    if app[keys.SETTINGS].reopen_sealed:
        venue = load_venue(app[keys.SETTINGS].venue_dir)
        seal_to = read_wrapping_public(venue.wrap_public)
    try:
        exam = await asyncio.to_thread(open_exam, state, roster, now, seal_to)
        # Each item rendered once, with its files, before any candidate sees it (art. 24).
        sample = next(iter(exam.variants.values()), None) or variants.build_variant(
            exam.paper, exam.variant_secret, exam.session_id, "display-check", None
        )
        await asyncio.to_thread(check_display, exam.paper, sample)
    except PaperpackError as exc:
        raise Conflict("unlock-failed", str(exc)) from None
    except DisplayFailed as failed:
        app[keys.LIVE].ceremony = None
        unlocker.close()
        await app[keys.STORE].write(end_ceremony, state.ceremony_id, "stopped", "system", now)
        log.warning("ceremony.stopped session=%s item=%s", state.session_id, failed.extra["item"])
        raise
    paper_hash = canonical_hash(paper_to_dict(exam.paper, with_keys=False, with_assets=False))
    await app[keys.STORE].write(record_unlocked, state, exam, paper_hash, now)
    app[keys.LIVE].exam = exam
    app[keys.LIVE].ceremony = None
    unlocker.close()
    # Render every paper before the exam-start herd arrives; requests render on demand meanwhile.
    run_in_background(app, asyncio.to_thread(exam.render_all))
    log.info("ceremony.unlocked session=%s variants=%d", state.session_id, len(exam.variants))
    return {**state.view(now), "status": "unlocked", "variants": len(exam.variants)}


def share_refusal(exc: PaperpackError) -> tuple[str, dict[str, Any]]:
    """The slug and machine-readable parameters of a refused share: `reason` says why
    ("another-set", "not-a-holder", "mismatch", "mistyped", "mistyped-group", "malformed"),
    so pages say each in their own words (catalogue key `problem.share-rejected.<reason>`)."""
    if isinstance(exc, sharecards.DuplicateShare):
        return "share-duplicate", {}
    if isinstance(exc, sharecards.ShareRejected):
        params: dict[str, Any] = {"reason": exc.reason}
        if exc.card_set:
            params["card_set"] = exc.card_set
        return "share-rejected", params
    if isinstance(exc, Mistyped):
        if exc.group is not None:
            return "share-rejected", {
                "reason": "mistyped-group",
                "group": exc.group,
                "groups": exc.groups,
            }
        return "share-rejected", {"reason": "mistyped"}
    if isinstance(exc, sharecards.ShareMalformed):
        return "share-rejected", {"reason": "malformed"}
    return "share-rejected", {}


@routes.post("/api/v1/staff/ceremony", name="open_ceremony")
async def post_ceremony(request: web.Request) -> web.Response:
    """Open the unlock ceremony for a session (system administrator, inside the window)."""
    staff = await require_role(request, ADMIN)
    app = request.app
    body = await read_json_object(request, MAX_BODY)
    session_id = require_field(body, "session_id", str)
    now = app[keys.CLOCK].now()
    await _expire_if_due(app, now)
    if app[keys.LIVE].ceremony is not None:
        raise Problem(409, "ceremony-open", "a ceremony is already open: reset it first")
    problem = await app[keys.STORE].read(role_count_problem)
    if problem is not None:
        raise Problem(409, "role-counts", problem)
    package = await app[keys.STORE].read(latest_package, session_id)
    check_window(package, now)
    warning = await app[keys.STORE].read(unlock_gate, session_id)
    venue = load_venue(app[keys.SETTINGS].venue_dir)
    try:
        opened = await asyncio.to_thread(
            verify_package, venue, venue.directory / package["directory"], 0
        )
        unlocker = unlock.Unlock(opened, load_wrapping_key(venue), now)
    except (ImportRefused, PaperpackError) as exc:
        raise Problem(409, "package-refused", str(exc)) from None
    expires = now + timedelta(seconds=app[keys.SETTINGS].ceremony_timeout_s)
    ceremony_id = await app[keys.STORE].write(start_ceremony, package, staff.login, now, expires)
    state = CeremonyState(
        ceremony_id=ceremony_id,
        session_id=session_id,
        package_id=package["package_id"],
        dry_run=package["kind"] == "practice",
        expires_at=expires,
        unlocker=unlocker,
        opened_by=staff.login,
        inspection=warning,
    )
    app[keys.LIVE].ceremony = state
    return web.json_response(state.view(now), status=201)


@routes.get("/api/v1/staff/ceremony", name="ceremony")
async def get_ceremony(request: web.Request) -> web.Response:
    """The ceremony's progress ("2 of 3"), or whether the paper is unlocked."""
    await require_role(request, ADMIN, *SUPERVISORS)
    app = request.app
    now = app[keys.CLOCK].now()
    await _expire_if_due(app, now)
    state = app[keys.LIVE].ceremony
    if state is not None:
        return web.json_response(state.view(now))
    exam = app[keys.LIVE].exam
    if exam is not None:
        return web.json_response(
            {
                "status": "unlocked",
                "session_id": exam.session_id,
                "dry_run": exam.dry_run,
                "variants": len(exam.variants),
                "server_time": iso(now),
            }
        )
    return web.json_response({"status": "none", "server_time": iso(now)})


@routes.post("/api/v1/staff/ceremony/shares", name="enter_share")
async def post_share(request: web.Request) -> web.Response:
    """A supervisor enters their share card under their own login; checked on entry."""
    staff = await require_role(request, *SUPERVISORS)
    app = request.app
    body = await read_json_object(request, MAX_BODY)
    card = require_field(body, "share", str)
    now = app[keys.CLOCK].now()
    state = await _current(app, now)
    if await app[keys.STORE].read(has_conflict, staff.login):
        raise Problem(
            403,
            "conflict-of-interest",
            f"{staff.login} has declared a conflict of interest and cannot hold a share (art. 48):"
            " another supervisor enters theirs",
        )
    if staff.login in state.holders.values():
        raise Problem(
            409,
            "same-person",
            f"{staff.login} has already entered a share in this ceremony: "
            "each share must come from a different supervisor (art. 23(4))",
        )
    try:
        holder = state.unlocker.add_share(card, staff.login)
    except PaperpackError as exc:
        slug, params = share_refusal(exc)
        if params.get("reason") == "another-set":
            params["set_code"] = state.unlocker.manifest.shares["set_id"]
        raise Problem(422, slug, str(exc), holder=getattr(exc, "holder", None), **params) from None
    holder_no = int(holder)
    state.holders[holder_no] = staff.login
    await app[keys.STORE].write(record_share, state.ceremony_id, holder_no, staff.login, now)
    return web.json_response(await _finish_if_complete(app, state))


@routes.post("/api/v1/staff/ceremony/release", name="enter_release")
async def post_release(request: web.Request) -> web.Response:
    """The time release: {"code": "..."} typed in, or {} to fetch it from the central server."""
    staff = await require_role(request, ADMIN, "chief_examiner")
    app = request.app
    body = await read_json_object(request, MAX_BODY)
    now = app[keys.CLOCK].now()
    state = await _current(app, now)
    code = body.get("code")
    if code is not None and not isinstance(code, str):
        raise Problem(422, "invalid-field", "field 'code' must be a string")
    if code:
        release: Any = code
        source = "code"
    else:
        release = await fetch_release_for(app, state.session_id, now)
        source = "online"
    try:
        state.unlocker.add_release(release, now)
    except PaperpackError as exc:
        status = 409 if isinstance(exc, OutsideWindow) else 422
        raise Problem(status, "release-rejected", str(exc)) from None
    state.release_source = source
    await app[keys.STORE].write(record_release, state.ceremony_id, source, staff.login, now)
    return web.json_response(await _finish_if_complete(app, state))


@routes.post("/api/v1/staff/ceremony/reset", name="reset_ceremony")
async def post_reset(request: web.Request) -> web.Response:
    """Reset the ceremony by hand: every entered share is forgotten."""
    staff = await require_role(request, ADMIN, "chief_examiner")
    app = request.app
    now = app[keys.CLOCK].now()
    state, app[keys.LIVE].ceremony = app[keys.LIVE].ceremony, None
    if state is None:
        raise Problem(409, "no-ceremony", "no unlock ceremony is open")
    state.unlocker.close()
    await app[keys.STORE].write(end_ceremony, state.ceremony_id, "reset", staff.login, now)
    return web.json_response({"status": "reset", "ceremony_id": state.ceremony_id})
