"""Forms to seats (art. 20): where a paper has parallel forms, neighbours sit different forms.

The rule is a fixed formula of the seat's position, so anyone can re-run it and get the same
plan (art. 21(1)), and it does not depend on the order seats are listed in:

    form index = (column + step * row) mod F      step = 1 for F <= 3, 2 for F >= 4

- left/right neighbours (same room and row, adjacent columns) differ whenever F >= 2;
- front/back neighbours (same room and column, adjacent rows) differ whenever F >= 2;
- diagonal neighbours differ too when F >= 4 (with 2 or 3 forms that is impossible on a full
  grid: a 2x2 block of seats would need 4 different forms).
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
