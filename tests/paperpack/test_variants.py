"""Per-candidate variants: permutations, tokens, the inverse map and what the browser gets."""

from __future__ import annotations

import hashlib
import hmac
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack.model import CHOICE_TYPES, Paper
from paperpack.scoring import compile_key, score_paper
from paperpack.synthetic import synthetic_paper
from paperpack.variants import (
    UnknownToken,
    Variant,
    VariantError,
    VariantPlan,
    build_variant,
    build_variants,
    key_in_display_order,
    render_variant,
    to_canonical,
    to_display,
    variant_digest,
    variant_seed,
)
from tests.strategies import answers, papers, secrets, session_ids, strip_keys, tickets

SECRET = bytes(range(32))
PROPS = settings(max_examples=50, deadline=None)


def all_tokens(variant: Variant) -> list[str]:
    return [t for vi in variant.items() for t in (vi.token, *vi.option_tokens, *vi.blank_tokens)]


@PROPS
@given(papers(), secrets(), tickets())
def test_variant_is_a_permutation_keeping_fixed_options(paper: Paper, secret: bytes, ticket: str):
    """Each section's items and each item's options are permutations; fixed options stay put."""
    variant = build_variant(paper, secret, "S1", ticket)
    assert [s.section_id for s in variant.sections] == [s.section_id for s in paper.sections]
    for section, vs in zip(paper.sections, variant.sections, strict=True):
        authored = [i.item_id for i in section.items]
        shown = [vi.item_id for vi in vs.items]
        assert sorted(shown) == sorted(authored)
        if not section.shuffle:
            assert shown == authored
    for vi in variant.items():
        item = paper.item(vi.item_id)
        n = len(item.options)
        assert sorted(vi.option_order) == list(range(n))
        assert vi.option_ids == tuple(item.options[q].option_id for q in vi.option_order)
        assert len(vi.option_tokens) == n
        for slot, q in enumerate(vi.option_order):
            if item.options[q].fixed or not item.shuffle_options:
                assert q == slot
        assert len(vi.blank_tokens) == (len(item.blanks) if item.type == "fill_blank" else 0)


@PROPS
@given(st.data(), papers(), secrets(), tickets())
def test_inverse_of_display_is_the_answer(
    data: st.DataObject, paper: Paper, secret: bytes, ticket: str
):
    """to_canonical(to_display(answer)) gives back the canonical answer."""
    variant = build_variant(paper, secret, "S1", ticket)
    canonical = data.draw(answers(paper))
    shown = to_display(variant, canonical)
    assert set(shown).isdisjoint(i.item_id for i in paper.items())
    assert to_canonical(variant, shown) == canonical


@PROPS
@given(papers(), secrets(), session_ids(), tickets())
def test_same_secret_and_ticket_give_the_same_variant(
    paper: Paper, secret: bytes, session_id: str, ticket: str
):
    """The variant is a function of secret, session and ticket, and ignores the keys;
    the digest alone comes out the same without building the variant."""
    first = build_variant(paper, secret, session_id, ticket)
    again = VariantPlan(paper).build(secret, session_id, ticket)
    without_keys = build_variant(strip_keys(paper), secret, session_id, ticket)
    assert first == again == without_keys
    assert first.digest == without_keys.digest
    assert VariantPlan(paper).digest(secret, session_id, ticket) == first.digest
    if paper.forms:
        with_form = VariantPlan(paper).build(secret, session_id, ticket, paper.forms[-1])
        assert VariantPlan(paper).digest(secret, session_id, ticket, paper.forms[-1]) == (
            with_form.digest
        )


@PROPS
@given(papers(), secrets(), tickets(), tickets())
def test_different_tickets_give_different_tokens(paper: Paper, secret: bytes, a: str, b: str):
    """Two candidates share no token: tokens cannot be compared between neighbours."""
    if a == b:
        b = a + "0"
    first = build_variant(paper, secret, "S1", a)
    second = build_variant(paper, secret, "S1", b)
    assert set(all_tokens(first)).isdisjoint(all_tokens(second))
    assert first.digest != second.digest


