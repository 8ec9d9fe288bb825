"""The HTML pages the venue serves: the candidate's exam page (and, beside it, the staff
console), rendered with jinja2 from `client/templates`, with the static ES modules and CSS.

Strings come from one catalogue per language (`client/i18n/<lang>.json`, `server.i18n`):
Chinese is the default, English on `?lang=en` (remembered in a cookie). No inline script:
the catalogue is a JSON data block the page's modules read; the CSP set by the app forbids
script elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from client import FAVICON, STATIC_DIR, templates
from server.i18n import catalogue, page_language, remember_language, translator
from server.venue import keys

routes = web.RouteTableDef()


def render_page(request: web.Request, template: str, **context: Any) -> web.Response:
    lang = page_language(request)
    # The JSON block sits inside a <script> element: "</" must not end it early.
    catalogue_json = json.dumps(catalogue(lang), ensure_ascii=False).replace("</", "<\\/")
    html = (
        templates()
        .get_template(template)
        .render(
            lang=lang,
            t=translator(lang),
            catalogue_json=catalogue_json,
            time_zone=request.app[keys.SETTINGS].time_zone,
            **context,
        )
    )
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    remember_language(request, response)
    return response


@routes.get("/", name="candidate_page")
async def candidate_page(request: web.Request) -> web.Response:
    """The candidate's exam page: login, waiting, exam and receipt in one document."""
    return render_page(request, "candidate/exam.html")


@routes.get("/favicon.ico", name="favicon")
async def favicon(request: web.Request) -> web.FileResponse:
    """The icon a browser asks for by itself (the pages also link it and the SVG under /static)."""
    return web.FileResponse(FAVICON)


routes.static("/static", STATIC_DIR, name="static")
