"""One string catalogue per language, complete, and every string the pages use is in it."""

from __future__ import annotations

import json
import re

from client import I18N_DIR, STATIC_DIR, TEMPLATES_DIR
from server.central.staff import LOGIN_ERRORS, STAFF_ROLES

LANGUAGES = ("zh-CN", "en")


def catalogue(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def used_keys() -> set[str]:
    """Keys named literally in templates (t("...")) and modules (t("...") / t(`...`)); a
    prefix completed at run time (t("central.role." ~ role)) is left to its own test."""
    keys: set[str] = set()
    pattern = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z0-9_.]+)["']""")
    for path in [*TEMPLATES_DIR.rglob("*.html"), *STATIC_DIR.rglob("*.js")]:
        keys |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return {key for key in keys if not key.endswith(".")}


def test_both_languages_have_the_same_keys() -> None:
    """Chinese and English catalogues name exactly the same strings."""
    assert set(catalogue("zh-CN")) == set(catalogue("en"))


def test_every_string_the_pages_use_is_in_the_catalogues() -> None:
    """No template or module names a string key the catalogues lack."""
    missing = used_keys() - set(catalogue("zh-CN"))
    assert not missing, sorted(missing)
    assert len(used_keys()) > 100


def test_no_page_carries_inline_script() -> None:
    """Templates load modules only: inline <script> blocks are JSON data, no on* handlers."""
    for path in TEMPLATES_DIR.rglob("*.html"):
        for tag in re.findall(r"<script\b[^>]*>", path.read_text(encoding="utf-8")):
            assert 'type="application/json"' in tag or "src=" in tag, (path, tag)
        handlers = re.findall(r"\s(on[a-z]+)\s*=", path.read_text(encoding="utf-8"))
        assert not handlers, (path, handlers)


def test_the_central_console_strings_are_in_the_catalogues() -> None:
    """The central templates name their strings, and the role names and login refusals the
    console shows at run time are in both catalogues."""
    central = {key for key in used_keys() if key.startswith("central.")}
    assert {"central.title", "central.login.heading", "central.status.title"} <= central
    needed = {f"central.role.{role}" for role in STAFF_ROLES} | set(LOGIN_ERRORS.values())
    for lang in LANGUAGES:
        missing = needed - set(catalogue(lang))
        assert not missing, (lang, sorted(missing))


def words_of_their_own(html: str) -> list[str]:
    """The words a template shows that are not from the catalogues: its text with the
    template syntax, the <code> samples (a command, a hash) and the tags taken out, and
    the shown attributes that are not an expression."""
    for syntax in (r"\{#.*?#\}", r"\{%.*?%\}", r"\{\{.*?\}\}", r"<code>.*?</code>"):
        html = re.sub(syntax, " ", html, flags=re.DOTALL)
    attributes = re.findall(r'(?:title|placeholder|aria-label|alt|value)="([^"]*)"', html)
    text = re.sub(r"<[^>]*>", " ", html)
    return re.findall(r"[^\W\d_]+", " ".join([text, *attributes]))


def test_the_central_templates_carry_no_words_of_their_own() -> None:
    """Every word a central page shows comes from the catalogues (the venue's pages fill
    theirs in from modules too, so only the central ones are held to this)."""
    assert words_of_their_own('<p title="Hi">{{ t("a.b") }} <b>Log</b>: <code>x</code></p>') == [
        "Log",
        "Hi",
    ]
    for path in (TEMPLATES_DIR / "central").glob("*.html"):
        assert not words_of_their_own(path.read_text(encoding="utf-8")), path.name


def test_times_are_shown_for_people_in_the_sessions_zone() -> None:
    """`format_time` gives Beijing time in each language's form; nothing else passes through."""
    from server.i18n import format_time

    stamp = "2026-12-05T00:22:00.000Z"
    assert format_time(stamp, "zh-CN", "Asia/Shanghai") == "2026年12月5日 08:22"
    assert format_time(stamp, "en", "Asia/Shanghai") == "5 Dec 2026, 08:22"
    assert format_time("2026-12-05T00:22:00+00:00", "en", "UTC") == "5 Dec 2026, 00:22"
    assert format_time(None, "en", "UTC") == "" and format_time("soon", "en", "UTC") == "soon"


def test_the_central_status_page_shows_no_raw_stamps() -> None:
    """Every time on the central status page goes through `when` (local, for people) and
    keeps the machine value only in <time datetime>."""
    page = (TEMPLATES_DIR / "central" / "status.html").read_text(encoding="utf-8")
    shown = re.findall(r"(?<!datetime=\")\{\{\s*row\.(\w+_at)\b", page)
    assert not shown, shown
    assert page.count("when(row.") == 3  # unlocked, uploaded, the live line's last heartbeat
