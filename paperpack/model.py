"""The paper model: what a paper is, independent of how it was written down.

Every other part (validation, QTI import, variants, scoring, sealing, the venue server)
works on these frozen dataclasses. Loading from YAML/JSON with full error reporting lives
in `paperpack.paperfile`; this module only holds the shapes and their plain-dict forms.

Ids are the author's canonical ids (`item_id`, `option_id`, `blank_id`); they never reach
a candidate's browser (the venue serves opaque per-attempt tokens instead, see
`paperpack.variants`).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

ItemType = Literal["single_choice", "multiple_choice", "true_false", "fill_blank", "essay"]
ITEM_TYPES: tuple[ItemType, ...] = (
    "single_choice",
    "multiple_choice",
    "true_false",
    "fill_blank",
    "essay",
)
CHOICE_TYPES: frozenset[str] = frozenset({"single_choice", "multiple_choice", "true_false"})
PaperKind = Literal["standard", "audio_video"]
MultipleScoring = Literal["all_or_nothing", "partial"]

# A true/false item always has exactly these two options, in this order, never shuffled.
TRUE_FALSE_OPTION_IDS: tuple[str, str] = ("true", "false")


@dataclass(frozen=True)
class Option:
    """One choice of a choice item. `fixed` options keep their position in every variant."""

    option_id: str
    html: str  # sanitised HTML (see paperpack.html)
    fixed: bool = False


@dataclass(frozen=True)
class Normalisation:
    """How a fill-in answer is normalised before it is compared with the accepted answers."""

    case_sensitive: bool = False
    trim: bool = True  # strip surrounding whitespace
    collapse_whitespace: bool = True  # runs of inner whitespace become one space
    fullwidth_to_halfwidth: bool = True  # "ＡＢＣ１２３" compares equal to "ABC123"


@dataclass(frozen=True)
class Blank:
    """One blank of a fill-in item, with every answer that earns its share of the points."""

    blank_id: str
    accepted: tuple[str, ...]  # answer key: never in a venue package
    normalisation: Normalisation = field(default_factory=Normalisation)


@dataclass(frozen=True)
class Item:
    """One question. Fields that do not apply to `type` keep their empty defaults."""

    item_id: str
    type: ItemType
    stem: str  # sanitised HTML
    points: float  # full marks for the item, > 0
    options: tuple[Option, ...] = ()  # choice types only
    key: tuple[str, ...] = ()  # correct option ids (choice types); answer key
    shuffle_options: bool = True  # choice types: whether option order varies per candidate
    scoring: MultipleScoring = "all_or_nothing"  # multiple_choice only
    partial_points: float = 0.0  # multiple_choice with scoring "partial": a correct proper subset
    blanks: tuple[Blank, ...] = ()  # fill_blank only
    max_length: int = 0  # essay only: maximum characters, 0 = no limit


@dataclass(frozen=True)
class Section:
    """A titled group of items; `shuffle` lets item order vary per candidate."""

    section_id: str
    title: str
    items: tuple[Item, ...]
    instructions: str = ""  # sanitised HTML
    shuffle: bool = True


@dataclass(frozen=True)
class Asset:
    """An image or audio file embedded in the paper, referenced from HTML as `asset:NAME`."""

    name: str
    media_type: str  # e.g. "image/png"
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Paper:
    """An authored paper: metadata, sections of items, embedded assets."""

    paper_id: str
    subject_code: str
    subject_name: str
    title: str
    language: str  # BCP 47, e.g. "zh-CN", "en"
    duration_minutes: int
    sections: tuple[Section, ...]
    kind: PaperKind = "standard"
    forms: tuple[str, ...] = ()  # parallel forms, e.g. ("A", "B"); empty = one form
    pass_mark: float | None = None  # published pass standard, in points
    assets: tuple[Asset, ...] = ()

    def items(self) -> list[Item]:
        """All items in authored order."""
        return [item for section in self.sections for item in section.items]

    def item(self, item_id: str) -> Item:
        for candidate in self.items():
            if candidate.item_id == item_id:
                return candidate
        raise KeyError(item_id)

    @property
    def total_points(self) -> float:
        return sum(item.points for item in self.items())

    def asset(self, name: str) -> Asset:
        for candidate in self.assets:
            if candidate.name == name:
                return candidate
        raise KeyError(name)


# --- plain-dict forms -------------------------------------------------------------------
# `paper_to_dict` is the canonical serialisation (native format, canonical JSON for
# packing). `paper_from_dict` trusts its input: untrusted files go through
# `paperpack.paperfile`, which validates and reports every problem first.


def _item_to_dict(item: Item, *, with_keys: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": item.item_id,
        "type": item.type,
        "stem": item.stem,
        "points": item.points,
    }
    if item.type in CHOICE_TYPES:
        out["options"] = [
            {"id": o.option_id, "html": o.html, **({"fixed": True} if o.fixed else {})}
            for o in item.options
        ]
        if item.type != "true_false":
            out["shuffle_options"] = item.shuffle_options
        if with_keys:
            out["key"] = list(item.key)
    if item.type == "multiple_choice":
        out["scoring"] = item.scoring
        if item.scoring == "partial":
            out["partial_points"] = item.partial_points
    if item.type == "fill_blank":
        blanks = []
        for b in item.blanks:
            blank: dict[str, Any] = {"id": b.blank_id}
            if with_keys:
                blank["accepted"] = list(b.accepted)
                n = b.normalisation
                blank["normalise"] = {
                    "case_sensitive": n.case_sensitive,
                    "trim": n.trim,
                    "collapse_whitespace": n.collapse_whitespace,
                    "fullwidth_to_halfwidth": n.fullwidth_to_halfwidth,
                }
            blanks.append(blank)
        out["blanks"] = blanks
    if item.type == "essay" and item.max_length:
        out["max_length"] = item.max_length
    return out


def paper_to_dict(
    paper: Paper, *, with_keys: bool = True, with_assets: bool = True
) -> dict[str, Any]:
    """The paper as plain data. `with_keys=False` is the form that may leave the centre."""
    out: dict[str, Any] = {
        "paper_id": paper.paper_id,
        "subject_code": paper.subject_code,
        "subject_name": paper.subject_name,
        "title": paper.title,
        "language": paper.language,
        "duration_minutes": paper.duration_minutes,
        "kind": paper.kind,
    }
    if paper.forms:
        out["forms"] = list(paper.forms)
    if paper.pass_mark is not None and with_keys:
        out["pass_mark"] = paper.pass_mark
    out["sections"] = [
        {
            "id": s.section_id,
            "title": s.title,
            "instructions": s.instructions,
            "shuffle": s.shuffle,
            "items": [_item_to_dict(i, with_keys=with_keys) for i in s.items],
        }
        for s in paper.sections
    ]
    if with_assets and paper.assets:
        out["assets"] = {
            a.name: {"media_type": a.media_type, "data": base64.b64encode(a.data).decode("ascii")}
            for a in paper.assets
        }
    return out


def _item_from_dict(raw: dict[str, Any], default_points: float | None = None) -> Item:
    item_type = raw["type"]
    options: tuple[Option, ...] = ()
    if item_type == "true_false" and "options" not in raw:
        options = (Option("true", "正确 / True"), Option("false", "错误 / False"))
    else:
        options = tuple(
            Option(o["id"], o.get("html", ""), bool(o.get("fixed", False)))
            for o in raw.get("options", ())
        )
    if item_type == "true_false":
        # Both options of a true/false item are fixed: "true" always comes first.
        options = tuple(Option(o.option_id, o.html, True) for o in options)
    blanks = tuple(
        Blank(
            b["id"],
            tuple(b.get("accepted", ())),
            Normalisation(**b.get("normalise", {})),
        )
        for b in raw.get("blanks", ())
    )
    points = raw.get("points", default_points)
    return Item(
        item_id=raw["id"],
        type=item_type,
        stem=raw.get("stem", ""),
        points=float(points) if points is not None else 0.0,
        options=options,
        key=tuple(raw.get("key", ())),
        shuffle_options=bool(raw.get("shuffle_options", item_type != "true_false")),
        scoring=raw.get("scoring", "all_or_nothing"),
        partial_points=float(raw.get("partial_points", 0.0)),
        blanks=blanks,
        max_length=int(raw.get("max_length", 0)),
    )


def paper_from_dict(raw: dict[str, Any]) -> Paper:
    """Build a Paper from already-validated plain data (see paperpack.paperfile)."""
    sections = tuple(
        Section(
            section_id=s["id"],
            title=s.get("title", ""),
            instructions=s.get("instructions", ""),
            shuffle=bool(s.get("shuffle", True)),
            items=tuple(_item_from_dict(i, s.get("points")) for i in s.get("items", ())),
        )
        for s in raw["sections"]
    )
    assets = tuple(
        Asset(name, a["media_type"], base64.b64decode(a["data"]))
        for name, a in (raw.get("assets") or {}).items()
    )
    pass_mark = raw.get("pass_mark")
    return Paper(
        paper_id=raw["paper_id"],
        subject_code=raw["subject_code"],
        subject_name=raw["subject_name"],
        title=raw["title"],
        language=raw.get("language", "zh-CN"),
        duration_minutes=int(raw["duration_minutes"]),
        kind=raw.get("kind", "standard"),
        forms=tuple(raw.get("forms", ())),
        pass_mark=float(pass_mark) if pass_mark is not None else None,
        sections=sections,
        assets=assets,
    )
