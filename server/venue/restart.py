"""A venue restart that costs no one time: the alive mark, outages, and the paper coming back.

- **The alive mark.** Every `alive_interval_s` the running server writes `DIR/run/alive.json`
  (`alive_at`, and `stopped_at` on a clean stop). It is monitoring, not evidence, so it is
  not in the database: a kill or a power cut leaves the last mark behind, at most one
  interval before the server went down.
- **Outages.** When a server starts, each session whose paper was open (status `unlocked`)
  lost it with the old process. It gets an outage from the old server's last sign of life
  (the alive mark, or a later save or heartbeat) to the moment the paper is open again. While
  the outage is open every attempt of the session is paused (`server.venue.timelines`): the
  clocks stand still, the closer closes nobody, and the candidates' pages say the exam is
  paused while their answers wait on their computers.
- **The paper comes back** either from its key sealed to this machine (`reopen_sealed`, the
  default: docs/sealing.md, "Reopening after a restart"), at start-up before the server
  listens, or from a new unlock ceremony (`server.venue.ceremony`). Either way `close_outage`
  gives the outage's span back to every open attempt as a time grant (reason
  `venue-restart`), records one venue incident and audits it, in one transaction.
- **The sealed paper key** (`paperpack.unlock`, HPKE to the venue's X25519 key) is written to
  `DIR/run/` only from the exam's actual start, when the paper is on every candidate's
  screen anyway, and overwritten and removed when the session ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from paperpack import unlock, variants
from paperpack.errors import PaperpackError
from server import audit
from server.clock import iso, parse_time
from server.errors import CbtError
from server.venue import keys
from server.venue.background import run_in_background, stop_task
from server.venue.live import ExamState
from server.venue.packages import ImportRefused, verify_package
from server.venue.timelines import candidate_timeline, session_rules
from server.venue.workspace import load_venue, load_wrapping_key

log = logging.getLogger(__name__)

RUN_DIR = "run"
ALIVE_FILE = "alive.json"
PAPER_KEY_FORMAT = "cbt-paper-key"
PAPER_KEY_VERSION = 1
GRANT_REASON = "venue-restart"
INCIDENT_KIND = "server_restart"  # recorded by the system only, never typed by staff
OPEN_STATUSES = ("logged_in", "answering")


# --- the alive mark -------------------------------------------------------------------------


def run_dir(venue_dir: Path) -> Path:
    """DIR/run: the alive mark and the sealed paper keys (mode 0700)."""
    path = venue_dir / RUN_DIR
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _write_atomically(path: Path, data: bytes, *, sync: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_alive(venue_dir: Path, now: datetime, *, stopped: bool = False) -> None:
    """Mark this server alive at `now` (or cleanly stopped at `now`)."""
    mark: dict[str, Any] = {"alive_at": iso(now), "pid": os.getpid()}
    if stopped:
        mark["stopped_at"] = iso(now)
    # Not synced: a lost write after a power cut leaves an earlier mark, which only gives
    # candidates a little more time, never less.
    _write_atomically(run_dir(venue_dir) / ALIVE_FILE, json.dumps(mark).encode(), sync=stopped)


def read_alive(venue_dir: Path) -> datetime | None:
    """The last moment the previous server was known alive, or None if it left no mark."""
    path = venue_dir / RUN_DIR / ALIVE_FILE
    try:
        mark = json.loads(path.read_text(encoding="utf-8"))
        return parse_time(mark.get("stopped_at") or mark["alive_at"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("restart.alive_mark_unreadable path=%s", path)
        return None


# --- outages --------------------------------------------------------------------------------


def _last_sign_of_life(db: Database, session: dict[str, Any], mark: datetime | None) -> datetime:
    """The latest of the alive mark, the session's last save and heartbeat, and its unlock."""
    row = db.execute(
        "SELECT (SELECT MAX(j.saved_at) FROM journal j JOIN attempts a USING (attempt_id)"
        "        WHERE a.session_id = ?),"
        "       (SELECT MAX(last_seen_at) FROM attempts WHERE session_id = ?)",
        [session["session_id"], session["session_id"]],
    ).fetchone()
    seen = [parse_time(t) for t in (*row, session.get("unlocked_at")) if t]
    if mark is not None:
        seen.append(mark)
    return max(seen)


