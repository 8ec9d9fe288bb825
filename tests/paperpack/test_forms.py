"""Forms to seats (art. 20): neighbours sit different forms or see a different order, by a
rule anyone can re-run; forms are real arrangements of the paper."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from paperpack.forms import (
    Seat,
    SeatPlanInvalid,
    assign_forms,
    neighbour_conflicts,
    parse_layout,
    seat_layouts,
)
from paperpack.model import Item, Option, Paper, Section
from paperpack.synthetic import synthetic_paper
from paperpack.variants import Variant, VariantError, VariantPlan

FORMS = ("A", "B", "C", "D", "E")


@st.composite
def seat_plans(draw: st.DrawFn) -> list[Seat]:
    """Rooms with some seats missing (aisles, broken PCs), in any order."""
    cells = st.tuples(
        st.sampled_from(["101", "102", "大厅"]), st.integers(1, 8), st.integers(1, 10)
    )
    keys = draw(st.lists(cells, min_size=1, max_size=60, unique=True))
    return [Seat(room, row, column) for room, row, column in keys]


def neighbours(a: Seat, b: Seat) -> tuple[bool, bool, bool]:
    """(side by side, front/back, diagonal) for two seats of the same room."""
    if a.room != b.room:
        return (False, False, False)
    dr, dc = abs(a.row - b.row), abs(a.column - b.column)
    return (dr == 0 and dc == 1, dr == 1 and dc == 0, dr == 1 and dc == 1)


@settings(max_examples=150, deadline=None)
@given(seat_plans(), st.integers(1, 5))
def test_neighbours_get_different_forms(seats: list[Seat], n_forms: int):
    """Side-by-side and front/back neighbours differ with >= 2 forms; diagonals with >= 4."""
    forms = FORMS[:n_forms]
    plan = assign_forms(seats, forms)
    assert set(plan) == {s.key for s in seats}
    assert set(plan.values()) <= set(forms)
    for a in seats:
        for b in seats:
            side, front, diagonal = neighbours(a, b)
            if (side or front) and n_forms >= 2:
                assert plan[a.key] != plan[b.key]
            if diagonal and n_forms >= 4:
                assert plan[a.key] != plan[b.key]


@settings(max_examples=100, deadline=None)
@given(seat_plans(), st.integers(1, 5), st.randoms())
def test_assignment_does_not_depend_on_seat_order(seats: list[Seat], n_forms: int, rnd):
    """The plan is a function of the seats' positions, not of the order they are listed in."""
    shuffled = list(seats)
    rnd.shuffle(shuffled)
    assert assign_forms(shuffled, FORMS[:n_forms]) == assign_forms(seats, FORMS[:n_forms])


def test_forms_are_used_evenly_in_a_full_room():
    """In a full 6 x 8 room with two forms each form has half the seats."""
    seats = [Seat("101", r, c) for r in range(1, 7) for c in range(1, 9)]
    values = list(assign_forms(seats, ("A", "B")).values())
    assert values.count("A") == values.count("B") == 24


def test_duplicate_seat_is_refused():
    """A seat listed twice is refused, naming the seat."""
    with pytest.raises(SeatPlanInvalid, match="row 1 column 2 is listed twice"):
        assign_forms([Seat("101", 1, 2), Seat("101", 1, 2)], ("A", "B"))


@pytest.mark.parametrize("forms", [(), ("A", "A")])
def test_bad_form_lists_are_refused(forms: tuple[str, ...]):
    """No forms, or a form named twice, is refused."""
    with pytest.raises(SeatPlanInvalid):
        assign_forms([Seat("101", 1, 1)], forms)


# --- art. 20: forms are real alternatives, and neighbours never see the same screen ---------

SECRET = bytes(range(32))


def _paper(sizes: tuple[int, ...], shuffle: bool, forms: tuple[str, ...]) -> Paper:
    """A paper of single-choice sections of `sizes` items (4 options each)."""
    sections = []
    number = 0
    for n, size in enumerate(sizes):
        items = []
        for _ in range(size):
            number += 1
            options = tuple(Option(f"o{k}", f"<p>{k}</p>") for k in range(4))
            items.append(
                Item(f"q{number}", "single_choice", "<p>?</p>", 1.0, options, ("o0",),
                     shuffle_options=shuffle)
            )  # fmt: skip
        sections.append(Section(f"s{n}", f"Part {n}", tuple(items), shuffle=shuffle))
    return Paper("P-FORMS", "27", "Law", "Law", "en", 60, tuple(sections), forms=forms)


def screen(variant: Variant) -> list[tuple[str, tuple[str, ...]]]:
    """What a candidate sees, in order: each item and its options."""
    return [(vi.item_id, vi.option_ids) for vi in variant.items()]


