"""An assessmentTest beside its items: which items, in which order, and the paper's name.

A QTI test only refers to items (`assessmentItemRef href`); it carries the exam's title,
identifier and time limit, and a structure (sections, selection, ordering, rules) that our
paper, one section of items in a fixed order, does not have. When every item a test refers
to is in the package, `read_test` gives:

- the item files in the test's order (each once), which become the paper's items;
- the test's `title` and `identifier` for the paper's title and id, and its own
  `timeLimits maxTime` (seconds) as `duration_minutes`;
- a warning, once each, for what the paper does not keep: sections (flattened into one),
  `selection`, `ordering shuffle`, linear navigation, other time limits, item session
  control, weights, rubric blocks, pre-conditions, branch rules, outcome processing,
  template defaults and variable mappings.

A test whose items are not all here is an error naming the missing files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from paperpack.qti.report import Report
from paperpack.qti.source import Package, QtiFileError, local_name, resolve_href

MIN_MINUTES, MAX_MINUTES = 5, 600  # duration_minutes' range in paper.schema.json

# Test constructs the paper has no place for: element name -> what happens instead.
_DROPPED = {
    "selection": (
        "every item is in the paper (no selection of some of them per candidate); "
        "remove the items you do not want from the YAML"
    ),
    "preCondition": "every item is shown to every candidate",
    "branchRule": "candidates move freely between items; there is no branching",
    "itemSessionControl": (
        "attempts, review and skipping follow the exam's own rules (one attempt, free "
        "review); nothing to do"
    ),
    "rubricBlock": "its text is not shown; put what candidates must read into a stem",
    "outcomeProcessing": "the total is the sum of the items' points",
    "templateDefault": "templated items are not supported; nothing to carry",
    "variableMapping": "item outcomes are not renamed; nothing to carry",
}


@dataclass
class TestPlan:
    """What the paper takes from one assessmentTest."""

    name: str  # the test's file in the package
    identifier: str
    title: str
    item_files: list[str] = field(default_factory=list)  # package names, in the test's order
    duration_minutes: int | None = None


def item_refs(name: str, root: Element) -> list[tuple[str, str]]:
    """(href as written, package name or "" when the href cannot be resolved) per item ref."""
    refs: list[tuple[str, str]] = []
    for ref in root.iter():
        if local_name(ref) != "assessmentItemRef":
            continue
        href = ref.get("href", "")
        try:
            refs.append((href, resolve_href(name, href)))
        except QtiFileError:
            refs.append((href, ""))
    return refs


def read_test(package: Package, name: str, root: Element, report: Report) -> TestPlan | None:
    """The outline of the test in file `name`, or None (errors reported) when its items are
    not all in the package."""
    identifier = (root.get("identifier") or "").strip()
    where = f"{name}: assessmentTest {identifier or '?'}"
    refs = item_refs(name, root)
    missing = [href for href, target in refs if not target or not package.exists(target)]
    if missing or not refs:
        report.error(
            f"{where}: refers to items not found here ({', '.join(missing) or 'none'}); "
            "put the item files beside the test (or in its content package), or import "
            "the items without the test"
        )
        return None
    outline = TestPlan(name, identifier, " ".join((root.get("title") or "").split()))
    for _, target in refs:
        if target not in outline.item_files:
            outline.item_files.append(target)
    outline.duration_minutes = _duration(root, where, report)
    _warn_structure(root, where, report)
    return outline


def _duration(root: Element, where: str, report: Report) -> int | None:
    """The test's own maxTime in whole minutes (rounded up), or None."""
    limits = next((c for c in root if local_name(c) == "timeLimits"), None)
    text = (limits.get("maxTime") or "").strip() if limits is not None else ""
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    minutes = math.ceil(seconds / 60) if math.isfinite(seconds) else 0
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        report.warn(
            f"{where}: duration_minutes: timeLimits maxTime={text!r} (seconds) is not a "
            f"plausible exam length ({MIN_MINUTES} to {MAX_MINUTES} minutes), so it was not "
            "used; give the duration with paperpack convert --duration"
        )
        return None
    return minutes


def _warn_structure(root: Element, where: str, report: Report) -> None:
    """One warning per kind of test construct the paper does not keep."""
    sections = [
        e.get("identifier", "?") for e in root.iter() if local_name(e) == "assessmentSection"
    ]
    if len(sections) > 1:
        report.warn(
            f"{where}: sections: {', '.join(sections)} became one section, items in the "
            "test's order; split them into sections in the YAML if the exam needs them"
        )
    own_limits = _own_limits(root)
    for element in root.iter():
        tag = local_name(element)
        message = None
        if tag in _DROPPED:
            message = f"{tag} dropped: {_DROPPED[tag]}"
        elif tag == "ordering" and element.get("shuffle", "").strip() == "true":
            message = (
                'ordering shuffle="true" dropped: the items keep the test\'s order; set '
                "shuffle: true on the section in the YAML to vary it"
            )
        elif tag == "timeLimits" and element is not own_limits:
            message = (
                "timeLimits of a part, section or item dropped: only the whole exam is timed "
                "(duration_minutes)"
            )
        elif tag == "testPart" and element.get("navigationMode") == "linear":
            message = (
                "navigationMode linear dropped: candidates move freely between items here; "
                "nothing to do unless the exam's rules say otherwise"
            )
        elif tag == "weight" or (tag == "assessmentItemRef" and element.get("weight")):
            message = (
                "weight dropped: an item is worth its own points; set the points in the YAML "
                "where the weights differ"
            )
        if message is not None:
            report.warn(f"{where}: {message}", key=(where, message))


def _own_limits(root: Element) -> Element | None:
    return next((c for c in root if local_name(c) == "timeLimits"), None)
