"""The central status page: per session and venue, released / unlocked / uploaded, with counts.

`GET /api/v1/status` is JSON; `GET /status` is the same as an HTML table for the operator
(`client/templates/central/status.html`, autoescaped). Both need a central staff login
(`server.central.staff`: 401 problem+json, or a redirect to the login page). Rows come from
the venue registry, the releases served and the accepted packages (the newest export per
session and venue counts).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.central import keys
from server.central.staff import page_context, render_page, staff_api, staff_page

routes = web.RouteTableDef()
COUNTS = ("attempts", "submitted", "absent", "violations", "incidents")


async def collect_status(app: web.Application) -> dict[str, Any]:
    """The status document: one row per (session, venue) seen in releases or uploads."""
    storage = app[keys.STORAGE]
    releases = await storage.release_counts()
    packages = await storage.list_packages()
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    blank: dict[str, Any] = {"released": 0, "unlocked_at": None, "uploaded_at": None,
                             "export_seq": None, **dict.fromkeys(COUNTS, 0)}  # fmt: skip
    for (session_id, venue_id), count in releases.items():
        rows[(session_id, venue_id)] = {**blank, "session_id": session_id, "venue_id": venue_id}
        rows[(session_id, venue_id)]["released"] = count
    for package in packages:  # log order: a newer export overwrites an older one
        row = rows.setdefault(
            (package.session_id, package.venue_id),
            {**blank, "session_id": package.session_id, "venue_id": package.venue_id},
        )
        summary = package.summary
        row.update({key: summary.get(key, 0) for key in COUNTS})
        row.update(unlocked_at=summary.get("unlocked_at"), uploaded_at=package.received_at,
                   export_seq=package.export_seq,
                   package_sha256=package.package_sha256)  # fmt: skip
    return {
        "sessions": [rows[key] for key in sorted(rows)],
        "venues": [venue.venue_id for venue in await storage.list_venues()],
        "log_size": packages[-1].log_position if packages else 0,
        "log_root": packages[-1].log_root if packages else None,
    }


@routes.get("/api/v1/status", name="status_json")
@staff_api()
async def status_json(request: web.Request) -> web.Response:
    """Status as JSON."""
    return web.json_response(
        await collect_status(request.app), headers={"Cache-Control": "no-store"}
    )


@routes.get("/status", name="status_html")
@staff_page()
async def status_html(request: web.Request) -> web.Response:
    """Status as an HTML table."""
    status = await collect_status(request.app)
    return render_page(
        "central/status.html", rows=status["sessions"], venues=status["venues"],
        log_size=status["log_size"], log_root=status["log_root"] or "-",
        **page_context(request),
    )  # fmt: skip
