"""Forms and orders to seats (art. 20): neighbours never see the same screen.

Every seat gets a *layout*: the paper's form (where it has parallel forms) and the seat's
*order class*. Both are fixed formulas of the seat's position, so anyone can re-run them and
get the same plan (art. 21(1)), whatever order the seats are listed in:

    form index  = (column + step * row) mod F      step = 1 for F <= 3, 2 for F >= 4
    order class = 2 * (row mod 2) + (column mod 2)  (0..3)

- left/right and front/back neighbours sit different forms whenever F >= 2, diagonal
  neighbours too when F >= 4 (with 2 or 3 forms that is impossible on a full grid: a 2x2
  block of seats would need 4 different forms);
- any two neighbours, diagonals included, have different order classes. A candidate's order
  in the paper's shuffled sections depends on the class (`paperpack.variants`): in each of
  them the first item shown has an authored position equal to the class's digit modulo the
  section's radix. In a shuffled section of 4 items or more the digit is the class itself,
  so neighbours never see the same order there; the smaller shuffled sections write the
  class in mixed radix (min(items, what is left of 4)) together, so they tell all four
  classes apart when their radices multiply to 4 or more. Where the paper leaves two
  neighbours on the same form with the same order everywhere, `neighbour_conflicts` names
  them and says why.

A layout is written `FORM#CLASS` (`A#2`), or `#CLASS` for a paper without forms; it is what
the venue records as the candidate's form and what the variant is built from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from paperpack.errors import PaperpackError

SeatKey = tuple[str, int, int]  # (room, row, column)


class SeatPlanInvalid(PaperpackError):
    """Forms cannot be assigned to these seats; the message names the problem."""


class SeatLike(Protocol):
    """Anything with a room, a row and a column (the venue's seat records qualify)."""

    @property
    def room(self) -> str: ...

    @property
    def row(self) -> int: ...

    @property
    def column(self) -> int: ...


@dataclass(frozen=True)
class Seat:
    """A seat: room name, row number (front = 1) and column number (left = 1)."""

    room: str
    row: int
    column: int

    @property
    def key(self) -> SeatKey:
        return (self.room, self.row, self.column)


def seat_key(seat: SeatLike) -> SeatKey:
    """The key `assign_forms` uses for `seat`: (room, row, column)."""
    return (seat.room, seat.row, seat.column)


def form_index(row: int, column: int, n_forms: int) -> int:
    """The index of the form the seat at (`row`, `column`) sits, among `n_forms` forms."""
    step = 1 if n_forms <= 3 else 2
    return (column + step * row) % n_forms


ORDER_CLASSES = 4


def order_class(row: int, column: int) -> int:
    """The seat's order class (0..3): any two neighbours, diagonals included, differ."""
    return 2 * (row % 2) + (column % 2)


def class_radices(shuffled: Sequence[int]) -> tuple[int, ...]:
    """The radix of each shuffled section (by its item count) in which classes are written: 4
    for a section of 4 items or more (each class its own first item there), and for smaller
    sections the mixed radix min(items, what is left of 4) over them together."""
    radices, left = [], ORDER_CLASSES
    for items in shuffled:
        if items >= ORDER_CLASSES:
            radices.append(ORDER_CLASSES)
            continue
        radix = max(1, min(items, left))
        radices.append(radix)
        left = -(-left // radix)
    return tuple(radices)


def class_digits(klass: int, radices: Sequence[int]) -> tuple[int, ...]:
    """The class's digit in each shuffled section: the class itself where the radix is 4,
    else its next digit in the mixed radix of the smaller sections."""
    digits, rest = [], klass
    for radix in radices:
        if radix == ORDER_CLASSES:
            digits.append(klass)
            continue
        digits.append(rest % radix)
        rest //= radix
    return tuple(digits)


def layout_name(form: str | None, klass: int | None) -> str | None:
    """`A#2`, `#2`, `A`, or None (no form, no seat)."""
    if klass is None:
        return form
    return f"{form or ''}#{klass}"


def parse_layout(layout: str | None) -> tuple[str | None, int | None]:
    """(form, order class) of a layout; raises SeatPlanInvalid for a malformed one."""
    if layout is None:
        return None, None
    form, mark, klass = layout.partition("#")
    if not mark:
        return layout, None
    if klass not in {str(k) for k in range(ORDER_CLASSES)}:
        raise SeatPlanInvalid(f"layout {layout!r} names no order class 0-3 after '#'")
    return form or None, int(klass)


def seat_layouts(seats: Sequence[SeatLike], forms: Sequence[str]) -> dict[SeatKey, str | None]:
    """Each seat's layout: its form (if the paper has forms) and its order class."""
    by_form = assign_forms(seats, forms) if forms else {}
    return {
        seat_key(s): layout_name(by_form.get(seat_key(s)), order_class(s.row, s.column))
        for s in seats
    }


@dataclass(frozen=True)
class Conflict:
    """Two neighbours whose screens may be the same, and why it could not be avoided."""

    first: SeatKey
    second: SeatKey
    reason: str


def same_screen_reason(a: str | None, b: str | None, shuffled: Sequence[int]) -> str | None:
    """Why layouts `a` and `b` may show the same items in the same order, or None if not."""
    (form_a, class_a), (form_b, class_b) = parse_layout(a), parse_layout(b)
    if form_a != form_b:
        return None
    radices = class_radices(shuffled)
    if class_a is None or class_b is None:
        return "one of them has no order class (no seat plan)"
    if class_digits(class_a, radices) != class_digits(class_b, radices):
        return None
    on = f"the same form {form_a}" if form_a else "the paper's only form"
    if not shuffled:
        return f"{on}, and the paper has no section whose items may be shuffled"
    total = 1
    for radix in radices:
        total *= radix
    return (
        f"{on}, and the shuffled sections ({', '.join(str(n) for n in shuffled)} items) tell "
        f"only {total} of the 4 order classes apart"
    )


def neighbour_conflicts(
    layouts: dict[SeatKey, str | None], shuffled: Sequence[int]
) -> list[Conflict]:
    """Neighbouring occupied seats (diagonals included) that may see the same screen."""
    out = []
    for key in sorted(layouts):
        room, row, column = key
        for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
            other = (room, row + dr, column + dc)
            if other in layouts:
                reason = same_screen_reason(layouts[key], layouts[other], shuffled)
                if reason is not None:
                    out.append(Conflict(key, other, reason))
    return out


def assign_forms(seats: Sequence[SeatLike], forms: Sequence[str]) -> dict[SeatKey, str]:
    """Each seat's form, so that neighbours in a row (and front/back) sit different forms."""
    if not forms:
        raise SeatPlanInvalid("no forms to assign: give the paper's forms, e.g. ('A', 'B')")
    if len(set(forms)) != len(forms):
        raise SeatPlanInvalid(f"forms {list(forms)} repeat a name: give each form once")
    plan: dict[SeatKey, str] = {}
    for seat in seats:
        key = seat_key(seat)
        if key in plan:
            raise SeatPlanInvalid(
                f"seat room {key[0]!r} row {key[1]} column {key[2]} is listed twice: "
                "fix the seat plan"
            )
        plan[key] = forms[form_index(seat.row, seat.column, len(forms))]
    return plan