@PROPS
@given(papers(), secrets(), tickets())
def test_key_in_display_order_scores_full_marks(paper: Paper, secret: bytes, ticket: str):
    """The key answered through the variant scores every objective point, under every rule."""
    variant = build_variant(paper, secret, "S1", ticket)
    canonical = to_canonical(variant, key_in_display_order(paper, variant))
    table = compile_key(paper)
    objective = [i for i in paper.items() if i.type != "essay"]
    sheet = score_paper(paper, canonical)
    assert sheet.items == {
        i.item_id: (i.points if i.type != "essay" else 0.0) for i in paper.items()
    }
    assert table.score(canonical) == sheet
    assert table.total(canonical) == sheet.total == math.fsum(i.points for i in objective)
    assert sheet.total == table.objective_points


@PROPS
@given(papers(), secrets(), tickets())
def test_rendered_paper_has_no_keys_or_canonical_ids(paper: Paper, secret: bytes, ticket: str):
    """The browser's paper carries tokens in display order and no id, key or scoring detail."""
    variant = build_variant(paper, secret, "S1", ticket)
    rendered = render_variant(paper, variant)
    text = json.dumps(rendered, ensure_ascii=False)
    # Canonical ids look like "item.3" and accepted answers start with "~" (tests/strategies).
    for marker in ("item.", "opt.", "section.", "blank.", "paper.", "~"):
        assert marker not in text
    for word in ("key", "accepted", "partial", "scoring", "section_id", "item_id", "option_id"):
        assert f'"{word}"' not in text
    shown = [item for s in rendered["sections"] for item in s["items"]]
    assert [i["id"] for i in shown] == [vi.token for vi in variant.items()]
    for item, vi in zip(shown, variant.items(), strict=True):
        if vi.type in CHOICE_TYPES:
            assert [o["id"] for o in item["options"]] == list(vi.option_tokens)
            assert [o["label"] for o in item["options"]][:2] == ["A", "B"]
    assert [i["number"] for i in shown] == list(range(1, len(shown) + 1))


def test_rendered_paper_shows_options_in_display_order():
    """Each option's HTML is the one of the canonical option in that display slot."""
    paper = synthetic_paper(30, seed=2)
    variant = build_variant(paper, SECRET, "S1", "T1")
    rendered = render_variant(paper, variant)
    for section in rendered["sections"]:
        for item in section["items"]:
            vi = variant.items_by_token[item["id"]]
            original = paper.item(vi.item_id)
            for slot, option in enumerate(item.get("options", [])):
                assert option["html"] == original.options[vi.option_order[slot]].html


def test_seed_encoding_is_unambiguous():
    """Moving characters between session id and ticket changes the seed."""
    assert variant_seed(SECRET, "ab", "c") != variant_seed(SECRET, "a", "bc")
    assert variant_seed(SECRET, "S", "T") == variant_seed(SECRET, "S", "T")
    assert variant_seed(SECRET, "S", "T") != variant_seed(SECRET[::-1], "S", "T")


def test_seed_is_the_documented_hmac():
    """seed = HMAC-SHA256(secret, label | u32 len | session | u32 len | ticket), UTF-8."""
    message = b"cbt-variant-seed-v1" + b"\x00\x00\x00\x02S1" + b"\x00\x00\x00\x03" + "考1".encode()
    expected = hmac.new(SECRET, message, hashlib.sha256).digest()
    assert variant_seed(SECRET, "S1", "考") != expected
    assert variant_seed(SECRET, "S1", "考1"[:1]) != expected
    message = b"cbt-variant-seed-v1" + b"\x00\x00\x00\x02S1" + b"\x00\x00\x00\x04" + "考1".encode()
    assert variant_seed(SECRET, "S1", "考1") == hmac.new(SECRET, message, hashlib.sha256).digest()


def test_short_secret_is_refused():
    """A variant secret under 16 bytes is refused with a message saying how long it must be."""
    with pytest.raises(VariantError, match="at least 16"):
        build_variant(synthetic_paper(5), b"short", "S1", "T1")


