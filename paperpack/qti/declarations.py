"""What a QTI assessmentItem declares: its responses, their keys and mappings, MAXSCORE,
and which response processing it uses.

`ItemSource` bundles these with the item's identifier and the import's report, so the
converters (`paperpack.qti.items`) and the scoring rules (`paperpack.qti.scoring`) read
one object.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from paperpack.qti.report import Report
from paperpack.qti.source import local_name

# The native format's id rule (paper.schema.json, $defs/id). QTI identifiers are wider
# (a leading "_", any Unicode letter, any length), and ids are never renamed, so a QTI
# identifier outside this rule is an error the author fixes in the QTI file.
NATIVE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def id_problem(where: str, what: str, identifier: str) -> str | None:
    """Why `identifier` cannot be kept as an id here, or None when it can."""
    if NATIVE_ID.match(identifier):
        return None
    return (
        f"{where}: {what} {identifier!r} cannot be kept as an id (letters, digits, '.', '_', "
        "'-', starting with a letter or digit, at most 64 characters); rename it in the QTI file"
    )


@dataclass(frozen=True)
class MapEntry:
    key: str
    value: float
    case_sensitive: bool


@dataclass(frozen=True)
class Mapping:
    default: float
    lower: float | None
    upper: float | None
    entries: tuple[MapEntry, ...]

    def value(self, key: str) -> float:
        for entry in self.entries:
            if entry.key == key:
                return entry.value
        return self.default


@dataclass(frozen=True)
class Response:
    """A responseDeclaration: what the candidate's answer is and what is right."""

    identifier: str
    cardinality: str
    base_type: str
    correct: tuple[str, ...]
    mapping: Mapping | None


@dataclass
class ItemSource:
    """Everything read from one assessmentItem that the converters need."""

    item_id: str
    where: str  # "file.xml: item ID"
    root: Element
    responses: dict[str, Response]
    max_score: float | None  # MAXSCORE outcome default value, if declared
    processing: str  # "none", "custom" or a template's last path segment, e.g. "map_response"
    report: Report
    interactions: list[Element] = field(default_factory=list)


def child(element: Element, name: str) -> Element | None:
    return next((c for c in element if local_name(c) == name), None)


def _number(text: str | None, where: str, report: Report) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        report.error(f"{where}: {text!r} is not a number")
        return None
    return value


def int_attribute(element: Element, name: str, default: int, where: str, report: Report) -> int:
    """A whole-number attribute such as maxChoices; a bad value is reported, default used."""
    text = (element.get(name) or "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        report.error(f"{where}: {name}={text!r} is not a whole number")
        return default


def read_responses(root: Element, where: str, report: Report) -> dict[str, Response]:
    out: dict[str, Response] = {}
    for decl in (c for c in root if local_name(c) == "responseDeclaration"):
        ident = decl.get("identifier", "")
        correct_el = child(decl, "correctResponse")
        correct = tuple(
            (v.text or "").strip()
            for v in (correct_el if correct_el is not None else ())
            if local_name(v) == "value"
        )
        out[ident] = Response(
            ident,
            decl.get("cardinality", "single"),
            decl.get("baseType", ""),
            correct,
            _mapping(child(decl, "mapping"), f"{where}: response {ident}", report),
        )
    return out


def _mapping(element: Element | None, where: str, report: Report) -> Mapping | None:
    if element is None:
        return None
    entries = tuple(
        MapEntry(
            e.get("mapKey", ""),
            _number(e.get("mappedValue"), where, report) or 0.0,
            # QTI 2.2 defaults caseSensitive to true; 2.1 requires it, and files omit it.
            e.get("caseSensitive", "true").strip().lower() != "false",
        )
        for e in element
        if local_name(e) == "mapEntry"
    )
    return Mapping(
        _number(element.get("defaultValue"), where, report) or 0.0,
        _number(element.get("lowerBound"), where, report),
        _number(element.get("upperBound"), where, report),
        entries,
    )


def read_max_score(root: Element, where: str, report: Report) -> float | None:
    for decl in root:
        if local_name(decl) == "outcomeDeclaration" and decl.get("identifier") == "MAXSCORE":
            default = child(decl, "defaultValue")
            value = child(default, "value") if default is not None else None
            return _number(value.text if value is not None else None, where, report)
    return None


def read_processing(root: Element) -> str:
    processing = child(root, "responseProcessing")
    if processing is None:
        return "none"
    template = processing.get("template") or processing.get("templateLocation")
    if template and len(processing) == 0:
        return template.rstrip("/").rsplit("/", 1)[-1].removesuffix(".xml")
    return "custom"
