"""The pages' languages: which one a request gets, its string catalogue, and remembering it.

Times are shown to people in the sessions' local time zone (`format_time`; the pages' modules
do the same with `formatTime`), never as raw ISO-8601 UTC stamps.

Both servers' HTML pages (the venue's candidate page and staff console, the central console)
are Chinese-first with English: one catalogue per language in `client/i18n/<lang>.json`,
chosen by `?lang=`, then the `cbt_lang` cookie (set when `?lang=` chose), then Chinese.
The venue and the centre share the cookie: in the demo both run on one host, and whoever
switches one console to English has switched the other too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

from aiohttp import web

from client import I18N_DIR

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "cbt_lang"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

Translate = Callable[..., str]


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


def other_language(lang: str) -> str:
    """The language the pages' switch link leads to (there are two)."""
    return "en" if lang == DEFAULT_LANGUAGE else DEFAULT_LANGUAGE


def translator(lang: str) -> Translate:
    """`t(key, **params)`: the string of `key` in `lang` with `{name}` filled in from params,
    as the pages' modules do it (`client/static/common/i18n.js`); an unknown key is itself."""
    strings = catalogue(lang)

    def t(key: str, **params: object) -> str:
        text = strings.get(key, key)
        if not params:
            return text
        return _PLACEHOLDER.sub(lambda match: str(params.get(match[1], "")), text)

    return t


def remember_language(
    request: web.Request, response: web.StreamResponse, *, secure: bool = False
) -> None:
    """Keep the language `?lang=` chose in a cookie, so the next page opens in it too."""
    lang = request.query.get("lang")
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, samesite="Strict", httponly=True, secure=secure)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_time(text: str | None, lang: str, zone: str) -> str:
    """An ISO-8601 instant as people read it, in the time zone `zone`: "2026年11月7日 08:45"
    or "7 Nov 2026, 08:45"; "" for none, the text itself if it is not a time."""
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(ZoneInfo(zone))
    if lang == "zh-CN":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"
