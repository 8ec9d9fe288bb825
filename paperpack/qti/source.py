"""Where QTI files come from: one XML file, a folder, or an IMS content package zip.

A `Package` reads files by their package-relative POSIX name and enforces the two things
an importer must never get wrong on untrusted input:

- **No escaping.** An `href` or `src` is resolved relative to the file that holds it; a
  result outside the package root (`../`, an absolute path, a URL, a symlink leading out
  of the folder) is refused.
- **Bounded sizes.** Every read is capped (XML files at `MAX_XML_BYTES`, other files at
  `MAX_FILE_BYTES`, everything one import reads at `MAX_TOTAL_BYTES`), and zip members are
  read through a bounded stream rather than trusting the sizes in the zip's directory,
  so a zip bomb stops at the cap.

XML is parsed with defusedxml only: entity declarations (billion laughs) and external
references are refused, and become a `QtiFileError` naming the file.

`list_item_files` decides which files are items: a manifest's QTI resources when there is
an `imsmanifest.xml`, else every `.xml` file of a folder, else the single file. It also
reads what a manifest says about the package as a whole (`PackageInfo`: its identifier and
title), which the paper's metadata comes from.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote
from xml.etree.ElementTree import Element

import defusedxml
import defusedxml.ElementTree as SafeET

from paperpack.errors import PaperpackError
from paperpack.qti.report import Report

if TYPE_CHECKING:
    from paperpack.qti.assessment import TestPlan

MIB = 1024 * 1024
MAX_XML_BYTES = 8 * MIB  # one item or manifest file
MAX_FILE_BYTES = 64 * MIB  # one image
MAX_TOTAL_BYTES = 512 * MIB  # everything one import reads
MAX_ZIP_MEMBERS = 20_000
MAX_XML_DEPTH = 100  # real items nest a dozen levels; the body writer recurses per level

MANIFEST = "imsmanifest.xml"
ITEM_RESOURCE_TYPES = frozenset({"imsqti_item_xmlv2p1", "imsqti_item_xmlv2p2"})
TEST_RESOURCE_TYPES = frozenset({"imsqti_test_xmlv2p1", "imsqti_test_xmlv2p2"})


@dataclass
class PackageInfo:
    """What a manifest says about the whole package ("" when it says nothing)."""

    identifier: str = ""  # <manifest identifier="...">
    title: str = ""  # the default organization's <title>, else the package LOM title
    test: TestPlan | None = None  # the package's assessmentTest, when it has one


class QtiFileError(PaperpackError):
    """A file of the package cannot be used (missing, too large, escaping, not XML)."""


class Package(Protocol):
    """Files addressed by package-relative POSIX names ("items/q1.xml")."""

    label: str  # what messages call the package, e.g. "exam.zip"

    def exists(self, name: str) -> bool: ...

    def read(self, name: str, limit: int) -> bytes: ...

    def names(self) -> list[str]: ...


@dataclass
class _Budget:
    """The total number of bytes one import may still read."""

    left: int = MAX_TOTAL_BYTES

    def take(self, label: str, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise QtiFileError(
                f"{label}: the package holds more than {MAX_TOTAL_BYTES // MIB} MiB; "
                "split it into smaller imports"
            )


@dataclass
class DirPackage:
    """A folder on disk (a single XML file is a folder package of its parent)."""

    root: Path
    label: str
    budget: _Budget = field(default_factory=_Budget)

    def _path(self, name: str) -> Path:
        try:
            path = (self.root / name).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise QtiFileError(f"{name}: cannot be opened in {self.label} ({exc})") from exc
        if not path.is_relative_to(self.root.resolve()):
            raise QtiFileError(f"{name}: leads outside {self.label} (a symlink?); refused")
        return path

    def exists(self, name: str) -> bool:
        try:
            return self._path(name).is_file()
        except (QtiFileError, OSError):
            return False

    def read(self, name: str, limit: int) -> bytes:
        path = self._path(name)
        try:
            with path.open("rb") as handle:
                data = handle.read(limit + 1)
        except FileNotFoundError as exc:
            raise QtiFileError(f"{name}: not found in {self.label}") from exc
        except OSError as exc:
            raise QtiFileError(f"{name}: cannot be read in {self.label} ({exc})") from exc
        _check_limit(name, len(data), limit)
        self.budget.take(name, len(data))
        return data

    def names(self) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
        )


@dataclass
class ZipPackage:
    """An IMS content package zip; members are read through bounded streams."""

    archive: zipfile.ZipFile
    label: str
    budget: _Budget = field(default_factory=_Budget)

    def _info(self, name: str) -> zipfile.ZipInfo | None:
        try:
            return self.archive.getinfo(name)
        except KeyError:
            return None

    def exists(self, name: str) -> bool:
        info = self._info(name)
        return info is not None and not info.is_dir()

    def read(self, name: str, limit: int) -> bytes:
        info = self._info(name)
        if info is None or info.is_dir():
            raise QtiFileError(f"{name}: not found in {self.label}")
        _check_limit(name, info.file_size, limit)
        try:
            with self.archive.open(info) as handle:
                data = handle.read(limit + 1)  # the directory's size may lie: cap the stream
        except Exception as exc:  # decompressors raise many exception types on bad data
            raise QtiFileError(f"{name}: cannot be read from {self.label}: {exc}") from exc
        _check_limit(name, len(data), limit)
        self.budget.take(name, len(data))
        return data

    def names(self) -> list[str]:
        return sorted(i.filename for i in self.archive.infolist() if not i.is_dir())


def _check_limit(name: str, size: int, limit: int) -> None:
    if size > limit:
        raise QtiFileError(
            f"{name}: larger than {limit // MIB} MiB (unpacked); refused as too large "
            "(a zip bomb or the wrong file?)"
        )


def open_zip(path: Path) -> ZipPackage:
    """Open `path` as a content package zip, refusing what is not one."""
    try:
        archive = zipfile.ZipFile(path)
    except Exception as exc:  # a corrupt zip directory raises many exception types
        raise QtiFileError(f"{path.name}: not a readable zip file ({exc})") from exc
    if len(archive.infolist()) > MAX_ZIP_MEMBERS:
        archive.close()
        raise QtiFileError(f"{path.name}: more than {MAX_ZIP_MEMBERS} files; refused")
    return ZipPackage(archive, path.name)


def resolve_href(base: str, href: str) -> str:
    """The package name `href` points to from the file `base`; refuses escapes and URLs."""
    target = unquote(href.strip())
    scheme = target.split("/", 1)[0]
    if any(ord(c) < 0x20 for c in target):
        raise QtiFileError(f"{href!r} contains control characters; refused")
    if not target or ":" in scheme or target.startswith(("/", "\\")):
        raise QtiFileError(f"{href!r} is not a path inside the package (a URL or absolute path)")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), target.replace("\\", "/")))
    if joined == ".." or joined.startswith("../") or joined == ".":
        raise QtiFileError(f"{href!r} leads outside the package; refused")
    return joined


def parse_xml(package: Package, name: str) -> Element:
    """Parse one XML file of the package safely (defusedxml: no entities, no external refs)."""
    data = package.read(name, MAX_XML_BYTES)
    try:
        root: Element = SafeET.fromstring(data)
    except defusedxml.DefusedXmlException as exc:
        raise QtiFileError(
            f"{name}: refused: the XML declares entities or external references ({exc}); "
            "QTI files never need them (a billion-laughs or external-entity attack?)"
        ) from exc
    except SafeET.ParseError as exc:
        raise QtiFileError(f"{name}: not well-formed XML: {exc}") from exc
    except (LookupError, ValueError) as exc:  # e.g. encoding="no-such-encoding"
        raise QtiFileError(f"{name}: cannot be read as XML: {exc}") from exc
    _check_depth(name, root)
    return root


def _check_depth(name: str, root: Element) -> None:
    """Refuse absurd nesting, which no real item has and which would exhaust recursion."""
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > MAX_XML_DEPTH:
            raise QtiFileError(
                f"{name}: elements nested more than {MAX_XML_DEPTH} deep; refused as malformed"
            )
        stack.extend((child, depth + 1) for child in element)


def local_name(element: Element) -> str:
    """The tag without its namespace: `{ns}choiceInteraction` -> `choiceInteraction`."""
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def namespace(element: Element) -> str:
    tag = element.tag if isinstance(element.tag, str) else ""
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def list_item_files(
    package: Package, report: Report, *, single: str | None = None, info: PackageInfo | None = None
) -> list[str]:
    """The package names of the item files to import, in order (problems go to `report`;
    what a manifest says about the package goes to `info`)."""
    if single is not None:
        return [single]
    if package.exists(MANIFEST):
        return _manifest_items(package, report, info if info is not None else PackageInfo())
    if isinstance(package, ZipPackage):
        report.error(
            f"{package.label}: not an IMS content package: no {MANIFEST} at the top of the zip; "
            "zip the package folder's contents, not the folder"
        )
        return []
    names = [n for n in package.names() if n.lower().endswith(".xml")]
    if not names:
        report.error(f"{package.label}: no .xml files found; expected QTI item files")
    return names


def _manifest_items(package: Package, report: Report, info: PackageInfo) -> list[str]:
    """Item and test files named by the manifest's QTI resources; missing ones reported."""
    try:
        root = parse_xml(package, MANIFEST)
    except QtiFileError as exc:
        report.error(str(exc))
        return []
    if local_name(root) != "manifest":
        report.error(f"{MANIFEST}: root element is <{local_name(root)}>, not an IMS <manifest>")
        return []
    info.identifier = (root.get("identifier") or "").strip()
    info.title = _manifest_title(root)
    items: list[str] = []
    for resource in (e for e in root.iter() if local_name(e) == "resource"):
        kind = resource.get("type", "")
        ident = resource.get("identifier", "?")
        href = resource.get("href")
        where = f"{MANIFEST}: resource {ident}"
        if kind in TEST_RESOURCE_TYPES or kind in ITEM_RESOURCE_TYPES:
            # A test is read like an item file; the importer then follows its item refs.
            name = _manifest_item(package, report, where, href)
            if name is not None and name not in items:
                items.append(name)
        elif kind.startswith("imsqti_") and kind not in ITEM_RESOURCE_TYPES:
            report.error(
                f"{where}: resource type {kind} is not supported; supported: "
                + ", ".join(sorted(ITEM_RESOURCE_TYPES | TEST_RESOURCE_TYPES))
            )
    if not items and not report.errors:
        report.error(
            f"{MANIFEST}: lists no QTI item resources ({', '.join(sorted(ITEM_RESOURCE_TYPES))})"
        )
    return items


