"""The HTML pages the venue serves: the candidate's exam page (and, beside it, the staff
console), rendered with jinja2 from `client/templates`, with the static ES modules and CSS.

Strings come from one catalogue per language (`client/i18n/<lang>.json`): Chinese is the
default, English on `?lang=en` (remembered in a cookie). No inline script: the catalogue is
a JSON data block the page's modules read; the CSP set by the app forbids script elsewhere.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aiohttp import web

from client import I18N_DIR, STATIC_DIR, templates

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "cbt_lang"

routes = web.RouteTableDef()


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The string catalogue of one language (read once per process)."""
    with (I18N_DIR / f"{lang}.json").open(encoding="utf-8") as handle:
        data: dict[str, str] = json.load(handle)
    return data


def page_language(request: web.Request) -> str:
    """?lang= wins, then the cookie, then Chinese."""
    for candidate in (request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


def render_page(request: web.Request, template: str, **context: Any) -> web.Response:
    lang = page_language(request)
    strings = catalogue(lang)
    # The JSON block sits inside a <script> element: "</" must not end it early.
    catalogue_json = json.dumps(strings, ensure_ascii=False).replace("</", "<\\/")
    html = (
        templates()
        .get_template(template)
        .render(
            lang=lang,
            t=lambda key: strings.get(key, key),
            catalogue_json=catalogue_json,
            **context,
        )
    )
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    if request.query.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, samesite="Strict", httponly=True)
    return response


@routes.get("/", name="candidate_page")
async def candidate_page(request: web.Request) -> web.Response:
    """The candidate's exam page: login, waiting, exam and receipt in one document."""
    return render_page(request, "candidate/exam.html")


routes.static("/static", STATIC_DIR, name="static")
