"""QTI item-body XHTML -> our exam-content HTML, and the images it embeds.

QTI bodies use a wider XHTML than exam content allows (see `paperpack.html`). The writer
maps every element to the allowlist instead of letting validation refuse it later:

- kept as they are: p, br, span, div, b, strong, i, em, u, sub, sup, lists, tables, code, pre;
- block elements outside the allowlist (blockquote, address, dl/dt/dd, caption) become div,
  inline ones (a, abbr, cite, q, dfn, kbd, samp, var, big, small, tt) become span,
  headings become a bold paragraph;
- `<img src>` and `<object type="image/..." data>` become `<img src="asset:NAME">` with the
  file embedded as an Asset (an object's fallback content becomes the alt text);
- QTI's `prompt` becomes a div; `rubricBlock` for candidates a div (others dropped);
  feedback is dropped with a warning (an exam shows no feedback);
- templates, printed variables, MathML, includes and unknown elements are errors, never
  silently dropped. Interactions are handed to the caller (`paperpack.qti.items`).

Nothing is changed silently (docs/paper-format.md, *QTI import*):

- what the native format refuses as unsafe is an **error** naming the item, the field and
  the construct: `on...=` event handlers and `javascript:`/`vbscript:` URLs;
- every other element shown differently and every attribute dropped is a **warning**,
  once per item and construct, listing the elements and fields it was met in. Only the
  attributes that carry nothing a reader sees (`id`, `label`, `xml:lang`, `xml:base`,
  `xml:space`) are dropped without a word.

Runs of whitespace collapse (outside pre), and the result is checked against the native
rules (`paperpack.html.html_problems`, any finding an error) before it goes through
`paperpack.html.sanitise`, so the sanitiser never removes anything unreported.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from xml.etree.ElementTree import Element

from paperpack.html import html_problems, sanitise
from paperpack.model import Asset
from paperpack.qti.report import Report
from paperpack.qti.source import MAX_FILE_BYTES, Package, QtiFileError, local_name, resolve_href

QTI_NAMESPACES = frozenset(
    {"http://www.imsglobal.org/xsd/imsqti_v2p1", "http://www.imsglobal.org/xsd/imsqti_v2p2"}
)
MATHML = "http://www.w3.org/1998/Math/MathML"

_KEEP = frozenset(
    {
        "p", "br", "span", "div", "b", "strong", "i", "em", "u", "sub", "sup",
        "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "code", "pre",
    }
)  # fmt: skip
_AS_DIV = frozenset({"blockquote", "address", "dl", "dt", "dd", "caption", "rubricBlock"})
_AS_SPAN = frozenset(
    {"a", "abbr", "acronym", "cite", "q", "dfn", "kbd", "samp", "var", "big", "small", "tt"}
)
_AS_OTHER = {"tfoot": "tbody", "prompt": "div"}
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_EMPTY = frozenset({"hr", "col", "colgroup"})  # nothing a candidate needs
_FEEDBACK = frozenset({"feedbackInline", "feedbackBlock", "modalFeedback"})
_TEMPLATED = frozenset({"templateInline", "templateBlock", "printedVariable"})
# Elements rendered as blocks (or containing blocks): whitespace between them is layout.
_BLOCKS = frozenset(
    {
        "itemBody", "simpleChoice", "prompt", "div", "p", "ul", "ol", "li", "table", "thead",
        "tbody", "tfoot", "tr", "th", "td", "pre", "hr", "col", "colgroup", "choiceInteraction",
        "extendedTextInteraction", "feedbackBlock", "modalFeedback", "templateBlock",
        *_AS_DIV, *_HEADINGS,
    }
)  # fmt: skip
XML_NS = "{http://www.w3.org/XML/1998/namespace}"
# Attributes that carry nothing a reader sees: dropped without a warning.
_SILENT_ATTRIBUTES = frozenset(
    {"id", "label", f"{XML_NS}lang", f"{XML_NS}base", f"{XML_NS}space", "lang"}
)
# Attributes the writer itself reads, by element; the rest of an element's are dropped.
_READ_ATTRIBUTES: dict[str, frozenset[str]] = {
    "img": frozenset({"src", "alt", "width", "height"}),
    "object": frozenset({"data", "type", "width", "height"}),
    "rubricBlock": frozenset({"view"}),
    "a": frozenset({"href"}),
    # QTI's own elements: what the converters (paperpack.qti.items) read or report
    "itemBody": frozenset(),
    "prompt": frozenset(),
    "simpleChoice": frozenset({"identifier", "fixed", "showHide", "templateIdentifier"}),
    "choiceInteraction": frozenset(
        {"responseIdentifier", "shuffle", "maxChoices", "minChoices", "orientation"}
    ),
    "textEntryInteraction": frozenset(
        {"responseIdentifier", "expectedLength", "patternMask", "placeholderText"}
    ),
    "extendedTextInteraction": frozenset(
        {
            "responseIdentifier",
            "expectedLength",
            "patternMask",
            "placeholderText",
            "maxStrings",
            "minStrings",
            "expectedLines",
            "format",
        }
    ),
}
_SHOWN_AS = {
    **{tag: "a plain block (<div>)" for tag in _AS_DIV if tag != "rubricBlock"},
    **{tag: "plain text (<span>)" for tag in _AS_SPAN if tag != "q"},
    **{tag: "a bold paragraph" for tag in _HEADINGS},
    "tfoot": "part of the table body (<tbody>)",
}
_DROPPED_ELEMENT = {
    "hr": "<hr> (a horizontal rule) dropped",
    "col": "<col> (column widths and styles) dropped",
    "colgroup": "<colgroup> (column widths and styles) dropped",
}
_SCRIPT_SCHEME = re.compile(r"^(javascript|vbscript):")
_ASSET_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SPACE = re.compile(r"\s+")

# Renders one interaction element in place (e.g. a blank marker); returns its HTML.
InteractionRenderer = Callable[[Element], str]


@dataclass
class Assets:
    """The images one import embeds, named uniquely, shared when two items use one file."""

    package: Package
    report: Report
    by_file: dict[str, str] = field(default_factory=dict)  # package name -> asset name
    assets: list[Asset] = field(default_factory=list)

    def embed(self, where: str, base: str, ref: str, media_type: str | None) -> str | None:
        """Embed the image `ref` (relative to file `base`); its asset name, or None on error."""
        try:
            name = resolve_href(base, ref)
        except QtiFileError as exc:
            self.report.error(f"{where}: image {exc}")
            return None
        if name in self.by_file:
            return self.by_file[name]
        if not self.package.exists(name):
            self.report.error(
                f"{where}: image file {ref!r} not found (looked for {name} in "
                f"{self.package.label}); add the file or remove the image"
            )
            return None
        kind = media_type or mimetypes.guess_type(name)[0] or ""
        if not kind.startswith("image/"):
            self.report.error(
                f"{where}: {ref!r} is not an image (type {kind or 'unknown'}); "
                "only images are imported from QTI bodies"
            )
            return None
        try:
            data = self.package.read(name, MAX_FILE_BYTES)
        except QtiFileError as exc:
            self.report.error(f"{where}: image {exc}")
            return None
        # The bytes decide the type: a JPEG saved as .png is still a JPEG.
        kind = sniff_image(data) or ""
        if not kind:
            self.report.error(
                f"{where}: image {ref!r} is not a PNG, JPEG, GIF or WebP file; convert it"
            )
            return None
        asset_name = self._unique_name(name)
        self.by_file[name] = asset_name
        self.assets.append(Asset(asset_name, kind, data))
        return asset_name

    def _unique_name(self, name: str) -> str:
        stem, ext = posixpath.splitext(posixpath.basename(name))
        stem = _ASSET_NAME_CHARS.sub("-", stem).strip("-._")[:80] or "image"
        ext = _ASSET_NAME_CHARS.sub("", ext)[:10]
        taken = {a.name for a in self.assets}
        candidate, n = f"{stem}{ext}", 1
        while candidate in taken:
            n += 1
            candidate = f"{stem}-{n}{ext}"
        return candidate


@dataclass
class BodyWriter:
    """Writes the HTML of one item's body (or part of it); problems go to the report."""

    where: str  # "file.xml: item ID", the prefix of every message
    base: str  # package name of the item file, for resolving image paths
    assets: Assets
    report: Report
    interactions: dict[str, InteractionRenderer] = field(default_factory=dict)
    part: str = "stem"  # the item field being written, named in every message
    # (is_error, template) -> (elements met, fields met): one line per construct per item
    _notes: dict[tuple[bool, str], tuple[dict[str, None], dict[str, None]]] = field(
        default_factory=dict, init=False, repr=False
    )

    def html(self, element: Element, part: str | None = None) -> str:
        """The HTML of `element`'s content (not the element itself), for the item field
        `part` (default: the field being written, e.g. the stem a prompt belongs to)."""
        outer = self.part
        self.part = part or outer
        try:
            self.check_attributes(element)
            raw = self._children(element, pre=False).strip()
            # The writer emits only allowed HTML; should anything else slip through, it is
            # refused with the native message rather than quietly removed by the sanitiser.
            for problem in html_problems(raw):
                self._note(True, problem + "; fix it in the QTI file", "")
            return sanitise(raw)
        finally:
            self.part = outer

    def flush(self) -> None:
        """Report what this item's HTML lost or changed: one line per construct."""
        for (is_error, template), (elements, parts) in self._notes.items():
            message = f"{self.where}: {', '.join(parts)}: " + template.replace(
                "{elements}", ", ".join(elements)
            )
            (self.report.error if is_error else self.report.warn)(message)
        self._notes.clear()

    def _note(self, is_error: bool, template: str, element: str) -> None:
        elements, parts = self._notes.setdefault((is_error, template), ({}, {}))
        if element:
            elements.setdefault(element)
        parts.setdefault(self.part)

    def check_attributes(self, element: Element) -> None:
        """Report the attributes of a QTI element (itemBody, prompt, an interaction...) that
        are dropped; see `_check_attributes`."""
        self._check_attributes(element, local_name(element))

    def _check_attributes(self, element: Element, tag: str) -> None:
        """Refuse script attributes; note every other attribute that is dropped."""
        read = _READ_ATTRIBUTES.get(tag, frozenset())
        for name, value in element.attrib.items():
            if name in _SILENT_ATTRIBUTES:
                continue
            local = name.rsplit("}", 1)[-1]
            scheme = _script_scheme(value)
            if local.lower().startswith("on"):
                self._note(
                    True,
                    f"unsafe HTML: event handler {local}= on {{elements}}; scripts never run "
                    "in exam content: remove the attribute from the QTI file",
                    f"<{tag}>",
                )
            elif scheme is not None:
                self._note(
                    True,
                    f"unsafe HTML: {scheme}: URL in {{elements}}; scripts never run in exam "
                    "content: remove it from the QTI file",
                    f"<{tag} {local}>",
                )
            elif name not in read:
                self._note(False, _dropped_attribute(local), f"<{tag}>")

    def _children(self, element: Element, *, pre: bool) -> str:
        children = list(element)
        # Text segment i lies between edge i and edge i + 1 (the parent's start and end
        # count as edges of a block parent). Whitespace alone between two block edges is
        # indentation of the XML file, not content: it is dropped.
        parent_block = local_name(element) in _BLOCKS
        edges = [parent_block, *(local_name(c) in _BLOCKS for c in children), parent_block]
        segments = [element.text, *(c.tail for c in children)]
        parts: list[str] = []
        for index, segment in enumerate(segments):
            if pre or (segment and segment.strip()) or not (edges[index] and edges[index + 1]):
                parts.append(self._text(segment, pre))
            if index < len(children):
                parts.append(self._element(children[index], pre=pre))
        return "".join(parts)

    @staticmethod
    def _text(text: str | None, pre: bool) -> str:
        if not text:
            return ""
        return escape(text if pre else _SPACE.sub(" ", text), quote=False)

    def _element(self, element: Element, *, pre: bool) -> str:
        if not isinstance(element.tag, str):
            return ""  # comments and processing instructions
        tag = local_name(element)
        ns = element.tag[1:].split("}", 1)[0] if element.tag.startswith("{") else ""
        if ns == MATHML:
            self.report.error(
                f"{self.where}: MathML is not supported; embed the formula as an image"
            )
            return ""
        if ns and ns not in QTI_NAMESPACES:
            self.report.error(f"{self.where}: element <{tag}> from {ns} is not supported")
            return ""
        if tag in self.interactions:
            return self.interactions[tag](element)
        return self._qti_element(element, tag, pre=pre)

    def _qti_element(self, element: Element, tag: str, *, pre: bool) -> str:
        known = (_KEEP, _AS_DIV, _AS_SPAN, _AS_OTHER, _HEADINGS, _EMPTY, ("img", "object"))
        if any(tag in group for group in known):
            self._check_attributes(element, tag)
        if tag == "rubricBlock" and "candidate" not in element.get("view", "candidate"):
            self._note(
                False,
                f"rubricBlock for view {element.get('view', '')!r} dropped: only the "
                "candidates' rubric is part of the paper; give the others theirs separately",
                "",
            )
            return ""
        if tag == "a" and element.get("href") and _script_scheme(element.get("href", "")) is None:
            self._note(
                False,
                "link target dropped from {elements}, its text kept: exam content opens no "
                "other pages; put what the candidate needs into the item",
                f"<a href={element.get('href', '')!r}>",
            )
        elif tag in _SHOWN_AS:
            self._note(
                False,
                f"<{tag}> shown as {_SHOWN_AS[tag]}: exam content has no such element; "
                "check that the item still reads as intended",
                "",
            )
        if tag in _KEEP or tag in _AS_DIV or tag in _AS_SPAN or tag in _AS_OTHER:
            out = tag if tag in _KEEP else _AS_OTHER.get(tag, "div" if tag in _AS_DIV else "span")
            if tag == "br":
                return "<br>"
            inner = self._children(element, pre=pre or tag == "pre")
            if tag == "q":
                inner = f"“{inner}”"
            return f"<{out}>{inner}</{out}>"
        if tag in _HEADINGS:
            return f"<p><strong>{self._children(element, pre=pre)}</strong></p>"
        if tag in _EMPTY:
            self._note(
                False,
                f"{_DROPPED_ELEMENT[tag]}: exam content has no such element; "
                "check that the item still reads as intended",
                "",
            )
            return ""
        if tag == "img":
            return self._img(element)
        if tag == "object":
            return self._object(element)
        if tag in _FEEDBACK:
            self._note(False, f"{tag} dropped: an exam shows no feedback; nothing to do", "")
            return ""
        if tag in _TEMPLATED:
            self.report.error(
                f"{self.where}: {tag} is not supported (templated items vary per attempt); "
                "export the item without templates"
            )
            return ""
        if tag.endswith("Interaction"):
            self.report.error(f"{self.where}: {tag} is not supported here")
            return ""
        self.report.error(
            f"{self.where}: element <{tag}> is not supported in an item body; "
            "remove it from the QTI file"
        )
        return ""

    def _img(self, element: Element) -> str:
        src = element.get("src", "")
        name = self.assets.embed(self.where, self.base, src, None) if src else None
        if not src:
            self.report.error(f"{self.where}: <img> without src")
        if name is None:
            return ""
        return self._img_tag(name, element.get("alt", ""), element, "img")

    def _object(self, element: Element) -> str:
        data, kind = element.get("data", ""), element.get("type", "")
        if not kind.startswith("image/"):
            self.report.error(
                f"{self.where}: <object type={kind!r} data={data!r}> is not supported; "
                "only images are imported"
            )
            return ""
        name = self.assets.embed(self.where, self.base, data, kind) if data else None
        if not data:
            self.report.error(f"{self.where}: <object> without data")
        if name is None:
            return ""
        # The fallback content describes the picture: it becomes the alt text.
        alt = _SPACE.sub(" ", "".join(element.itertext())).strip()
        return self._img_tag(name, alt, element, "object")

    def _img_tag(self, name: str, alt: str, element: Element, tag: str) -> str:
        attrs = f' src="asset:{escape(name)}" alt="{escape(alt)}"'
        for label in ("width", "height"):
            value = (element.get(label) or "").strip()
            if value.isdigit():
                attrs += f' {label}="{value}"'
            elif value:
                self._note(
                    False,
                    f"{label}= that is not a whole number of pixels dropped from {{elements}}; "
                    "the image shows at its own size: give pixels in the QTI file if it matters",
                    f"<{tag} {label}={value!r}>",
                )
        return f"<img{attrs}>"


def sniff_image(data: bytes) -> str | None:
    """The media type of an image the paper format accepts, from its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _script_scheme(value: str) -> str | None:
    """`javascript` or `vbscript` when `value` is such a URL (browsers ignore the control
    characters and spaces inside a scheme, so they are ignored here too), else None."""
    match = _SCRIPT_SCHEME.match(re.sub(r"[\x00-\x20]", "", value).lower())
    return match.group(1) if match else None


def _dropped_attribute(name: str) -> str:
    """The warning for an attribute exam content has no place for (an `{elements}` template)."""
    if name in ("class", "style"):
        return (
            f"{name}= dropped from {{elements}}: exam pages style every item alike; if the "
            "styling carried meaning (say, a highlighted word), use <b>, <i> or <u> instead"
        )
    if name in ("colspan", "rowspan"):
        return (
            f"{name}= dropped from {{elements}}: exam tables have no merged cells, so the "
            "cells shift; rebuild the table without merged cells, or show it as an image"
        )
    return (
        f"{name}= dropped from {{elements}}: exam content keeps no such attribute; "
        "check that the item still reads as intended"
    )
