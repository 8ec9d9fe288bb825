"""The central status page: per session and venue, released / unlocked / uploaded, with counts,
the venues' live line (each venue's newest heartbeat: state, counts, serious violations;
`server.central.live`) and the authority's release log (every release issued, online or read
out by phone).

`GET /api/v1/status` is JSON; `GET /status` is the same as an HTML table for the operator
(`client/templates/central/status.html`, autoescaped). Both need a central staff login
(`server.central.staff`: 401 problem+json, or a redirect to the login page). Rows come from
the venue registry, the releases served and the accepted packages (the newest export per
session and venue counts).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from paperpack.release_log import read_log, verify_log
from server.central import keys
from server.central.live import live_status
from server.central.staff import page_context, render_page, staff_api, staff_page

routes = web.RouteTableDef()
COUNTS = ("attempts", "submitted", "absent", "violations", "incidents")
LOG_SHOWN = 50  # newest release-log entries on the page (the CLI prints them all)
LOG_FIELDS = ("seq", "at", "who", "session_id", "venue_id", "channel", "forced", "reason")


def release_log_status(app: web.Application) -> dict[str, Any]:
    """The authority's release log (issue 14, point 5): every issuance, online or by phone,
    with the verdict on its chain and signatures."""
    authority = app[keys.AUTHORITY]
    entries = read_log(authority.directory)
    check = verify_log(entries, authority.signing_public)
    shown = [{k: e.get(k) for k in LOG_FIELDS} for e in entries[-LOG_SHOWN:]]
    return {"entries": shown[::-1], "total": len(entries), "intact": check.intact,
            "problem": check.problem}  # fmt: skip


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
        "release_log": release_log_status(app),
        "live": await live_status(app),  # issue 14, point 4: each venue's newest heartbeat
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
        release_log=status["release_log"], live=status["live"],
        **page_context(request),
    )  # fmt: skip
