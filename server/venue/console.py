"""The staff console: its page, and the read-only views it needs beyond the invigilator
and ceremony APIs (the dashboard's packages with their unlock windows and the version in
force, the backup's lag and the outbox (art. 27), the staff's role counts (art. 19), the rooms
for the seat grid, and the audit log with a check of its hash chain).

Every route checks the role; nothing here changes state.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server.audit import verify_audit
from server.clock import iso, parse_time
from server.protocol.audit_chain import AuditBroken
from server.venue import keys
from server.venue.backup import CONTINUOUS_FILE, backup_status
from server.venue.diskspace import disk_report, journal_rate
from server.venue.invigilate import INCIDENT_KINDS, STAFF_ROLES, VIOLATION_KINDS
from server.venue.pages import render_page
from server.venue.restart import latest_outage
from server.venue.staff import require_role, role_count_problem
from server.venue.upload import outbox_dir, pending

routes = web.RouteTableDef()

AUDIT_ROLES = ("chief_examiner", "system_administrator")
MAX_AUDIT_ROWS = 1000


@routes.get("/staff", name="staff_console")
async def staff_console(request: web.Request) -> web.Response:
    """The staff console page (it signs in through the staff API)."""
    kinds = {"incidents": INCIDENT_KINDS, "violations": VIOLATION_KINDS}
    # Views whose API only some roles may call: the console shows their tabs to those only.
    view_roles = {"audit": AUDIT_ROLES}
    return render_page(
        request,
        "staff/console.html",
        kinds_json=json.dumps(kinds),
        view_roles_json=json.dumps(view_roles),
    )


def packages_with_windows(db: Database) -> list[dict[str, Any]]:
    """Every import (pending, in force, replaced) with its session's unlock window; `in_force`
    marks the version the session would unlock (art. 24)."""
    rows = db.query(
        "SELECT i.package_id, i.session_id, CASE i.practice WHEN 1 THEN 'practice'"
        " ELSE 'real' END AS kind, i.manifest_version, i.manifest_sha256, i.fragment_count,"
        " i.status, i.imported_at, i.imported_by, i.confirmed_at, i.confirmed_by,"
        " s.window_not_before, s.window_not_after, s.starts_at,"
        " COALESCE(s.package_id = i.package_id AND i.status = 'in_force', 0) AS in_force"
        " FROM package_imports i LEFT JOIN sessions s ON s.session_id = i.session_id"
        " WHERE i.status != 'superseded' ORDER BY i.import_id"
    )
    return [{**row, "in_force": bool(row["in_force"])} for row in rows]


def outbox_state(venue_dir: Path) -> dict[str, Any]:
    """The outbox (art. 27): answer packages waiting for the centre's receipt, and delivered."""
    waiting = pending(venue_dir)
    folder = outbox_dir(venue_dir)
    delivered = len(list(folder.glob("*.receipt.json"))) if folder.exists() else 0
    oldest = min((p.stat().st_mtime for p in waiting), default=None)
    return {
        "waiting": len(waiting),
        "delivered": delivered,
        "oldest_waiting_at": iso(datetime.fromtimestamp(oldest, UTC)) if oldest else None,
    }


# When each backed-up table's row was written: the lag is the age of the oldest uncopied one.
ROW_TIMES = {"journal": "saved_at", "audit_events": "at", "submissions": "submitted_at"}


def oldest_uncopied(db: Database, copied: dict[str, int]) -> str | None:
    """The time of the oldest row the continuous backup has not copied yet, or None."""
    times = []
    for table, column in ROW_TIMES.items():
        row = db.execute(
            f"SELECT {column} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1",  # noqa: S608 - fixed names
            [copied.get(table, 0)],
        ).fetchone()
        if row:
            times.append(str(row[0]))
    return min(times) if times else None


async def backup_state(app: web.Application) -> dict[str, Any]:
    """How far the continuous backup is behind (art. 27): rows not yet copied, and the age of
    the oldest of them in seconds (0 when it has everything), and when its file last changed."""
    venue_dir = app[keys.SETTINGS].venue_dir
    state = await backup_status(app[keys.STORE], venue_dir / "backup" / CONTINUOUS_FILE)
    behind = sum(t["behind"] for t in state["tables"].values())
    lag_s = 0.0
    if behind:
        copied = {table: t["copied"] for table, t in state["tables"].items()}
        oldest = await app[keys.STORE].read(oldest_uncopied, copied)
        if oldest:
            age = app[keys.CLOCK].now() - parse_time(oldest)
            lag_s = max(0.0, age.total_seconds())
    return {"rows_behind": behind, "lag_s": round(lag_s, 1), "backup_at": state["backup_at"]}


@routes.get("/api/v1/staff/dashboard", name="staff_dashboard")
async def get_dashboard(request: web.Request) -> web.Response:
    """Packages (still encrypted) with their unlock windows and the version in force, the
    latest server outage of a running session (paper not open again yet, or given back), the
    free disk space in exam-minutes (`server.venue.diskspace`), the continuous backup's lag
    and the outbox, what is wrong with the staff for serving a session (art. 19), and the
    server's time."""
    await require_role(request, *STAFF_ROLES)
    store = request.app[keys.STORE]
    packages = await store.read(packages_with_windows)
    outage = await store.read(latest_outage)
    staff_problem = await store.read(role_count_problem)
    backup = await backup_state(request.app)
    outbox = await asyncio.to_thread(outbox_state, request.app[keys.SETTINGS].venue_dir)
    now = request.app[keys.CLOCK].now()
    settings = request.app[keys.SETTINGS]
    rate = await store.read(journal_rate, now)
    disk = disk_report(
        settings.venue_dir, settings.venue_dir / "backup", rate, settings.disk_warn_mb << 20
    )
    return web.json_response(
        {
            "server_time": iso(now),
            "packages": packages,
            "outage": outage,
            "disk": disk,
            "backup": backup,
            "outbox": outbox,
            "staff_problem": staff_problem,
        }
    )


def list_rooms(db: Database) -> list[dict[str, Any]]:
    return list(
        db.query("SELECT room_id, name, rows, columns, spare_seats FROM rooms ORDER BY room_id")
    )


@routes.get("/api/v1/staff/rooms", name="staff_rooms")
async def get_rooms(request: web.Request) -> web.Response:
    """The venue's rooms with their seat layout (rows x columns)."""
    await require_role(request, *STAFF_ROLES)
    return web.json_response(await request.app[keys.STORE].read(list_rooms))


def audit_page(db: Database, limit: int) -> dict[str, Any]:
    events = list(
        db.query(
            "SELECT event_id, at, actor, action, object, hash FROM audit_events"
            " ORDER BY event_id DESC LIMIT ?",
            [limit],
        )
    )
    try:
        total, chain_ok, chain_error = verify_audit(db), True, ""
    except AuditBroken as broken:
        total, chain_ok, chain_error = len(events), False, str(broken)
    return {"events": events, "total": total, "chain_ok": chain_ok, "chain_error": chain_error}


@routes.get("/api/v1/staff/audit", name="staff_audit")
async def get_audit(request: web.Request) -> web.Response:
    """The latest audit events, newest first, and whether the whole chain verifies."""
    await require_role(request, *AUDIT_ROLES)
    try:
        limit = min(MAX_AUDIT_ROWS, max(1, int(request.query.get("limit", "200"))))
    except ValueError:
        limit = 200
    return web.json_response(await request.app[keys.STORE].read(audit_page, limit))
