"""Objective scoring rules: fill-in normalisation, the rule per item type, the fast key table."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack.model import CHOICE_TYPES, Blank, Item, Normalisation, Option, Paper, Section
from paperpack.scoring import compile_key, normalise_fill, score_item, score_paper
from paperpack.synthetic import synthetic_paper
from paperpack.variants import build_variant, key_in_display_order, to_canonical
from tests.strategies import answers, papers, secrets, tickets

PROPS = settings(max_examples=60, deadline=None)
DEFAULT = Normalisation()
OPTIONS = tuple(Option(i, f"<p>{i}</p>") for i in "abcde")


def choice(kind: str, key: tuple[str, ...], scoring: str = "all_or_nothing") -> Item:
    return Item(
        "q1",
        kind,
        "<p>?</p>",
        2.0,
        OPTIONS,
        key,
        scoring=scoring,  # type: ignore[arg-type]
        partial_points=0.5 if scoring == "partial" else 0.0,
    )


def fill(*accepted: tuple[str, ...], normalisation: Normalisation = DEFAULT) -> Item:
    blanks = tuple(Blank(f"b{n}", a, normalisation) for n, a in enumerate(accepted))
    return Item("q2", "fill_blank", "<p>__</p>", 3.0, blanks=blanks)


@pytest.mark.parametrize(
    ("text", "normalisation", "expected"),
    [
        ("ＡＢＣ１２３", DEFAULT, "abc123"),
        ("　ｈｅｌｌｏ　　ｗｏｒｌｄ　", DEFAULT, "hello world"),
        ("  Hello \t\n World ", DEFAULT, "hello world"),
        ("Ｈｉ！～", Normalisation(case_sensitive=True), "Hi!~"),
        ("  a  b ", Normalisation(trim=False), " a b "),
        ("  a  b ", Normalisation(collapse_whitespace=False), "a  b"),
        ("ＡＢ", Normalisation(fullwidth_to_halfwidth=False), "ａｂ"),
        ("三十 天", DEFAULT, "三十 天"),
    ],
)
def test_normalise_fill(text: str, normalisation: Normalisation, expected: str):
    """Width, whitespace and case are folded exactly as the blank's options say."""
    assert normalise_fill(text, normalisation) == expected


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E)))
def test_fullwidth_text_equals_its_halfwidth_form(text: str):
    """Any printable ASCII typed in full-width forms compares equal to the ASCII."""
    wide = "".join(chr(ord(c) + 0xFEE0) for c in text)
    assert normalise_fill(wide, DEFAULT) == normalise_fill(text, DEFAULT)


@pytest.mark.parametrize(
    ("item", "answer", "expected"),
    [
        (choice("single_choice", ("b",)), ("b",), 2.0),
        (choice("single_choice", ("b",)), ["b"], 2.0),
        (choice("single_choice", ("b",)), ("a",), 0.0),
        (choice("single_choice", ("b",)), ("a", "b"), 0.0),
        (choice("single_choice", ("b",)), (), 0.0),
        (choice("single_choice", ("b",)), "b", 0.0),
        (choice("single_choice", ("b",)), (["b"],), 0.0),
        (choice("multiple_choice", ("a", "c"), "partial"), ("a", 1), 0.0),
        (choice("true_false", ("a",)), ("a",), 2.0),
        (choice("multiple_choice", ("a", "c")), ("c", "a"), 2.0),
        (choice("multiple_choice", ("a", "c")), ("a",), 0.0),
        (choice("multiple_choice", ("a", "c")), ("a", "c", "d"), 0.0),
        (choice("multiple_choice", ("a", "c", "d"), "partial"), ("a", "c", "d"), 2.0),
        (choice("multiple_choice", ("a", "c", "d"), "partial"), ("d", "a"), 0.5),
        (choice("multiple_choice", ("a", "c", "d"), "partial"), ("c",), 0.5),
        (choice("multiple_choice", ("a", "c", "d"), "partial"), ("a", "b"), 0.0),
        (choice("multiple_choice", ("a", "c", "d"), "partial"), ("a", "b", "c", "d"), 0.0),
        (choice("multiple_choice", ("a", "c", "d"), "partial"), (), 0.0),
        (fill(("30", "三十"), ("C30",)), ("三十", "ｃ３０"), 3.0),
        (fill(("30", "三十"), ("C30",)), ("31", " c30 "), 1.5),
        (fill(("30",), ("C30",), ("x",)), ("30",), 1.0),
        (fill(("30",)), "30", 0.0),
        (fill(("Abc",), normalisation=Normalisation(case_sensitive=True)), ("abc",), 0.0),
        (Item("q3", "essay", "<p>?</p>", 10.0), "a long essay", 0.0),
        (choice("single_choice", ("b",)), None, 0.0),
    ],
)
def test_score_item_rules(item: Item, answer, expected: float):
    """Each rule gives exactly the points the issue states; the key table agrees."""
    assert score_item(item, answer) == expected
    paper = Paper("p", "01", "s", "t", "zh-CN", 60, (_section(item),))
    assert compile_key(paper).score({item.item_id: answer}).items[item.item_id] == expected


def _section(item: Item) -> Section:
    return Section("s1", "S", (item,))


@PROPS
@given(st.data(), papers())
def test_key_table_equals_score_paper(data: st.DataObject, paper: Paper):
    """The precompiled key table scores every answer sheet exactly as score_paper does."""
    sheet = data.draw(answers(paper))
    reference = score_paper(paper, sheet)
    table = compile_key(paper)
    assert table.score(sheet) == reference
    assert table.total(sheet) == reference.total
    assert reference.pending == tuple(i.item_id for i in paper.items() if i.type == "essay")
    for item in paper.items():
        assert 0.0 <= reference.items[item.item_id] <= item.points


@PROPS
@given(st.data(), papers())
def test_key_table_scores_answers_as_json_gives_them(data: st.DataObject, paper: Paper):
    """Answers decoded from a package are lists, in any order, even with repeats: the key
    table's list fast paths score them exactly as score_paper scores the same choices."""
    sheet = data.draw(answers(paper))
    choice = {i.item_id for i in paper.items() if i.type in CHOICE_TYPES}
    as_json = {}
    for item_id, answer in sheet.items():
        if item_id in choice and answer:
            answer = data.draw(st.permutations(answer)) + data.draw(
                st.lists(st.sampled_from(answer), max_size=2)
            )
        elif isinstance(answer, tuple):
            answer = list(answer)
        as_json[item_id] = answer
    table = compile_key(paper)
    assert table.score(as_json) == score_paper(paper, as_json)
    assert table.score(as_json).items == score_paper(paper, sheet).items


@PROPS
@given(papers(), secrets(), tickets())
def test_key_answered_in_display_order_always_scores_full_marks(
    paper: Paper, secret: bytes, ticket: str
):
    """Under every scoring rule, the key given through a candidate's variant earns full marks."""
    variant = build_variant(paper, secret, "S1", ticket)
    sheet = compile_key(paper).score(to_canonical(variant, key_in_display_order(paper, variant)))
    for item in paper.items():
        assert sheet.items[item.item_id] == (0.0 if item.type == "essay" else item.points)


def test_unanswered_items_score_zero():
    """An empty answer sheet scores 0 and lists the essays as pending."""
    paper = synthetic_paper(40, seed=5)
    sheet = compile_key(paper).score({})
    assert sheet.total == 0.0 and set(sheet.items.values()) == {0.0}
    assert sheet.pending == tuple(i.item_id for i in paper.items() if i.type == "essay")
    assert compile_key(paper).objective_points == math.fsum(
        i.points for i in paper.items() if i.type != "essay"
    )
