"""Checking a paper's plain data: the JSON Schema (`schema/paper.schema.json`) and the rules
it cannot express (keys among the options, partial credit, assets that exist, safe HTML,
sensible durations ...). Every problem is reported, one line each, in the form

    FILE: paper: <field>: <what is wrong>
    FILE: section <id>: <field>: <what is wrong>
    FILE: item <id>: <field>: <what is wrong>

`paperpack.paperfile` reads and writes paper files and calls `check_paper_data`; QTI import
and code that builds a Paper in memory call `paper_problems`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import difflib
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, TypeGuard

import jsonschema

from paperpack.html import asset_references, html_problems, sanitise
from paperpack.model import CHOICE_TYPES, Paper, paper_to_dict

SCHEMA_PATH = Path(__file__).with_name("schema") / "paper.schema.json"
MIN_DURATION_MINUTES = 5
MAX_DURATION_MINUTES = 600
MAX_ASSET_BYTES = 64 * 1024 * 1024  # one image or recording; a whole paper may reach ~200 MB

# File extension -> media type, for assets given as a path. The first extension listed for
# a media type is the one dump_paper uses.
MEDIA_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
}
EXTENSIONS: dict[str, str] = {}
for _ext, _media in MEDIA_TYPES.items():
    EXTENSIONS.setdefault(_media, _ext)


# Fields of an item that only some item types use.
_APPLIES_TO: dict[str, frozenset[str]] = {
    "options": CHOICE_TYPES,
    "key": CHOICE_TYPES,
    "shuffle_options": frozenset({"single_choice", "multiple_choice"}),
    "scoring": frozenset({"multiple_choice"}),
    "partial_points": frozenset({"multiple_choice"}),
    "blanks": frozenset({"fill_blank"}),
    "max_length": frozenset({"essay"}),
}
_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of fields",
    "null": "nothing",
}


def paper_problems(paper: Paper, source: str = "paper") -> list[str]:
    """Every problem of an already-built Paper (e.g. from QTI), in the same line format."""
    _, problems = check_paper_data(paper_to_dict(paper), source, None)
    return problems


@cache
def paper_schema() -> dict[str, Any]:
    """The JSON Schema of the native format."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@cache
