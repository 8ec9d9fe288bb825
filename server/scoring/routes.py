"""The verification report on the central console.

    GET /results/{session_id}/report        the report as HTML (inline SVG charts, no script)
    GET /api/v1/results/{session_id}/report the same report as JSON

Both serve the report the last `cbt central score` wrote (`DIR/results/<session>/report.json`):
the page shows what was scored, not a recomputation with keys on every request. The report
holds tickets, never names or ID numbers (art. 35(6)); 404 problem+json until scored. Both
need a central staff login (`server.central.staff`): without one the HTML route redirects to
the login page and the JSON route answers 401 problem+json.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from client import templates
from paperpack.session import ID_PATTERN
from server.central import keys
from server.central.staff import page_context, staff_api, staff_page
from server.problems import Problem
from server.scoring.pipeline import results_dir
from server.scoring.report import render_report_html

routes = web.RouteTableDef()


def _load_report(request: web.Request) -> dict[str, Any]:
    session_id = request.match_info["session_id"]
    if not ID_PATTERN.match(session_id):
        raise Problem(400, "bad-session-id", "a session id is 1-64 letters, digits, '.', '_', '-'")
    path = results_dir(request.app[keys.SETTINGS].directory, session_id) / "report.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise Problem(
            404, "no-report",
            f"session {session_id} has not been scored here yet: run `cbt central score`",
        ) from None  # fmt: skip


@routes.get("/results/{session_id}/report", name="results_report")
@staff_page()
async def report_html(request: web.Request) -> web.Response:
    """The session's verification report as one self-contained HTML page, with the console's
    bar (back to the status page, sign out) above it."""
    context = page_context(request)
    html = render_report_html(
        _load_report(request), context["lang"], request.app[keys.SETTINGS].time_zone
    )
    bar = templates().get_template("central/report_bar.html").render(**context)
    html = html.replace("<body>", "<body>\n" + bar, 1)
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/results/{session_id}/report", name="results_report_json")
@staff_api()
async def report_json(request: web.Request) -> web.Response:
    """The session's verification report as JSON."""
    return web.json_response(_load_report(request), headers={"Cache-Control": "no-store"})