def test_art20_forms_differ_with_shuffling_off() -> None:
    """With no shuffling at all, forms A and B are different arrangements: every position
    shows another item (A keeps the authored order), and digests differ."""
    paper = _paper((4, 3), shuffle=False, forms=("A", "B"))
    plan = VariantPlan(paper)
    a, b = (plan.build(SECRET, "S1", "T1", form) for form in ("A", "B"))
    assert [vi.item_id for vi in a.items()] == [i.item_id for i in paper.items()]
    assert all(x[0] != y[0] for x, y in zip(screen(a), screen(b), strict=True))
    assert a.digest != b.digest
    # The same form is the same arrangement for every candidate when nothing is shuffled.
    assert screen(plan.build(SECRET, "S1", "T2", "B")) == screen(b)


def test_art20_forms_that_cannot_differ_are_refused() -> None:
    """A paper whose forms would come out the same (one item, options not shuffled) is refused
    in words, naming the forms."""
    with pytest.raises(VariantError, match="forms A and B come out the same"):
        VariantPlan(_paper((1,), shuffle=False, forms=("A", "B")))


def test_art20_an_unknown_form_is_refused_without_code_names() -> None:
    """The unlock's refusal names the paper's forms and the command, not a Python function."""
    with pytest.raises(VariantError) as caught:
        VariantPlan(_paper((3,), shuffle=True, forms=())).build(SECRET, "S1", "T1", "A#1")
    assert "(none)" in str(caught.value) and "cbt venue seats" in str(caught.value)
    assert "paperpack." not in str(caught.value) and "assign_forms" not in str(caught.value)


def test_art20_a_move_keeps_tokens_and_build_matches_digest() -> None:
    """Another order class (a move) changes the order, never the tokens; `digest` agrees."""
    paper = synthetic_paper(24, seed=5, forms=("A", "B"))
    plan = VariantPlan(paper)
    variants = [plan.build(SECRET, "S1", "T1", f"A#{k}") for k in range(4)]
    for v in variants:
        assert plan.digest(SECRET, "S1", "T1", v.form) == v.digest
    assert len({tuple(screen(v)) for v in variants}) == 4
    tokens = [{vi.item_id: vi.token for vi in v.items()} for v in variants]
    assert all(t == tokens[0] for t in tokens)


@st.composite
def rooms_and_rosters(draw: st.DrawFn) -> tuple[list[Seat], int, tuple[int, ...], bool]:
    """Random rooms with gaps (seats nobody sits in), a paper shape and a number of forms."""
    seats = draw(seat_plans())
    n_forms = draw(st.sampled_from([0, 2, 3, 4]))
    sizes = tuple(draw(st.lists(st.integers(1, 7), min_size=1, max_size=3)))
    shuffle = draw(st.booleans())
    return seats, n_forms, sizes, shuffle


@settings(max_examples=60, deadline=None)
@given(rooms_and_rosters(), st.integers(0, 10**6))
def test_art20_no_neighbours_share_a_form_or_an_order(case, salt: int) -> None:
    """Hypothesis over random rooms (gaps included) and rosters: for every pair of neighbours,
    diagonals included, the plan gives different forms, or (same form) real variants show a
    different order (in every shuffled section of 4 items or more); the only exceptions are
    the pairs the plan names, each with its reason, and only where the paper leaves no other
    way."""
    seats, n_forms, sizes, shuffle = case
    forms = FORMS[:n_forms]
    paper = _paper(sizes, shuffle, forms)
    try:
        plan = VariantPlan(paper)
    except VariantError:
        assume(False)
    layouts = seat_layouts(seats, forms)
    named = {(c.first, c.second) for c in neighbour_conflicts(layouts, plan.shuffled)}
    radices = 1
    for n in plan.shuffled:
        radices *= min(n, 4)
    for a in seats:
        for b in seats:
            if a.key >= b.key or not any(neighbours(a, b)):
                continue
            la, lb = layouts[a.key], layouts[b.key]
            fa, fb = parse_layout(la)[0], parse_layout(lb)[0]
            if (a.key, b.key) in named:
                assert fa == fb and (n_forms < 4 or not shuffle) and radices < 4
                continue
            if fa != fb:
                continue
            ticket_a, ticket_b = f"T{salt}-{a.key}", f"T{salt}-{b.key}"
            va = plan.build(SECRET, "S1", ticket_a, la)
            vb = plan.build(SECRET, "S1", ticket_b, lb)
            shuffled_ids = [
                [vi.item_id for vi in vs.items]
                for vs, s in zip(va.sections, paper.sections, strict=True)
                if s.shuffle and len(s.items) >= 2
            ]
            other_ids = [
                [vi.item_id for vi in vs.items]
                for vs, s in zip(vb.sections, paper.sections, strict=True)
                if s.shuffle and len(s.items) >= 2
            ]
            assert shuffled_ids != other_ids, (la, lb)
            for mine, theirs in zip(shuffled_ids, other_ids, strict=True):
                if len(mine) >= 4:  # a section with enough items: never the same order
                    assert mine != theirs, (la, lb)