def test_form_must_be_one_of_the_papers_forms():
    """Forms change the variant, and a form the paper does not have is refused."""
    paper = synthetic_paper(20, seed=1, forms=("A", "B"))
    a = build_variant(paper, SECRET, "S1", "T1", "A")
    b = build_variant(paper, SECRET, "S1", "T1", "B")
    assert a.digest != b.digest and a.form == "A"
    with pytest.raises(VariantError, match="not one of paper"):
        build_variant(paper, SECRET, "S1", "T1", "C")


def test_build_variants_matches_one_by_one():
    """Building many variants at once gives the same variants as one at a time."""
    paper = synthetic_paper(20, seed=3, forms=("A", "B"))
    tickets_ = [f"T{i}" for i in range(5)]
    many = build_variants(paper, SECRET, "S1", tickets_, {"T1": "B"})
    assert many == {
        t: build_variant(paper, SECRET, "S1", t, "B" if t == "T1" else None) for t in tickets_
    }
    assert variant_digest(many.values()) == variant_digest(reversed(list(many.values())))


def test_variant_digest_known_answer():
    """The digest of a fixed paper, secret and tickets is pinned: venue and centre must agree
    across versions, so any change to the derivation has to be deliberate."""
    variants = build_variants(synthetic_paper(20, seed=1), SECRET, "2026-11-S1", ["0001", "0002"])
    assert variants["0001"].items()[0].token == PINNED_FIRST_TOKEN
    assert variant_digest(variants.values()) == PINNED_DIGEST


PINNED_FIRST_TOKEN = "2e9231870d7b86f8"
PINNED_DIGEST = "69dad936276cd0ea5afd42c192377e852e88d6d39b47cf95de16767e6e9155f1"


def _variant() -> tuple[Paper, Variant]:
    paper = synthetic_paper(30, seed=4)
    return paper, build_variant(paper, SECRET, "S1", "T1")


def _first(variant: Variant, kind: str):
    return next(vi for vi in variant.items() if vi.type == kind)


@pytest.mark.parametrize(
    ("make", "role"),
    [
        (lambda v: {"nope": ["x"]}, "item"),
        (lambda v: {_first(v, "single_choice").token: ["nope"]}, "option"),
        (
            lambda v: {
                _first(v, "single_choice").token: [_first(v, "multiple_choice").option_tokens[0]]
            },
            "option",
        ),
        (
            lambda v: {
                _first(v, "multiple_choice").token: [_first(v, "multiple_choice").option_tokens[0]]
                * 2
            },
            "option",
        ),
        (
            lambda v: {
                _first(v, "single_choice").token: _first(v, "single_choice").option_tokens[0]
            },
            "answer",
        ),
        (lambda v: {_first(v, "fill_blank").token: ["a"] * 9}, "blank"),
        (lambda v: {_first(v, "fill_blank").token: [1]}, "answer"),
        (lambda v: {_first(v, "essay").token: ["text"]}, "answer"),
    ],
    ids=[
        "item",
        "option",
        "other-items-option",
        "twice",
        "not-a-list",
        "blanks",
        "non-string",
        "essay-list",
    ],
)
def test_bad_responses_raise_unknown_token_naming_the_role(make, role):
    """Unknown tokens and malformed answers raise UnknownToken with the role, no canonical id."""
    paper, variant = _variant()
    with pytest.raises(UnknownToken) as caught:
        to_canonical(variant, make(variant))
    assert caught.value.role == role
    message = str(caught.value)
    assert not any(i.item_id in message for i in paper.items())


def test_option_tokens_in_any_order_map_to_the_same_answer():
    """A candidate's choices map to option ids in paper order, whatever order they were clicked."""
    paper, variant = _variant()
    vi = next(v for v in variant.items() if v.type == "multiple_choice")
    clicked = list(reversed(vi.option_tokens[:3]))
    canonical = to_canonical(variant, {vi.token: clicked})[vi.item_id]
    ids = [o.option_id for o in paper.item(vi.item_id).options]
    assert list(canonical) == sorted(canonical, key=ids.index)
    assert set(canonical) == {vi.option_ids[j] for j in range(3)}
    assert to_canonical(variant, {vi.token: []})[vi.item_id] == ()
