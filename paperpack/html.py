"""Exam-content HTML: the allowlist, the sanitiser, and the checks that refuse unsafe markup.

Stems, options and section instructions are small fragments of HTML. This module owns
what they may contain:

- `sanitise(html)` cleans a fragment with nh3 (ammonia) down to the allowlist below and keeps
  only `asset:NAME` URLs, so nothing a candidate's browser renders can run code or fetch from
  the network. It is applied to every fragment that enters a `Paper`.
- `html_problems(html)` names everything in a fragment that the sanitiser would have to
  remove (scripts, event handlers, `javascript:`/remote/`data:` URLs, frames, forms, elements
  and attributes outside the allowlist). Validation *refuses* such a paper with these messages
  instead of silently changing what the author wrote.
- `asset_references(html)` lists the asset names a fragment uses (`<img src="asset:NAME">`,
  `<audio src="asset:NAME">`).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

ASSET_SCHEME = "asset:"
# Asset names: what may follow `asset:` in a src (and key the paper's asset map).
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "br", "span", "div", "b", "strong", "i", "em", "u", "sub", "sup",
        "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
        "code", "pre", "img", "audio",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "img": {"src", "alt", "width", "height"},
    "audio": {"src", "controls"},
}
# Elements whose *content* is dropped with them, not just the tags.
_DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "form", "svg", "math"}
# Elements that are dangerous rather than merely unsupported: named with their reason.
_DANGEROUS_TAGS: dict[str, str] = {
    "script": "scripts never run in exam content",
    "style": "style sheets can hide or restyle the page",
    "iframe": "frames load other pages",
    "frame": "frames load other pages",
    "frameset": "frames load other pages",
    "object": "embedded objects load plug-ins or other pages",
    "embed": "embedded objects load plug-ins or other pages",
    "applet": "embedded objects load plug-ins or other pages",
    "form": "forms submit data elsewhere",
    "input": "form controls do not belong in a stem",
    "button": "form controls do not belong in a stem",
    "select": "form controls do not belong in a stem",
    "textarea": "form controls do not belong in a stem",
    "link": "links load external resources",
    "meta": "meta elements can redirect the page",
    "base": "base elements redirect every URL",
    "svg": "inline SVG can carry scripts; embed the picture as a PNG asset",
    "math": "MathML is not supported; embed the formula as an image asset",
}
_URL_ATTRIBUTES = {
    "src", "href", "action", "formaction", "poster", "data", "background",
    "srcset", "xlink:href", "cite", "longdesc", "ping", "manifest",
}  # fmt: skip


def sanitise(html: str) -> str:
    """Return `html` reduced to the exam-content allowlist, with only `asset:NAME` URLs kept."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_keep_attribute,
        url_schemes={"asset"},
        link_rel=None,
        strip_comments=True,
    )


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    """nh3 attribute filter: a src survives only as a well-formed `asset:NAME`."""
    if name == "src":
        return value if _asset_name(value) is not None else None
    return value


def _asset_name(url: str) -> str | None:
    """The NAME of an `asset:NAME` URL, or None if `url` is anything else."""
    if not url.startswith(ASSET_SCHEME):
        return None
    name = url[len(ASSET_SCHEME) :]
    return name if ASSET_NAME.match(name) else None


def html_problems(html: str) -> list[str]:
    """Every unsafe or unsupported thing in `html`, one message each (empty list: it is fine)."""
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    return scanner.problems


def asset_references(html: str) -> set[str]:
    """The asset names used as `src="asset:NAME"` on `<img>` and `<audio>` in `html`."""
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    return scanner.assets


def _url_problem(tag: str, attr: str, value: str) -> str | None:
    """What is wrong with a URL attribute value, or None if it is a usable asset reference."""
    # Browsers ignore ASCII whitespace and control characters inside a scheme
    # ("java\tscript:"), so compare without them.
    squeezed = re.sub(r"[\x00-\x20]", "", value).lower()
    where = f"<{tag} {attr}>"
    if squeezed.startswith(("javascript:", "vbscript:")):
        scheme = squeezed.split(":")[0]
        return f"unsafe HTML: {scheme}: URL in {where}; scripts never run in exam content"
    if squeezed.startswith("data:"):
        return (
            f"unsafe HTML: data: URL in {where}; put the file under `assets` "
            f'and write {attr}="asset:NAME"'
        )
    if (
        squeezed.startswith(("http:", "https:", "ftp:", "file:", "//", "\\\\", "/\\", "\\/"))
        or "://" in squeezed
    ):
        return (
            f"unsafe HTML: remote URL {value!r} in {where}; exam content never loads from the "
            f'network: put the file under `assets` and write {attr}="asset:NAME"'
        )
    if attr != "src" or tag not in ALLOWED_ATTRIBUTES:
        return None  # the attribute itself is reported as not allowed
    if value.startswith(ASSET_SCHEME) and _asset_name(value) is None:
        return (
            f"bad asset reference {value!r} in {where}; asset names are letters, digits, "
            "'.', '_' and '-'"
        )
    if _asset_name(value) is None:
        return (
            f"unsupported URL {value!r} in {where}; refer to an embedded file as "
            f'{attr}="asset:NAME"'
        )
    return None


class _Scanner(HTMLParser):
    """Walks a fragment once, collecting problems and asset references."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.assets: set[str] = set()

    def _report(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DANGEROUS_TAGS:
            self._report(f"unsafe HTML: <{tag}> element; {_DANGEROUS_TAGS[tag]}")
        elif tag not in ALLOWED_TAGS:
            self._report(
                f"HTML element <{tag}> is not allowed in exam content; allowed: "
                + ", ".join(sorted(ALLOWED_TAGS))
            )
        for name, value in attrs:
            self._check_attribute(tag, name, value or "")

    handle_startendtag = handle_starttag

    def _check_attribute(self, tag: str, name: str, value: str) -> None:
        if name.startswith("on"):
            self._report(f"unsafe HTML: event handler {name}= on <{tag}>; scripts never run")
            return
        if name in _URL_ATTRIBUTES:
            problem = _url_problem(tag, name, value)
            if problem is not None:
                self._report(problem)
                return
            name_ = _asset_name(value)
            if name_ is not None and name in ALLOWED_ATTRIBUTES.get(tag, set()):
                self.assets.add(name_)
        if name == "style":
            self._report(f"HTML attribute style= on <{tag}> is not allowed; styling is the page's")
        elif tag in ALLOWED_TAGS and name not in ALLOWED_ATTRIBUTES.get(tag, set()):
            allowed = sorted(ALLOWED_ATTRIBUTES.get(tag, set()))
            self._report(
                f"HTML attribute {name}= on <{tag}> is not allowed"
                + (f"; allowed: {', '.join(allowed)}" if allowed else "")
            )
