"""Forms to seats: neighbours sit different forms, by a rule anyone can re-run."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack.forms import Seat, SeatPlanInvalid, assign_forms

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