def _schema_validator() -> jsonschema.Draft202012Validator:
    # The schema has no recursion, so its local $refs are inlined once here: resolving them
    # on every node was two thirds of the validation time for a large paper.
    schema = paper_schema()
    return jsonschema.Draft202012Validator(_inline_refs(schema, schema["$defs"]))


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """A copy of a schema node with every `{"$ref": "#/$defs/NAME"}` replaced by its target."""
    if isinstance(node, list):
        return [_inline_refs(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _inline_refs(v, defs) for k, v in node.items() if k != "$ref"}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        out = {**target, **out}
    return out


# --- checking -----------------------------------------------------------------------------


def check_paper_data(
    raw: Any, source: str, base_dir: Path | None
) -> tuple[dict[str, Any], list[str]]:
    """Check plain paper data; return (data ready for paper_from_dict, every problem).

    `base_dir` is where asset paths are resolved (None: only embedded assets are allowed).
    """
    if raw is None:
        return {}, [f"{source}: paper: file: empty; write the paper's fields in it"]
    if not isinstance(raw, dict):
        return {}, [f"{source}: paper: file: expected a mapping of paper fields at the top level"]
    checker = _Checker(raw, source, base_dir)
    checker.run()
    if checker.problems:
        return {}, checker.problems
    return checker.normalised(), []


class _Checker:
    """One pass over a paper's plain data, collecting every problem with its location."""

    def __init__(self, raw: dict[str, Any], source: str, base_dir: Path | None) -> None:
        self.raw = raw
        self.source = source
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.broken: set[tuple[int, int]] = set()  # (section, item) indexes with schema errors
        self.asset_data: dict[str, tuple[str, bytes]] = {}

    def report(self, where: str, field: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {field}: {message}")

    def run(self) -> None:
        self.check_schema()
        assets_ok = self.check_assets()
        self.check_paper_fields()
        item_owner: dict[str, str] = {}
        section_ids: set[str] = set()
        for s, section in enumerate(_list(self.raw.get("sections"))):
            if isinstance(section, dict):
                self.check_section(s, section, section_ids, item_owner, assets_ok)

    # schema

    def check_schema(self) -> None:
        validator = _schema_validator()
        errors = sorted(validator.iter_errors(self.raw), key=lambda e: _path_key(e.absolute_path))
        for error in errors:
            path = list(error.absolute_path)
            if path[:1] == ["sections"] and path[2:3] == ["items"] and len(path) >= 4:
                self.broken.add((path[1], path[3]))
            for field_path, message in _explain(error):
                where, field = self.locate(field_path)
                self.report(where, field, message)

    def locate(self, path: list[Any]) -> tuple[str, str]:
        """(where, field) for a path into the raw data, e.g. ('item q3', 'options[b].fixd')."""
        where, container, rest = "paper", self.raw, path
        sections = self.raw.get("sections")
        if path[:1] == ["sections"] and len(path) >= 2 and isinstance(sections, list):
            section = sections[path[1]] if path[1] < len(sections) else None
            where, rest = _section_label(section, path[1]), path[2:]
            items = section.get("items") if isinstance(section, dict) else None
            if rest[:1] == ["items"] and len(rest) >= 2 and isinstance(items, list):
                item = items[rest[1]] if rest[1] < len(items) else None
                where, rest = _item_label(item, rest[1], where), rest[2:]
                container = item if isinstance(item, dict) else {}
            else:
                container = section if isinstance(section, dict) else {}
        default = where.split(" ")[0]
        return where, _field_name(container, rest) or default

    # paper

    def check_paper_fields(self) -> None:
        duration = self.raw.get("duration_minutes")
        if _is_int(duration) and not MIN_DURATION_MINUTES <= duration <= MAX_DURATION_MINUTES:
            self.report(
                "paper",
                "duration_minutes",
                f"{duration} minutes is not a plausible exam length; "
                f"give {MIN_DURATION_MINUTES} to {MAX_DURATION_MINUTES} minutes",
            )
        sections = self.raw.get("sections")
        if isinstance(sections, list) and not sections:
            self.report("paper", "sections", "the paper has no sections; add at least one")
        forms = _list(self.raw.get("forms"))
        for form in _duplicates([str(f) for f in forms]):
            self.report("paper", "forms", f"form {form!r} is listed twice")
        self.check_pass_mark()

    def check_pass_mark(self) -> None:
        pass_mark = self.raw.get("pass_mark")
        if not _is_number(pass_mark):
            return
        total = 0.0
        for section in _list(self.raw.get("sections")):
            default = section.get("points") if isinstance(section, dict) else None
            for item in _list(section.get("items") if isinstance(section, dict) else None):
                points = item.get("points", default) if isinstance(item, dict) else None
                total += points if _is_number(points) else 0.0
        if pass_mark <= 0:
            self.report("paper", "pass_mark", f"must be greater than 0, got {pass_mark}")
        elif pass_mark > total:
            self.report(
                "paper",
                "pass_mark",
                f"{pass_mark} is more than the paper's total of {total:g} points",
            )

    # assets

    def check_assets(self) -> bool:
        """Check every asset entry and load its bytes; False if the map itself is unusable."""
        assets = self.raw.get("assets", {})
        if not isinstance(assets, dict):
            return False
        for name, entry in assets.items():
            field = f"assets[{name}]"
            if isinstance(entry, str):
                loaded = self.read_asset_file(field, entry)
            elif isinstance(entry, dict) and isinstance(entry.get("data"), str):
                loaded = self.decode_asset(field, entry)
            else:
                continue  # the schema has reported it
            if loaded is not None:
                self.asset_data[str(name)] = loaded
        return True

    def read_asset_file(self, field: str, relative: str) -> tuple[str, bytes] | None:
        pure = PurePosixPath(relative.replace("\\", "/"))
        if self.base_dir is None:
            self.report("paper", field, "a file path is not allowed here; embed the data")
            return None
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            self.report(
                "paper", field, f"{relative!r}: give a path relative to the paper's folder, no '..'"
            )
            return None
        media_type = MEDIA_TYPES.get(pure.suffix.lower())
        if media_type is None:
            self.report(
                "paper",
                field,
                f"unsupported file type {pure.suffix or '(none)'!r}; use one of "
                + ", ".join(sorted(MEDIA_TYPES)),
            )
            return None
        file = self.base_dir.joinpath(*pure.parts)
        if not file.is_file():
            self.report(
                "paper", field, f"missing asset: file {relative!r} not found beside the paper"
            )
            return None
        if file.stat().st_size > MAX_ASSET_BYTES:
            self.report("paper", field, f"{relative!r} is larger than {MAX_ASSET_BYTES >> 20} MiB")
            return None
        return self.checked_asset(field, media_type, file.read_bytes())

    def decode_asset(self, field: str, entry: dict[str, Any]) -> tuple[str, bytes] | None:
        media_type = entry.get("media_type")
        if not isinstance(media_type, str):
            return None  # the schema has reported it
        if media_type not in EXTENSIONS:
            self.report(
                "paper",
                f"{field}.media_type",
                f"unsupported media type {media_type!r}; use one of "
                + ", ".join(sorted(EXTENSIONS)),
            )
            return None
        try:
            data = base64.b64decode(entry["data"], validate=True)
        except (binascii.Error, ValueError):
            self.report("paper", f"{field}.data", "not valid base64")
            return None
        if len(data) > MAX_ASSET_BYTES:
            self.report("paper", f"{field}.data", f"larger than {MAX_ASSET_BYTES >> 20} MiB")
            return None
        return self.checked_asset(field, media_type, data)

    def checked_asset(self, field: str, media_type: str, data: bytes) -> tuple[str, bytes] | None:
        if not content_matches(media_type, data):
            self.report("paper", field, f"the content is not a valid {media_type} file")
            return None
        return media_type, data

    def check_references(self, where: str, field: str, html: str) -> None:
        for name in sorted(asset_references(html)):
            if name not in self.asset_data and name not in _dict(self.raw.get("assets")):
                self.report(where, field, f"missing asset {name!r}: add it under `assets`")

    def check_html(self, where: str, field: str, html: Any, assets_ok: bool) -> None:
        if not isinstance(html, str):
            return
        for problem in html_problems(html):
            self.report(where, field, problem)
        if assets_ok:
            self.check_references(where, field, html)

    # sections and items

    def check_section(
        self,
        s: int,
        section: dict[str, Any],
        section_ids: set[str],
        item_owner: dict[str, str],
        assets_ok: bool,
    ) -> None:
        where = _section_label(section, s)
        sid = section.get("id")
        if _is_id(sid):
            if str(sid) in section_ids:
                self.report(where, "id", "duplicate section id; section ids must be unique")
            section_ids.add(str(sid))
        self.check_html(where, "instructions", section.get("instructions"), assets_ok)
        default = section.get("points")
        if _is_number(default) and default <= 0:
            self.report(where, "points", f"must be greater than 0, got {default}")
        items = section.get("items")
        if isinstance(items, list) and not items:
            self.report(where, "items", "the section is empty; add items or remove the section")
        for i, item in enumerate(_list(items)):
            if not isinstance(item, dict):
                continue
            label = _item_label(item, i, where)
            iid = item.get("id")
            if _is_id(iid):
                if str(iid) in item_owner:
                    self.report(
                        label,
                        "id",
                        f"duplicate item id (also in {item_owner[str(iid)]}); "
                        "item ids must be unique in the paper",
                    )
                item_owner.setdefault(str(iid), where)
            if (s, i) not in self.broken:
                self.check_item(label, item, default, assets_ok)

    def check_item(self, where: str, item: dict[str, Any], default: Any, assets_ok: bool) -> None:
        item_type = item["type"]
        stem = item["stem"]
        if not stem.strip():
            self.report(where, "stem", "empty; write the question")
        self.check_html(where, "stem", stem, assets_ok)
        self.check_points(where, item, default)
        for field, types in _APPLIES_TO.items():
            if field in item and item_type not in types:
                self.report(where, field, f"does not apply to {item_type} items; remove it")
        if item_type in CHOICE_TYPES:
            self.check_choice(where, item, assets_ok)
        if item_type == "multiple_choice":
            self.check_multiple_scoring(where, item, default)
        if item_type == "fill_blank":
            self.check_blanks(where, item)

    def check_points(self, where: str, item: dict[str, Any], default: Any) -> None:
        points = item.get("points", default)
        if points is None:
            self.report(
                where, "points", "missing; give the item points or its section a default `points`"
            )
        elif "points" in item and points <= 0:
            self.report(where, "points", f"must be greater than 0, got {points}")

    def check_choice(self, where: str, item: dict[str, Any], assets_ok: bool) -> None:
        item_type = item["type"]
        options = item.get("options")
        if item_type == "true_false" and options is None:
            ids = ["true", "false"]
        else:
            ids = [str(o["id"]) for o in options or []]
            for option in options or []:
                field = f"options[{option['id']}].html"
                if not option["html"].strip():
                    self.report(where, field, "empty; write the option's text")
                self.check_html(where, field, option["html"], assets_ok)
            for dup in _duplicates(ids):
                self.report(where, f"options[{dup}]", "duplicate option id within the item")
        if item_type == "true_false" and sorted(set(ids)) != ["false", "true"]:
            self.report(
                where,
                "options",
                "a true_false item has exactly the options true and false (or leave options out)",
            )
        elif item_type != "true_false" and len(ids) < 2:
            self.report(where, "options", f"a {item_type} item needs at least two options")
        self.check_key(where, item, ids)

    def check_key(self, where: str, item: dict[str, Any], ids: list[str]) -> None:
        item_type = item["type"]
        key = _key_list(item.get("key"))
        if not key:
            self.report(where, "key", "missing; give the id(s) of the correct option(s)")
            return
        for k in key:
            if k not in ids:
                self.report(
                    where, "key", f"{k!r} is not among the options ({', '.join(ids) or 'none'})"
                )
        for dup in _duplicates(key):
            self.report(where, "key", f"{dup!r} is listed twice")
        if item_type in ("single_choice", "true_false") and len(set(key)) != 1:
            self.report(
                where,
                "key",
                f"a {item_type} item has exactly one correct option, got {len(set(key))}",
            )

    def check_multiple_scoring(self, where: str, item: dict[str, Any], default: Any) -> None:
        scoring = item.get("scoring", "all_or_nothing")
        partial = item.get("partial_points")
        points = item.get("points", default)
        if scoring == "all_or_nothing":
            if partial is not None:
                self.report(
                    where,
                    "partial_points",
                    "given, but scoring is all_or_nothing; "
                    "set scoring: partial or remove partial_points",
                )
            return
        if partial is None:
            self.report(
                where,
                "partial_points",
                "missing; scoring partial needs the points earned by a correct subset of the key",
            )
        elif partial <= 0:
            self.report(where, "partial_points", f"must be greater than 0, got {partial}")
        elif _is_number(points) and partial >= points:
            self.report(
                where, "partial_points", f"{partial} must be less than the item's points ({points})"
            )
        if len(set(_key_list(item.get("key")))) == 1:
            self.report(
                where,
                "scoring",
                "partial credit needs at least two correct options; with one, use all_or_nothing",
            )

    def check_blanks(self, where: str, item: dict[str, Any]) -> None:
        blanks = item.get("blanks") or []
        if not blanks:
            self.report(where, "blanks", "missing; a fill_blank item needs at least one blank")
        for dup in _duplicates([str(b["id"]) for b in blanks]):
            self.report(where, f"blanks[{dup}]", "duplicate blank id within the item")
        for blank in blanks:
            field = f"blanks[{blank['id']}].accepted"
            accepted = [str(a) for a in blank["accepted"]]
            if not accepted:
                self.report(where, field, "no accepted answers; list at least one")
            elif any(not a.strip() for a in accepted):
                self.report(where, field, "an empty answer cannot be accepted")

    # output

    def normalised(self) -> dict[str, Any]:
        """The checked data in the plain form paper_from_dict expects (ids as text, safe HTML)."""
        data = copy.deepcopy(self.raw)
        data["paper_id"] = str(data["paper_id"])
        data["forms"] = [str(f) for f in data.get("forms", [])]
        for section in data["sections"]:
            section["id"] = str(section["id"])
            section["instructions"] = sanitise(section.get("instructions", ""))
            for item in section["items"]:
                _normalise_item(item)
        data["assets"] = {
            name: {"media_type": media, "data": base64.b64encode(blob).decode("ascii")}
            for name, (media, blob) in self.asset_data.items()
        }
        return data


def _normalise_item(item: dict[str, Any]) -> None:
    item["id"] = str(item["id"])
    item["stem"] = sanitise(item["stem"])
    if "key" in item:
        item["key"] = _key_list(item["key"])
    for option in item.get("options", []):
        option["id"] = str(option["id"])
        option["html"] = sanitise(option["html"])
    for blank in item.get("blanks", []):
        blank["id"] = str(blank["id"])
        blank["accepted"] = [str(a) for a in blank["accepted"]]


# --- schema error messages ----------------------------------------------------------------


def _explain(error: jsonschema.ValidationError) -> Iterator[tuple[list[Any], str]]:
    """(path to the field, message) pairs for one schema error."""
    path = list(error.absolute_path)
    instance = error.instance
    kind = error.validator
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        for extra in sorted(set(instance) - set(allowed), key=str):
            yield [*path, extra], "unknown field" + _did_you_mean(str(extra), allowed)
    elif kind == "required":
        for name in error.validator_value:
            if isinstance(instance, dict) and name not in instance:
                yield [*path, name], "missing (required)"
    elif kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        hint = (
            "; put it in quotes" if "string" in names and isinstance(instance, int | float) else ""
        )
        yield path, f"expected {wanted}, got {_describe(instance)}{hint}"
    elif kind == "enum":
        choices = [str(c) for c in error.validator_value]
        yield (
            path,
            (
                f"{instance!r} is not one of {', '.join(choices)}"
                + _did_you_mean(str(instance), choices)
            ),
        )
    elif kind == "pattern" and "propertyNames" in error.schema_path:
        yield [*path, instance], "not a valid asset name; use letters, digits, '.', '_' or '-'"
    elif kind == "pattern":
        yield path, _pattern_message(path, instance)
    elif kind == "minLength":
        yield path, "empty; it must not be"
    elif kind == "minimum":
        yield path, f"must be at least {error.validator_value}, got {instance}"
    else:
        yield path, error.message


def _pattern_message(path: list[Any], instance: Any) -> str:
    if path and path[-1] == "language":
        return f"{instance!r} is not a BCP 47 language tag such as zh-CN or en"
    return f"{instance!r} is not a valid id; use letters, digits, '.', '_' or '-' (at most 64)"


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; allowed: {', '.join(choices)}"


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"{value!r}" if len(repr(value)) <= 40 else type(value).__name__


def _field_name(container: Any, path: list[Any]) -> str:
    """A readable field path: options[b].fixd, blanks[b1].accepted[0], assets[chart.png]."""
    parts: list[str] = []
    node = container
    for step in path:
        if isinstance(step, int):
            child = node[step] if isinstance(node, list) and step < len(node) else None
            label = child.get("id") if isinstance(child, dict) else None
            parts.append(f"[{label}]" if _is_id(label) else f"[#{step + 1}]")
            node = child
        elif parts and parts[-1] == "assets":
            parts.append(f"[{step}]")
            node = node.get(step) if isinstance(node, dict) else None
        else:
            parts.append(f".{step}" if parts else str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return "".join(parts)


def _path_key(path: Any) -> list[tuple[int, int | str]]:
    return [(0, p) if isinstance(p, int) else (1, str(p)) for p in path]


def _section_label(section: Any, index: int) -> str:
    sid = section.get("id") if isinstance(section, dict) else None
    return f"section {sid}" if _is_id(sid) else f"section #{index + 1}"


def _item_label(item: Any, index: int, section_label: str) -> str:
    iid = item.get("id") if isinstance(item, dict) else None
    return f"item {iid}" if _is_id(iid) else f"item #{index + 1} in {section_label}"


# --- small typed helpers --------------------------------------------------------------------


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _duplicates(values: list[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for value in values:
        if value in seen and value not in dups:
            dups.append(value)
        seen.add(value)
    return dups


def _key_list(key: Any) -> list[str]:
    """A key as a list of option ids; YAML's true/false become the true_false option ids."""
    if key is None:
        return []
    values = key if isinstance(key, list) else [key]
    return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]


_SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {
    "image/png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "image/jpeg": ((0, b"\xff\xd8\xff"),),
    "image/gif": ((0, b"GIF8"),),
    "image/webp": ((0, b"RIFF"), (8, b"WEBP")),
    "audio/ogg": ((0, b"OggS"),),
    "audio/wav": ((0, b"RIFF"), (8, b"WAVE")),
    "audio/mp4": ((4, b"ftyp"),),
}


def content_matches(media_type: str, data: bytes) -> bool:
    """Whether `data` starts like a file of `media_type` (a renamed or corrupt file does not)."""
    if media_type == "audio/mpeg":
        return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    signature = _SIGNATURES.get(media_type, ())
    return all(data[at : at + len(magic)] == magic for at, magic in signature)