def open_outages(db: Database, mark: datetime | None, now: datetime) -> list[str]:
    """Open an outage for each session whose paper the stopped server held; their ids.

    A session already in an outage (a second restart before the paper came back) keeps its
    first one. A session that is over, with no attempt still open, needs none."""
    opened = []
    for session in db.query("SELECT * FROM sessions WHERE status = 'unlocked'"):
        session_id = session["session_id"]
        if db.execute(
            "SELECT 1 FROM outages WHERE session_id = ? AND reopened_at IS NULL", [session_id]
        ).fetchone():
            opened.append(session_id)
            continue
        start, exam_rules = session_rules(session)
        still_open = db.execute(
            "SELECT COUNT(*) FROM attempts WHERE session_id = ? AND status IN (?, ?)",
            [session_id, *OPEN_STATUSES],
        ).fetchone()[0]
        if not still_open and now >= start + timedelta(milliseconds=exam_rules.duration_ms):
            continue
        down_at = min(_last_sign_of_life(db, session, mark), now)
        cursor = db.execute(
            "INSERT INTO outages (session_id, down_at, up_at) VALUES (?, ?, ?)",
            [session_id, iso(down_at), iso(now)],
        )
        audit.record(
            db,
            "system",
            "venue.restarted",
            f"session:{session_id}",
            {"outage_id": cursor.lastrowid, "down_at": iso(down_at)},
            now=now,
        )
        opened.append(session_id)
    return opened


def close_outage(db: Database, session_id: str, how: str, now: datetime) -> dict[str, Any] | None:
    """The paper is open again: give the outage back to every open attempt, record it.

    Each attempt still open whose time had not run out gets one grant of the span from the
    later of the server going down and the exam's start, to `now` (less any part a pause of
    its room or the venue already stopped); the outage stops pausing it in the same
    transaction, so the span counts exactly once. One venue incident and one audit event
    record it. Returns what was done (`granted_ms`: the whole span), or None if no outage
    was open."""
    row = db.execute(
        "SELECT outage_id, down_at FROM outages WHERE session_id = ? AND reopened_at IS NULL"
        " ORDER BY outage_id LIMIT 1",
        [session_id],
    ).fetchone()
    if row is None:
        return None
    outage_id, down_at = row[0], parse_time(row[1])
    session = next(db.query("SELECT * FROM sessions WHERE session_id = ?", [session_id]))
    start, _ = session_rules(session)
    span_ms = max(0, int((now - max(down_at, start)) / timedelta(milliseconds=1)))
    reason = f"{GRANT_REASON}: server down {iso(down_at)} to {iso(now)} (outage {outage_id})"
    granted = 0
    for a in list(
        db.query(
            "SELECT a.attempt_id, a.time_granted_ms, st.room_id FROM attempts a"
            " LEFT JOIN seats st ON st.session_id = a.session_id AND st.ticket = a.ticket"
            " WHERE a.session_id = ? AND a.status IN (?, ?)",
            [session_id, *OPEN_STATUSES],
        )
    ):
        # The outage is still open here, so this timeline stands still for it; what it adds
        # over the timeline without it (less any pause of the room or venue that covered the
        # same time) is what this attempt gets back.
        line, _ = candidate_timeline(db, session, a["room_id"], a["time_granted_ms"], now)
        if now >= line.ends_at:
            continue
        plain, _ = candidate_timeline(
            db, session, a["room_id"], a["time_granted_ms"], now, outages=False
        )
        back_ms = int((line.ends_at - plain.ends_at) / timedelta(milliseconds=1))
        if back_ms <= 0:
            continue
        db.execute(
            "INSERT INTO time_grants (attempt_id, granted_ms, reason, granted_by, granted_at)"
            " VALUES (?, ?, ?, 'system', ?)",
            [a["attempt_id"], back_ms, reason, iso(now)],
        )
        db.execute(
            "UPDATE attempts SET time_granted_ms = time_granted_ms + ? WHERE attempt_id = ?",
            [back_ms, a["attempt_id"]],
        )
        granted += 1
    text = (
        f"The venue server was down from {iso(down_at)} and the paper was open again at "
        f"{iso(now)} ({how}); {granted} open attempts were given {span_ms / 1000:.3f} s back."
    )
    incident_id = db.execute(
        "INSERT INTO incidents (session_id, ticket, room_id, kind, text, recorded_by, recorded_at)"
        " VALUES (?, NULL, NULL, ?, ?, 'system', ?)",
        [session_id, INCIDENT_KIND, text, iso(now)],
    ).lastrowid
    db.execute(
        "UPDATE outages SET reopened_at = ?, reopened_by = ?, granted_ms = ?, attempts = ?,"
        " incident_id = ? WHERE outage_id = ?",
        [iso(now), how, span_ms, granted, incident_id, outage_id],
    )
    done = {
        "outage_id": outage_id,
        "down_at": iso(down_at),
        "reopened_at": iso(now),
        "reopened_by": how,
        "granted_ms": span_ms,
        "attempts": granted,
        "incident_id": incident_id,
    }
    audit.record(db, "system", "venue.outage_closed", f"session:{session_id}", done, now=now)
    return done


