"""The native paper file (YAML or JSON): loading with every problem reported, and writing.

`load_paper(path)` reads `.yaml`/`.yml`/`.json` (and hands `.xml`, `.zip` and folders to
the QTI importer), checks the data against `schema/paper.schema.json` and against the
rules the schema cannot express (keys among the options, partial credit, assets that
exist, safe HTML, ...), and raises `PaperInvalid` listing *every* problem, one line each:

    FILE: paper: <field>: <what is wrong>
    FILE: section <id>: <field>: <what is wrong>
    FILE: item <id>: <field>: <what is wrong>

The checks themselves live in `paperpack.papercheck`.

`dump_paper(paper, path)` writes the same format back (assets as files in `assets/` beside
it), so `load_paper` of a dumped paper gives the same `Paper`. The format itself is
documented in docs/paper-format.md.
"""

from __future__ import annotations

import base64
import importlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from paperpack.canonical import strict_loads
from paperpack.errors import PaperInvalid, PaperpackError
from paperpack.model import Asset, Paper, paper_from_dict, paper_to_dict
from paperpack.papercheck import (
    EXTENSIONS,
    MEDIA_TYPES,
    check_paper_data,
    paper_problems,
    paper_schema,
)

# The checks are re-exported: callers load, dump and check papers through this one module.
__all__ = [
    "check_paper_data",
    "dump_paper",
    "load_paper",
    "load_paper_with_warnings",
    "paper_problems",
    "paper_schema",
    "read_native",
]

NATIVE_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
QTI_SUFFIXES = frozenset({".xml", ".zip"})
ASSET_DIR = "assets"  # where dump_paper writes asset files, beside the paper

METADATA_FIELDS = (
    "paper_id",
    "subject_code",
    "subject_name",
    "title",
    "language",
    "duration_minutes",
)


# --- public interface ---------------------------------------------------------------------


def load_paper(path: Path, **metadata: Any) -> Paper:
    """Load and validate a paper; raise PaperInvalid listing every problem.

    `metadata` (paper_id, subject_code, subject_name, title, language, duration_minutes)
    overrides or supplies the paper's metadata; None values are ignored.
    """
    return load_paper_with_warnings(path, **metadata)[0]


def load_paper_with_warnings(path: Path, **metadata: Any) -> tuple[Paper, list[str]]:
    """`load_paper`, plus the warnings of a lossy import (QTI scoring we cannot express);
    a native paper has none."""
    path = Path(path)
    source = str(path)
    given = {k: v for k, v in metadata.items() if v is not None}
    unknown = sorted(set(given) - set(METADATA_FIELDS))
    if unknown:
        raise PaperpackError(f"unknown paper metadata {', '.join(unknown)}")
    if not path.exists():
        raise PaperInvalid([f"{source}: paper: file: not found; check the path"])
    if path.is_dir() or path.suffix.lower() in QTI_SUFFIXES:
        return _load_qti(path, given)
    if path.suffix.lower() not in NATIVE_SUFFIXES:
        raise PaperInvalid(
            [
                f"{source}: paper: file: unsupported file type {path.suffix or '(none)'!r}; "
                "give a .yaml, .yml or .json paper, or QTI as .xml, .zip or a folder"
            ]
        )
    raw = read_native(path)
    if isinstance(raw, dict):
        raw.update(given)
    normalised, problems = check_paper_data(raw, source, path.parent)
    if problems:
        raise PaperInvalid(problems)
    return paper_from_dict(normalised), []


def dump_paper(paper: Paper, path: Path) -> None:
    """Write `paper` as native YAML (or JSON for a .json path), assets as files beside it."""
    path = Path(path)
    data = paper_to_dict(paper, with_assets=False)
    if paper.assets:
        data["assets"] = {a.name: _dump_asset(a, path.parent) for a in paper.assets}
    if path.suffix.lower() == ".json":
        text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    else:
        header = "# Exam paper, native format: see docs/paper-format.md\n"
        text = header + yaml.dump(
            data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100
        )
    path.write_text(text, encoding="utf-8")


# --- reading ------------------------------------------------------------------------------


# libyaml's C parser is ~10x faster than pure Python; both give the same data and marks.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A safe YAML loader that refuses duplicate keys (PyYAML would keep the last silently)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.line)
        except TypeError:
            continue  # unhashable: construct_mapping below reports it
        if first != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {first + 1})",
                key_node.start_mark,
            )
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_native(path: Path) -> Any:
    """Parse a YAML or JSON paper file into plain data; syntax errors name line and column."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PaperInvalid([f"{source}: paper: file: not UTF-8 text ({exc.reason})"]) from exc
    except OSError as exc:
        raise PaperInvalid([f"{source}: paper: file: cannot read it ({exc.strerror})"]) from exc
    if path.suffix.lower() == ".json":
        return _parse_json(text, source)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = f" ({exc.context})" if exc.context else ""
        raise PaperInvalid(
            [f"{source}: paper: yaml: malformed YAML{where}: {exc.problem}{context}"]
        ) from exc
    except yaml.YAMLError as exc:
        raise PaperInvalid([f"{source}: paper: yaml: malformed YAML: {exc}"]) from exc


def _parse_json(text: str, source: str) -> Any:
    try:
        return strict_loads(text)
    except json.JSONDecodeError as exc:
        raise PaperInvalid(
            [
                f"{source}: paper: json: malformed JSON at line {exc.lineno}, "
                f"column {exc.colno}: {exc.msg}"
            ]
        ) from exc
    except ValueError as exc:
        raise PaperInvalid([f"{source}: paper: json: malformed JSON: {exc}"]) from exc


def _load_qti(path: Path, metadata: dict[str, Any]) -> tuple[Paper, list[str]]:
    # Imported here so that native papers work even while QTI import is unavailable.
    qti = importlib.import_module("paperpack.qti")
    paper: Paper
    warnings: list[str]
    paper, warnings = qti.load_qti_with_warnings(path, **metadata)
    problems = paper_problems(paper, str(path))
    if problems:
        raise PaperInvalid(problems)
    return paper, warnings


# --- writing ------------------------------------------------------------------------------


class _Dumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """Writes multi-line text (long stems) as YAML literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump_asset(asset: Asset, folder: Path) -> str | dict[str, str]:
    """Write one asset as a file under assets/ and return its path; embed unknown media types."""
    extension = EXTENSIONS.get(asset.media_type)
    if extension is None:
        return {"media_type": asset.media_type, "data": base64.b64encode(asset.data).decode()}
    name = asset.name
    if MEDIA_TYPES.get(PurePosixPath(name).suffix.lower()) != asset.media_type:
        name += extension
    target = folder / ASSET_DIR / name
    if target.exists() and target.read_bytes() != asset.data:
        raise PaperpackError(
            f"{target} already exists with different content; write the paper to another folder"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(asset.data)
    return f"{ASSET_DIR}/{name}"