def _manifest_title(root: Element) -> str:
    """The package's title: its default organization's <title> (IMS CP), else the title in
    the manifest's own LOM metadata (`general/title`, LOM 1.2 `langstring` or LOM `string`).
    Titles inside resources belong to single items and are not used."""
    organizations = _child(root, "organizations")
    if organizations is not None:
        found = [o for o in organizations if local_name(o) == "organization"]
        default = organizations.get("default")
        chosen = next((o for o in found if o.get("identifier") == default), None)
        for organization in [chosen] if chosen is not None else found[:1]:
            title = _text(_child(organization, "title"))
            if title:
                return title
    general = _child(_child(_child(root, "metadata"), "lom"), "general")
    return _text(_child(general, "title"))


def _child(element: Element | None, name: str) -> Element | None:
    if element is None:
        return None
    return next((c for c in element if local_name(c) == name), None)


def _text(element: Element | None) -> str:
    """The element's text with whitespace collapsed, or its first non-empty child's
    (a LOM title holds its text in a langstring/string child per language)."""
    if element is None:
        return ""
    own = " ".join((element.text or "").split())
    if own:
        return own
    return next((t for t in (" ".join("".join(c.itertext()).split()) for c in element) if t), "")


def _manifest_item(package: Package, report: Report, where: str, href: str | None) -> str | None:
    if not href:
        report.error(f"{where}: has no href naming its item file")
        return None
    try:
        name = resolve_href(MANIFEST, href)
    except QtiFileError as exc:
        report.error(f"{where}: href {exc}")
        return None
    if not package.exists(name):
        report.error(
            f"{where}: item file {name} is listed in the manifest but missing from "
            f"{package.label}; add the file or remove the resource"
        )
        return None
    return name