def latest_outage(db: Database) -> dict[str, Any] | None:
    """The most recent outage of a running session (for the staff console), or None."""
    rows = list(
        db.query(
            "SELECT o.* FROM outages o JOIN sessions s USING (session_id)"
            " WHERE s.status != 'ended' ORDER BY o.outage_id DESC LIMIT 1"
        )
    )
    return rows[0] if rows else None


# --- the sealed paper key -------------------------------------------------------------------


def paper_key_path(venue_dir: Path, session_id: str) -> Path:
    """Where a session's sealed paper key is kept (the name hides nothing; it is a hash)."""
    name = hashlib.sha256(session_id.encode()).hexdigest()[:16]
    return venue_dir / RUN_DIR / f"paper-key-{name}.sealed"


def keep_paper_key(venue_dir: Path, exam: ExamState, now: datetime) -> None:
    """Write the exam's sealed paper key to disk (mode 0600, synced)."""
    assert exam.sealed_key is not None
    document = {
        "format": PAPER_KEY_FORMAT,
        "format_version": PAPER_KEY_VERSION,
        "session_id": exam.session_id,
        "package_id": exam.package_id,
        "ceremony_id": exam.ceremony_id,
        "sealed_at": iso(now),
        "sealed_key": base64.b64encode(exam.sealed_key).decode(),
    }
    run_dir(venue_dir)
    _write_atomically(
        paper_key_path(venue_dir, exam.session_id), json.dumps(document).encode(), sync=True
    )


def destroy_paper_key(venue_dir: Path, session_id: str) -> bool:
    """Overwrite the session's sealed paper key with zeros and remove it; True if one was."""
    return _destroy(paper_key_path(venue_dir, session_id))


