"""IMS QTI 2.1 / 2.2 import: items from an XML file, a folder or a content package zip.

    load_qti(path, **metadata) -> Paper
    load_qti_with_warnings(path, **metadata) -> (Paper, warnings)
    import_qti(path, **metadata) -> QtiImport(paper, warnings)

`path` is one assessmentItem file, a folder of item files (when it holds an
`imsmanifest.xml`, the manifest decides which files are items), or an IMS content package
zip (`imsmanifest.xml` at its top; resources of type `imsqti_item_xmlv2p1`/`v2p2`, or
`imsqti_test_xmlv2p1`/`v2p2`). When the package holds one assessmentTest whose items are
all there, the test decides which items the paper has, in which order, and names the paper
(`paperpack.qti.assessment`); its other items are left out with a warning.
Every file is parsed with defusedxml; hrefs resolve relative to the file naming them and
may not leave the package; sizes are bounded (see `paperpack.qti.source`).

Every problem in every file is collected and raised together as one `PaperInvalid`, each
line `FILE: item ID: what is wrong`. Unsupported interactions (order, match, hotspot,
gapMatch, inlineChoice, ...), a test without its items, two tests in one package,
templated or adaptive items, MathML and missing images are errors, never silently
dropped. Duplicate item identifiers across files are errors naming both files: ids are
what keys and responses refer to, so the importer never renames them.

Conversion rules (what cannot be carried over exactly becomes a warning, once per item and
construct, naming the file, the item and the field; see docs/paper-format.md, *QTI import*):

- **choiceInteraction** single -> `single_choice`, multiple -> `multiple_choice`;
  `shuffle="true"` -> `shuffle_options`; `simpleChoice fixed="true"` -> `Option.fixed`;
  the key is `correctResponse` (or, without one, the mapping's positive entries).
- **Points**: the `MAXSCORE` outcome's default value, else what the response mapping can
  award (its `upperBound`, or the correct options' mapped values), else 1.
- **Partial credit**: a multiple-choice mapping becomes `scoring: partial` when it gives a
  positive value to every correct option, nothing positive to any wrong option (mapped or
  by `defaultValue`), there are at least two correct options, and the upper bound
  (`upperBound`, else `MAXSCORE`) equals the sum of the correct options' values.
  `partial_points` is then the smallest correct option's value: the least a non-empty
  correct subset earns in QTI, so our rule never awards more than the QTI item did for a
  single right option (scaled if `MAXSCORE` differs). Warned as lossy: negative marks (our
  rule scores any selection with a wrong option 0, QTI may still give marks or go below 0),
  and subsets worth different amounts (unequal values or more than two correct options).
  Any other mapping -> `all_or_nothing`, with a warning saying why.
  `match_correct` (or no processing) -> `all_or_nothing`; custom responseProcessing is not
  interpreted (warned) and the mapping or correctResponse is used as above.
- **textEntryInteraction** -> `fill_blank`, one blank per interaction (blank id = its
  response identifier), shown in the stem as a plain `____` (`____(n)` when there are
  several). Accepted answers: `correctResponse` values and the mapEntries worth the full
  value; entries worth less (e.g. `york` = 0.5) are left out with a warning, since a blank
  here is right or wrong. A blank is case-sensitive unless the accepted entries all say
  `caseSensitive="false"` (QTI's match is exact); our other normalisations (trim, inner
  whitespace, full-width) stay on, which is only more lenient about spacing.
- **extendedTextInteraction** -> `essay`; `max_length` = 5 x `expectedLength`, a generous
  bound (QTI's expectedLength is a size hint, not a limit), warned naming both figures, or
  0 (no limit) without one. What an essay cannot keep (a model answer, response
  processing, rich-text format, placeholder, pattern) is warned.
- **Images**: `<img src>` and `<object type="image/..." data>` in the body become embedded
  `Asset`s referenced as `asset:NAME` (see `paperpack.qti.body`); a missing file is an error
  naming the item and the file.

The paper has one section (not shuffled: the file order is kept) holding the items in
manifest order, or sorted file-name order for a folder. Metadata given by the caller wins;
otherwise (docs/paper-format.md, *QTI import*):

- `paper_id`: the manifest's `identifier` (made into an id), else the file or folder name;
  `subject_code` the file or folder name (QTI has no subject);
- `paper_id` and `title` come first from the package's assessmentTest, when there is one;
- `title` (and `subject_name`): the manifest's organization title, else its LOM title,
  else the only item's `title`, else the file or folder name, with a warning (candidates
  see the title);
- `language`: the items' `xml:lang` (on assessmentItem or itemBody; the most common one,
  with a warning when they disagree or one is not a BCP 47 tag), else `zh-CN` when the
  items' text holds more Han characters than Latin-script words, else `en`;
- `duration_minutes`: the test's own `timeLimits maxTime` (seconds, rounded up to whole
  minutes), else 60.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from paperpack.errors import PaperInvalid, PaperpackError
from paperpack.model import Item, Paper, Section
from paperpack.qti.assessment import read_test
from paperpack.qti.body import QTI_NAMESPACES, Assets, BodyWriter
from paperpack.qti.declarations import (
    ItemSource,
    child,
    id_problem,
    read_max_score,
    read_processing,
    read_responses,
)
from paperpack.qti.items import convert_item
from paperpack.qti.report import Report
from paperpack.qti.source import (
    MANIFEST,
    DirPackage,
    Package,
    PackageInfo,
    QtiFileError,
    list_item_files,
    local_name,
    namespace,
    open_zip,
    parse_xml,
)

__all__ = ["QtiImport", "import_qti", "is_qti_path", "load_qti", "load_qti_with_warnings"]

METADATA_FIELDS = (
    "paper_id",
    "subject_code",
    "subject_name",
    "title",
    "language",
    "duration_minutes",
)
DEFAULT_DURATION_MINUTES = 60
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # as paper.schema.json
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class QtiImport:
    """An imported paper and what could not be carried over exactly (one line each)."""

    paper: Paper
    warnings: tuple[str, ...]


def load_qti(path: Path, **metadata: Any) -> Paper:
    """The paper in the QTI file, folder or zip at `path` (raises PaperInvalid)."""
    return import_qti(path, **metadata).paper


def load_qti_with_warnings(path: Path, **metadata: Any) -> tuple[Paper, list[str]]:
    """Like `load_qti`, also returning the lossy-conversion warnings to show the user."""
    result = import_qti(path, **metadata)
    return result.paper, list(result.warnings)


def is_qti_path(path: Path) -> bool:
    """Whether `path` is something `load_qti` reads (an .xml file, a .zip or a folder)."""
    return path.is_dir() or path.suffix.lower() in (".xml", ".zip")


def import_qti(path: Path, **metadata: Any) -> QtiImport:
    """Import every item at `path`; every problem is reported at once in a PaperInvalid."""
    path = Path(path)
    unknown = sorted(set(metadata) - set(METADATA_FIELDS))
    if unknown:
        raise PaperpackError(
            f"unknown QTI import metadata {', '.join(unknown)}; known: {', '.join(METADATA_FIELDS)}"
        )
    if not path.exists():
        raise PaperpackError(f"{path}: no such file or folder")
    report = Report()
    with contextlib.ExitStack() as stack:
        try:
            package, single = _open(path, stack)
        except QtiFileError as exc:
            raise PaperInvalid([str(exc)]) from exc
        info = PackageInfo()
        names = list_item_files(package, report, single=single, info=info)
        assets = Assets(package, report)
        roots: list[tuple[str, Element]] = []  # (file, assessmentItem) of each item
        items = _import_files(package, names, assets, report, roots, info)
    report.raise_errors()
    if not items:
        report.error(f"{path.name}: no items to import")
        report.raise_errors()
    paper = _paper(path, items, roots, assets, metadata, info, report)
    return QtiImport(paper, tuple(report.warnings))


def _open(path: Path, stack: contextlib.ExitStack) -> tuple[Package, str | None]:
    if path.is_dir():
        return DirPackage(path, path.name or str(path)), None
    if path.name == MANIFEST:  # the manifest itself names the package it heads
        return DirPackage(path.parent, path.parent.name or str(path.parent)), None
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        package = open_zip(path)
        stack.callback(package.archive.close)
        return package, None
    return DirPackage(path.parent, path.parent.name or str(path.parent)), path.name


def _import_files(
    package: Package,
    names: list[str],
    assets: Assets,
    report: Report,
    roots: list[tuple[str, Element]],
    info: PackageInfo,
) -> list[Item]:
    parsed: dict[str, Element] = {}
    tests: list[tuple[str, Element]] = []
    for name in names:
        root = _parse(package, name, report)
        if root is None:
            continue
        if local_name(root) == "assessmentTest" and namespace(root) in QTI_NAMESPACES:
            tests.append((name, root))
        else:
            parsed[name] = root
    order = list(parsed)
    if tests:
        order = _test_order(package, tests, parsed, report, info)
    items: list[Item] = []
    seen: dict[str, str] = {}  # item identifier -> the file that defined it first
    for name in order:
        root = parsed[name]
        item_id = _item_identifier(name, root, report, seen)
        if item_id is None:
            continue
        roots.append((name, root))
        item = _import_item(name, item_id, root, assets, report)
        if item is not None:
            items.append(item)
    return items


def _parse(package: Package, name: str, report: Report) -> Element | None:
    try:
        return parse_xml(package, name)
    except QtiFileError as exc:
        report.error(str(exc))
        return None


def _test_order(
    package: Package,
    tests: list[tuple[str, Element]],
    parsed: dict[str, Element],
    report: Report,
    info: PackageInfo,
) -> list[str]:
    """The item files of the package's one assessmentTest, in its order (parsed as needed);
    the package's other item files are left out with a warning. When the test cannot be
    used (an error is reported), every item file is still read, so that the user sees
    all problems at once."""
    if len(tests) > 1:
        report.error(
            f"{package.label}: holds {len(tests)} assessmentTests "
            f"({', '.join(name for name, _ in tests)}); import one test at a time "
            "(each with its items in its own folder or package)"
        )
        return list(parsed)
    name, root = tests[0]
    plan = read_test(package, name, root, report)
    if plan is None:
        return list(parsed)
    info.test = plan
    order: list[str] = []
    for item_file in plan.item_files:
        if item_file not in parsed:
            item_root = _parse(package, item_file, report)
            if item_root is None:
                continue
            parsed[item_file] = item_root
        order.append(item_file)
    left_out = [n for n in parsed if n not in order]
    if left_out:
        report.warn(
            f"{name}: assessmentTest {plan.identifier or '?'}: items: "
            f"{', '.join(left_out)} not part of the test, so not imported; import them "
            "separately if they belong to the paper"
        )
    return order


def _item_identifier(name: str, root: Element, report: Report, seen: dict[str, str]) -> str | None:
    """The identifier of an assessmentItem root; anything else is reported."""
    tag, ns = local_name(root), namespace(root)
    if ns not in QTI_NAMESPACES:
        report.error(_not_qti2(name, tag, ns))
        return None
    if tag != "assessmentItem":
        report.error(f"{name}: a QTI <{tag}> is not an assessmentItem; only items are imported")
        return None
    item_id = (root.get("identifier") or "").strip()
    if not item_id:
        report.error(f"{name}: assessmentItem has no identifier; give it one")
        return None
    problem = id_problem(name, "item identifier", item_id)
    if problem is not None:
        report.error(problem)
        return None
    if item_id in seen:
        report.error(
            f"{name}: item {item_id}: the identifier is also used by {seen[item_id]}; "
            "rename one of them (ids must stay stable for the keys, so the importer "
            "does not rename them)"
        )
        return None
    seen[item_id] = name
    return item_id


def _not_qti2(name: str, tag: str, ns: str) -> str:
    if tag == "manifest":
        return (
            f"{name}: an IMS manifest must be named imsmanifest.xml at the top of the "
            "package to decide which files are items"
        )
    if "imsqtiasi_v3" in ns or "imsqti_v2p0" in ns:
        return f"{name}: QTI version of namespace {ns} is not supported; export QTI 2.1 or 2.2"
    return f"{name}: not a QTI 2.1/2.2 file (root <{tag}> in namespace {ns or 'none'})"


def _import_item(
    name: str, item_id: str, root: Element, assets: Assets, report: Report
) -> Item | None:
    where = f"{name}: item {item_id}"
    for part in ("templateDeclaration", "templateProcessing"):
        if child(root, part) is not None:
            report.error(f"{where}: {part} (a templated item) is not supported")
            return None
    if root.get("adaptive", "false").strip().lower() == "true":
        report.error(f"{where}: adaptive items are not supported; an exam item is answered once")
        return None
    for sheet in (c for c in root if local_name(c) == "stylesheet"):
        report.warn(
            f"{where}: stem: stylesheet {sheet.get('href', '')!r} dropped: exam pages style "
            "every item alike; if the styling carried meaning, use <b>, <i> or <u> instead",
            key=(where, "stylesheet"),
        )
    if child(root, "modalFeedback") is not None:
        report.warn(
            f"{where}: modalFeedback dropped: an exam shows no feedback; nothing to do "
            "(give it to candidates after the results if it teaches something)"
        )
    source = ItemSource(
        item_id=item_id,
        where=where,
        root=root,
        responses=read_responses(root, where, report),
        max_score=read_max_score(root, where, report),
        processing=read_processing(root),
        report=report,
    )
    writer = BodyWriter(where, name, assets, report)
    try:
        return convert_item(source, writer)
    finally:
        writer.flush()


def _paper(
    path: Path,
    items: list[Item],
    roots: list[tuple[str, Element]],
    assets: Assets,
    metadata: dict[str, Any],
    info: PackageInfo,
    report: Report,
) -> Paper:
    name = path.name if path.is_dir() else path.stem
    label = path.name
    slug = _slug(name)
    test = info.test
    identifier = (test.identifier if test is not None else "") or info.identifier
    paper_id = _slug(identifier) if identifier else slug
    title = (test.title if test is not None else "") or info.title
    if not title and len(items) == 1:
        title = " ".join((roots[0][1].get("title") or "").split())
    if not title:
        title = name
        if "title" not in metadata:
            report.warn(
                f"{label}: paper: title: the QTI gives the package no title (no test or "
                f"manifest title, {len(items)} items), so the name {name!r} was used; "
                "candidates see the title: give it with paperpack convert --title, or edit "
                "the YAML"
            )
    duration = (test.duration_minutes if test is not None else None) or DEFAULT_DURATION_MINUTES
    language = str(metadata["language"]) if "language" in metadata else ""
    if not language:
        language = _language(label, items, roots, report)
    title = str(metadata.get("title", title))
    section = Section(section_id="qti", title=title, items=tuple(items), shuffle=False)
    return Paper(
        paper_id=str(metadata.get("paper_id", paper_id)),
        subject_code=str(metadata.get("subject_code", slug)),
        subject_name=str(metadata.get("subject_name", title)),
        title=title,
        language=language,
        duration_minutes=int(metadata.get("duration_minutes", duration)),
        sections=(section,),
        assets=tuple(assets.assets),
    )


def _slug(name: str) -> str:
    """`name` made into an id (letters, digits, '.', '_', '-'; at most 64 characters)."""
    return _SLUG.sub("-", name).strip("-._")[:64].rstrip("-._") or "qti-import"


def _language(
    label: str, items: list[Item], roots: list[tuple[str, Element]], report: Report
) -> str:
    """The paper's language: the items' xml:lang, else what their text is written in."""
    declared: Counter[str] = Counter()
    for item, (name, root) in zip(items, roots, strict=True):
        body = child(root, "itemBody")
        tag = root.get(XML_LANG) or (body.get(XML_LANG) if body is not None else None)
        if not tag:
            continue
        tag = tag.strip().replace("_", "-")
        if _LANGUAGE.match(tag):
            declared[tag] += 1
        else:
            report.warn(
                f"{name}: item {item.item_id}: xml:lang: {tag!r} is not a language tag "
                "(BCP 47, e.g. zh-CN or en), so it was not used; fix it in the QTI file, "
                "or give the paper's language with paperpack convert --language"
            )
    if declared:
        language = declared.most_common(1)[0][0]
        if len(declared) > 1:
            counts = ", ".join(f"{tag} ({n})" for tag, n in declared.most_common())
            report.warn(
                f"{label}: paper: language: the items declare {counts}; the paper's language "
                f"is {language}, the most common: give another with paperpack convert "
                "--language, or edit the YAML"
            )
        return language
    text = _TAG.sub(" ", " ".join(f"{i.stem} {' '.join(o.html for o in i.options)}" for i in items))
    return "zh-CN" if len(_HAN.findall(text)) > len(_LATIN_WORD.findall(text)) else "en"
