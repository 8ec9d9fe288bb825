"""One string catalogue per language, complete, and every string the pages use is in it."""

from __future__ import annotations

import json
import re

from client import I18N_DIR, STATIC_DIR, TEMPLATES_DIR

LANGUAGES = ("zh-CN", "en")


def catalogue(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def used_keys() -> set[str]:
    """Keys named literally in templates (t("...")) and modules (t("...") / t(`...`))."""
    keys: set[str] = set()
    pattern = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z0-9_.]+)["']""")
    for path in [*TEMPLATES_DIR.rglob("*.html"), *STATIC_DIR.rglob("*.js")]:
        keys |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return keys


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
