"""Hypothesis strategies for papers, answers, secrets and tickets, shared by every test folder.

Canonical ids are made recognisable on purpose: item ids look like `item.3`, option ids
`opt.3.1`, section ids `section.0`, accepted fill-in answers start with `~`. None of `.` and
`~` can occur in a variant token (hex) or in the generated HTML, so a test can
search rendered output for them and any hit is a leak.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from paperpack.model import (
    CHOICE_TYPES,
    ITEM_TYPES,
    Blank,
    Item,
    Normalisation,
    Option,
    Paper,
    Section,
    paper_from_dict,
    paper_to_dict,
)
from paperpack.scoring import Answer

POINTS = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 2.5, 0.1, 10.0])
HTML_TEXT = st.text(alphabet="题目选项中文正确错误 abcxyzABC0123,;:!?", min_size=1, max_size=20)
# Fill-in text: ASCII letters, digits, spaces and their full-width forms (incl. U+3000).
FILL_TEXT = st.text(alphabet="abcXYZ019 　ＡＢｃ１２", min_size=0, max_size=12)


def secrets() -> st.SearchStrategy[bytes]:
    """Variant secrets (16-64 random bytes)."""
    return st.binary(min_size=16, max_size=64)


def tickets() -> st.SearchStrategy[str]:
    """Ticket numbers, including awkward ones (separators, non-ASCII)."""
    return st.text(alphabet="0123456789ABZ-|/考", min_size=1, max_size=16)


def session_ids() -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789abcdef-|", min_size=1, max_size=12)


@st.composite
def _options(draw: st.DrawFn, number: int, min_n: int, max_n: int) -> tuple[Option, ...]:
    n = draw(st.integers(min_n, max_n))
    fixed = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return tuple(
        Option(f"opt.{number}.{j}", f"<p>{draw(HTML_TEXT)}</p>", fixed[j]) for j in range(n)
    )


@st.composite
def _choice_item(draw: st.DrawFn, number: int, item_type: str) -> Item:
    item_id = f"item.{number}"
    stem = f"<p>{draw(HTML_TEXT)}</p>"
    points = draw(POINTS)
    if item_type == "true_false":
        options = (Option("true", "正确 / True", True), Option("false", "错误 / False", True))
        key = (draw(st.sampled_from(["true", "false"])),)
        return Item(item_id, "true_false", stem, points, options, key, shuffle_options=False)
    # Up to 8 options covers both ways a permutation is drawn (table for <= 5 movable).
    options = draw(_options(number, 2, 8))
    ids = [o.option_id for o in options]
    shuffle = draw(st.booleans()) or draw(st.booleans())
    if item_type == "single_choice":
        key = (draw(st.sampled_from(ids)),)
        return Item(item_id, "single_choice", stem, points, options, key, shuffle)
    chosen = draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
    key = tuple(i for i in ids if i in chosen)
    partial = draw(st.booleans())
    partial_points = points / 2 if partial else 0.0
    return Item(
        item_id,
        "multiple_choice",
        stem,
        points,
        options,
        key,
        shuffle,
        scoring="partial" if partial else "all_or_nothing",
        partial_points=partial_points,
    )


@st.composite
def _fill_item(draw: st.DrawFn, number: int) -> Item:
    n = draw(st.integers(1, 3))
    blanks = tuple(
        Blank(
            f"blank.{number}.{k}",
            tuple("~" + a for a in draw(st.lists(FILL_TEXT, min_size=1, max_size=3))),
            Normalisation(
                case_sensitive=draw(st.booleans()),
                trim=draw(st.booleans()),
                collapse_whitespace=draw(st.booleans()),
                fullwidth_to_halfwidth=draw(st.booleans()),
            ),
        )
        for k in range(n)
    )
    return Item(
        f"item.{number}", "fill_blank", f"<p>{draw(HTML_TEXT)}</p>", draw(POINTS), blanks=blanks
    )


@st.composite
def items(draw: st.DrawFn, number: int, item_type: str | None = None) -> Item:
    """One item of `item_type` (any type when None) with id `item.<number>`."""
    kind = item_type or draw(st.sampled_from(ITEM_TYPES))
    if kind in CHOICE_TYPES:
        return draw(_choice_item(number, kind))
    if kind == "fill_blank":
        return draw(_fill_item(number))
    max_length = draw(st.sampled_from([0, 200, 2000]))
    return Item(
        f"item.{number}", "essay", f"<p>{draw(HTML_TEXT)}</p>", draw(POINTS), max_length=max_length
    )


@st.composite
def papers(draw: st.DrawFn, max_sections: int = 3, max_items: int = 6) -> Paper:
    """Papers with 1..max_sections sections of 1..max_items items; every type appears once."""
    n_sections = draw(st.integers(1, max_sections))
    sizes = [draw(st.integers(1, max_items)) for _ in range(n_sections)]
    # The first five items are one of each type, so every paper exercises every rule.
    kinds = list(ITEM_TYPES) + [None] * max(0, sum(sizes) - len(ITEM_TYPES))
    sizes[-1] += max(0, len(ITEM_TYPES) - sum(sizes))
    number = 0
    sections = []
    for s, size in enumerate(sizes):
        section_items = []
        for _ in range(size):
            section_items.append(draw(items(number, kinds[number])))
            number += 1
        sections.append(
            Section(
                f"section.{s}",
                f"Part {s + 1} {draw(HTML_TEXT)}",
                tuple(section_items),
                f"<p>{draw(HTML_TEXT)}</p>",
                draw(st.booleans()),
            )
        )
    # Forms are arrangements (items rotated within sections): as many as the largest section
    # can tell apart, so the paper is one the packer accepts.
    forms = draw(
        st.sampled_from([f for f in [(), ("A", "B"), ("A", "B", "C")] if len(f) <= max(sizes)])
    )
    return Paper(
        paper_id="paper.1",
        subject_code="0101",
        subject_name="测试 Test",
        title="试卷 Paper",
        language="zh-CN",
        duration_minutes=120,
        sections=tuple(sections),
        forms=forms,
    )


def _choice_answer(draw: st.DrawFn, item: Item) -> tuple[str, ...]:
    ids = [o.option_id for o in item.options]
    chosen = draw(st.lists(st.sampled_from(ids), unique=True, max_size=len(ids)))
    return tuple(i for i in ids if i in chosen)  # canonical form: paper order, no repeats


@st.composite
def answers(draw: st.DrawFn, paper: Paper) -> dict[str, Answer]:
    """Canonical answers to some of `paper`'s items: right, partly right, wrong or odd."""
    out: dict[str, Answer] = {}
    for item in paper.items():
        if draw(st.integers(0, 4)) == 0:
            continue  # unanswered
        if item.type in CHOICE_TYPES:
            use_key = draw(st.booleans())
            out[item.item_id] = item.key if use_key else _choice_answer(draw, item)
        elif item.type == "fill_blank":
            out[item.item_id] = tuple(
                draw(st.sampled_from(b.accepted) | FILL_TEXT | st.just("~" + draw(FILL_TEXT)))
                for b in item.blanks
            )
        else:
            out[item.item_id] = draw(st.text(max_size=30))
    return out


def strip_keys(paper: Paper) -> Paper:
    """`paper` as a venue holds it: the same structure with every key removed."""
    data: dict[str, Any] = paper_to_dict(paper, with_keys=False)
    return paper_from_dict(data)
