"""The staff console: its page, and the read-only views it needs beyond the invigilator
and ceremony APIs (the dashboard's packages with their unlock windows, the rooms for the
seat grid, and the audit log with a check of its hash chain).

Every route checks the role; nothing here changes state.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server.audit import verify_audit
from server.clock import iso
from server.protocol.audit_chain import AuditBroken
from server.venue import keys
from server.venue.diskspace import disk_report, journal_rate
from server.venue.invigilate import INCIDENT_KINDS, STAFF_ROLES, VIOLATION_KINDS
from server.venue.pages import render_page
from server.venue.restart import latest_outage
from server.venue.staff import require_role

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
    return list(
        db.query(
            "SELECT p.package_id, p.session_id, p.kind, p.manifest_version, p.fragment_count,"
            " p.imported_at, s.window_not_before, s.window_not_after, s.starts_at"
            " FROM packages p LEFT JOIN sessions s ON s.session_id = p.session_id"
            " ORDER BY p.imported_at"
        )
    )


@routes.get("/api/v1/staff/dashboard", name="staff_dashboard")
async def get_dashboard(request: web.Request) -> web.Response:
    """Packages (still encrypted) with their unlock windows, the latest server outage of a
    running session (paper not open again yet, or given back), the free disk space in
    exam-minutes (`server.venue.diskspace`) and the server's time."""
    await require_role(request, *STAFF_ROLES)
    packages = await request.app[keys.STORE].read(packages_with_windows)
    outage = await request.app[keys.STORE].read(latest_outage)
    now = request.app[keys.CLOCK].now()
    settings = request.app[keys.SETTINGS]
    rate = await request.app[keys.STORE].read(journal_rate, now)
    disk = disk_report(
        settings.venue_dir, settings.venue_dir / "backup", rate, settings.disk_warn_mb << 20
    )
    return web.json_response(
        {"server_time": iso(now), "packages": packages, "outage": outage, "disk": disk}
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