def _destroy(path: Path) -> bool:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with path.open("r+b") as handle:
        handle.write(bytes(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()
    return True


def read_paper_key(venue_dir: Path, session_id: str) -> dict[str, Any] | None:
    """The sealed paper key document of a session, or None; CbtError if it is damaged."""
    path = paper_key_path(venue_dir, session_id)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        raise CbtError(f"{path} is not a sealed paper key (not JSON)") from None
    if (
        not isinstance(document, dict)
        or document.get("format") != PAPER_KEY_FORMAT
        or document.get("format_version") != PAPER_KEY_VERSION
        or document.get("session_id") != session_id
        or not isinstance(document.get("package_id"), str)
        or not isinstance(document.get("sealed_key"), str)
    ):
        raise CbtError(f"{path} is not a sealed paper key of session {session_id}")
    return document


def _session_started(db: Database, session_id: str, now: datetime) -> bool:
    session = db.execute(
        "SELECT starts_at, start_delay_ms, duration_ms, paper_kind, rules, session_id"
        " FROM sessions WHERE session_id = ? AND status = 'unlocked'",
        [session_id],
    ).fetchone()
    if session is None:
        return False
    columns = ("starts_at", "start_delay_ms", "duration_ms", "paper_kind", "rules", "session_id")
    start, _ = session_rules(dict(zip(columns, session, strict=True)))
    return now >= start


async def tend_paper_key(app: web.Application, ended: list[str]) -> None:
    """One pass (with the closer's): keep the sealed key from the exam's start; destroy the
    keys of the sessions that just ended."""
    settings, live = app[keys.SETTINGS], app[keys.LIVE]
    for session_id in ended:
        if destroy_paper_key(settings.venue_dir, session_id):
            log.info("restart.paper_key_destroyed session=%s", session_id)
        if live.exam is not None and live.exam.session_id == session_id:
            live.exam.sealed_key = None
    exam = live.exam
    if exam is None or exam.sealed_key is None or exam.sealed_kept:
        return
    now = app[keys.CLOCK].now()
    if await app[keys.STORE].read(_session_started, exam.session_id, now):
        await asyncio.to_thread(keep_paper_key, settings.venue_dir, exam, now)
        exam.sealed_kept = True
        log.info("restart.paper_key_kept session=%s", exam.session_id)


# --- reopening at start-up ------------------------------------------------------------------


def _package_and_forms(
    db: Database, session_id: str, package_id: str
) -> tuple[dict[str, Any] | None, dict[str, str | None]]:
    rows = list(db.query("SELECT * FROM packages WHERE package_id = ?", [package_id]))
    forms = {
        r[0]: r[1]
        for r in db.execute(
            "SELECT ticket, form_id FROM candidates WHERE session_id = ?", [session_id]
        )
    }
    return (rows[0] if rows else None), forms


def _reopen_exam(
    venue_dir: Path,
    package: dict[str, Any],
    document: dict[str, Any],
    roster: dict[str, str | None],
) -> ExamState:
    """Verify the package again and open the paper from its sealed key (CPU: a thread)."""
    venue = load_venue(venue_dir)
    opened = verify_package(venue, venue.directory / package["directory"], 0)
    sealed = base64.b64decode(document["sealed_key"], validate=True)
    unlocked = unlock.reopen(opened, load_wrapping_key(venue), sealed)
    session_id = package["session_id"]
    forms = {t: f for t, f in roster.items() if f}
    secret = bytes(unlocked.variant_secret)
    exam = ExamState(
        session_id=session_id,
        package_id=package["package_id"],
        dry_run=package["kind"] == "practice",
        paper=unlocked.paper,
        variant_secret=secret,
        forms=forms,
        sealed_key=sealed,
        ceremony_id=int(document.get("ceremony_id") or 0),
        sealed_kept=True,
    )
    exam.variants = variants.build_variants(unlocked.paper, secret, session_id, roster, forms)
    return exam


async def reopen_from_sealed_key(app: web.Application, session_id: str) -> bool:
    """Open the session's paper from its sealed key and give the outage back; False (and
    the reason logged) if there is no usable key: staff then run the ceremony."""
    settings = app[keys.SETTINGS]
    try:
        document = read_paper_key(settings.venue_dir, session_id)
        if document is None:
            log.warning("restart.no_paper_key session=%s: run the unlock ceremony", session_id)
            return False
        package, roster = await app[keys.STORE].read(
            _package_and_forms, session_id, document["package_id"]
        )
        if package is None:
            raise CbtError(f"the package of the sealed paper key of {session_id} is not here")
        exam = await asyncio.to_thread(_reopen_exam, settings.venue_dir, package, document, roster)
    except (CbtError, PaperpackError, ImportRefused, OSError, ValueError) as exc:
        # The message names files and checks, never key material.
        log.warning("restart.reopen_failed session=%s: %s", session_id, exc)
        return False
    app[keys.LIVE].exam = exam
    done = await app[keys.STORE].write(
        close_outage, session_id, "sealed-key", app[keys.CLOCK].now()
    )
    run_in_background(app, asyncio.to_thread(exam.render_all))
    log.info(
        "restart.reopened session=%s granted_ms=%s attempts=%s",
        session_id,
        done and done["granted_ms"],
        done and done["attempts"],
    )
    return True


def _sessions_not_running(db: Database) -> set[str]:
    return {r[0] for r in db.execute("SELECT session_id FROM sessions WHERE status != 'unlocked'")}


async def restart_context(app: web.Application) -> AsyncIterator[None]:
    """At start-up: open the outages the stopped server left, reopen the papers whose keys
    are sealed here, then mark this server alive every `alive_interval_s`; on a clean stop,
    mark it stopped."""
    settings, clock = app[keys.SETTINGS], app[keys.CLOCK]
    mark = read_alive(settings.venue_dir)
    write_alive(settings.venue_dir, clock.now())
    sessions = await app[keys.STORE].write(open_outages, mark, clock.now())
    ended = await app[keys.STORE].read(_sessions_not_running)
    for session_id in ended:
        destroy_paper_key(settings.venue_dir, session_id)
    for session_id in sessions:
        if settings.reopen_sealed:
            await reopen_from_sealed_key(app, session_id)
        else:
            destroy_paper_key(settings.venue_dir, session_id)

    async def beat() -> None:
        while True:
            await asyncio.sleep(settings.alive_interval_s)
            try:
                write_alive(settings.venue_dir, clock.now())
            except OSError as exc:
                log.warning("restart.alive_mark_failed: %s", exc.strerror)

    task = asyncio.create_task(beat(), name="alive-mark")
    try:
        yield
    finally:
        await stop_task(task)
        with contextlib.suppress(OSError):
            write_alive(settings.venue_dir, clock.now(), stopped=True)
