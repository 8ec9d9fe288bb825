"""The variant proof (art. 24): every candidate's variant scores correctly under the key.

For each candidate (ticket) `prove_paper`:

1. builds the candidate's variant from the paper, the variant secret and the ticket;
2. answers it with the key in display order, as the browser would send it (tokens), maps it
   back with `to_canonical` and scores it with the key table: every objective item must earn
   its full points (essays are left out: people mark them); fill-in answers are typed the
   way each blank's normalisation forgives (full-width, other case, padded), so the
   normalisation is proved too;
3. answers it with planted wrong answers and checks each item earns what the rules say:
   the first wrong option in display order (0), the first key option alone of a
   multiple-choice item (its partial points, or 0 when all-or-nothing), the first blank of a
   fill-in item wrong and the others right (points * (n - 1) / n), an essay (0, pending);
4. checks no two candidates share an item token.

The first few variants are also rendered and checked for leaks (no canonical id, no key).
The first counter-example raises `ProofFailed`; success gives a `ProofReport` with the
digest of all variants.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paperpack.errors import PaperpackError
from paperpack.model import CHOICE_TYPES, Item, Normalisation, Paper
from paperpack.scoring import KeyTable, compile_key, normalise_fill, score_paper
from paperpack.variants import (
    Variant,
    VariantItem,
    VariantPlan,
    combine_digests,
    paused_gc,
    render_variant,
    to_canonical,
)

RENDER_CHECKS = 10  # candidates whose rendered paper is checked for leaks
PLANTED_WRONG = "\u2717 planted wrong answer \u2717"
_SECRET_FIELDS = ("key", "accepted", "partial_points", "scoring", "item_id", "option_id")


_SlotCache = dict[tuple[str, tuple[int, ...]], tuple[int, ...]]


class ProofFailed(PaperpackError):
    """A variant did not score as the key says; the message is the first counter-example."""


@dataclass(frozen=True)
class ProofReport:
    """What `prove_paper` checked, for the summary the CLI prints."""

    paper_id: str
    candidates: int
    items_by_type: Mapping[str, int]
    objective_points: float  # full marks without essays
    full_marks: int  # candidates whose key answers earned every objective point
    planted_sheets: int  # candidates whose planted wrong answers scored as expected
    planted_items: int  # item answers checked in those sheets
    render_checks: int
    item_tokens: int  # distinct item tokens over all candidates
    digest: str  # variant_digest of all variants
    seconds: float


def _disguise(text: str, norm: Normalisation) -> str:
    """`text` typed differently in every way the blank's normalisation forgives."""
    typed = text
    if not norm.case_sensitive:
        typed = typed.swapcase()
    if norm.fullwidth_to_halfwidth:
        typed = "".join(chr(ord(c) + 0xFEE0) if 0x21 <= ord(c) <= 0x7E else c for c in typed)
    if norm.collapse_whitespace:
        typed = typed.replace(" ", " \t ")
    if norm.trim:
        typed = f"\u3000 {typed} \n" if norm.fullwidth_to_halfwidth else f"  {typed}\n"
    return typed if normalise_fill(typed, norm) == normalise_fill(text, norm) else text


class _Expectations:
    """The paper's key seen per item, and what the key and the planted answers must score."""

    def __init__(self, paper: Paper) -> None:
        self.paper = paper
        self.items = {i.item_id: i for i in paper.items()}
        self.key_index = {
            i.item_id: frozenset(n for n, o in enumerate(i.options) if o.option_id in i.key)
            for i in paper.items()
            if i.type in CHOICE_TYPES
        }
        self.fill_right = {
            i.item_id: [b.accepted[0] if b.accepted else "" for b in i.blanks]
            for i in paper.items()
            if i.type == "fill_blank"
        }
        self.fill_disguised = {
            i.item_id: [
                _disguise(b.accepted[0], b.normalisation) if b.accepted else "" for b in i.blanks
            ]
            for i in paper.items()
            if i.type == "fill_blank"
        }
        self.full = {i.item_id: (0.0 if i.type == "essay" else i.points) for i in paper.items()}
        self.planted = {i.item_id: self._planted_score(i) for i in paper.items()}
        # The same in paper order, to compare with KeyTable.earned.
        self.item_ids = [i.item_id for i in paper.items()]
        self.full_list = [self.full[i] for i in self.item_ids]
        self.planted_list = [self.planted[i] for i in self.item_ids]
        self._key_slots: _SlotCache = {}
        self._planted_slots: _SlotCache = {}

    def _planted_score(self, item: Item) -> float:
        if item.type == "fill_blank":
            n = len(item.blanks)
            return item.points if n == 0 else item.points * (n - 1) / n
        if item.type not in CHOICE_TYPES:
            return 0.0
        key = self.key_index[item.item_id]
        if item.type == "multiple_choice" and len(key) >= 2:  # planted: a proper subset
            return item.partial_points if item.scoring == "partial" else 0.0
        if len(key) < len(item.options):  # planted: a wrong option
            return 0.0
        return item.points  # every option is in the key: nothing wrong can be planted

    def key_answers(self, variant: Variant) -> dict[str, Any]:
        """The key as the browser would send it (essays unanswered)."""
        out: dict[str, Any] = {}
        for vi in variant.items():
            if vi.type in CHOICE_TYPES:
                tokens = vi.option_tokens
                out[vi.token] = [tokens[j] for j in self._slots(vi, self._key_slots)]
            elif vi.type == "fill_blank":
                out[vi.token] = self.fill_disguised[vi.item_id]
        return out

    def planted_answers(self, variant: Variant) -> dict[str, Any]:
        """Planted wrong answers as the browser would send them."""
        out: dict[str, Any] = {}
        for vi in variant.items():
            if vi.type in CHOICE_TYPES:
                tokens = vi.option_tokens
                out[vi.token] = [tokens[j] for j in self._slots(vi, self._planted_slots)]
            elif vi.type == "fill_blank":
                right = self.fill_right[vi.item_id]
                out[vi.token] = [PLANTED_WRONG, *right[1:]] if right else []
            else:
                out[vi.token] = "planted essay text"
        return out

    def _slots(self, vi: VariantItem, which: _SlotCache) -> tuple[int, ...]:
        """Display slots to choose, remembered per item and option order (few orders recur)."""
        cached = which.get((vi.item_id, vi.option_order))
        if cached is None:
            key = self.key_index[vi.item_id]
            if which is self._key_slots:
                cached = tuple(j for j, q in enumerate(vi.option_order) if q in key)
            else:
                cached = self._planted_choice(vi, key)
            which[(vi.item_id, vi.option_order)] = cached
        return cached

    def _planted_choice(self, vi: VariantItem, key: frozenset[int]) -> tuple[int, ...]:
        slots = list(enumerate(vi.option_order))
        if vi.type == "multiple_choice" and len(key) >= 2:
            return (next(j for j, q in slots if q in key),)  # a proper subset of the key
        wrong = [j for j, q in slots if q not in key]
        return tuple(wrong[:1]) if wrong else tuple(j for j, q in slots if q in key)


def _first_difference(
    item_ids: Sequence[str], got: Sequence[float], want: Sequence[float]
) -> tuple[str, float, float]:
    for item_id, earned, expected in zip(item_ids, got, want, strict=True):
        if earned != expected:
            return item_id, earned, expected
    raise AssertionError("no difference between equal score lists")  # pragma: no cover


def _check_render(paper: Paper, variant: Variant) -> None:
    """The rendered paper holds this candidate's tokens only: no canonical id, no key."""
    rendered = render_variant(paper, variant)
    canonical = {s.section_id for s in paper.sections} | {i.item_id for i in paper.items()}
    seen: list[tuple[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                seen.append((name, value))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(rendered)
    for name, value in seen:
        if name in _SECRET_FIELDS:
            raise ProofFailed(f"ticket {variant.ticket}: the rendered paper has a {name!r} field")
        if name == "id" and value in canonical:
            raise ProofFailed(
                f"ticket {variant.ticket}: the rendered paper shows canonical id {value!r}"
            )
    shown = [item["id"] for section in rendered["sections"] for item in section["items"]]
    if shown != [vi.token for vi in variant.items()]:
        raise ProofFailed(
            f"ticket {variant.ticket}: the rendered paper's item order is not the variant's"
        )


def _check_candidate(expect: _Expectations, table: KeyTable, variant: Variant) -> int:
    """Key and planted answers of one candidate; returns the planted item answers checked."""
    earned = table.earned(to_canonical(variant, expect.key_answers(variant)))
    if earned != expect.full_list:
        item_id, got, want = _first_difference(expect.item_ids, earned, expect.full_list)
        raise ProofFailed(
            f"ticket {variant.ticket}: item {item_id} answered with the key in display order "
            f"scored {got:g} instead of {want:g}: the variant and the key disagree"
        )
    planted = expect.planted_answers(variant)
    earned = table.earned(to_canonical(variant, planted))
    if earned != expect.planted_list:
        item_id, got, want = _first_difference(expect.item_ids, earned, expect.planted_list)
        raise ProofFailed(
            f"ticket {variant.ticket}: item {item_id} with a planted wrong answer scored "
            f"{got:g} instead of {want:g}: the scoring rules and the variant disagree"
        )
    return len(planted)


def prove_paper(
    paper: Paper,
    tickets: Sequence[str],
    session_id: str,
    variant_secret: bytes,
    forms: Mapping[str, str] | None = None,
) -> ProofReport:
    """Prove every candidate's variant against the key; raise ProofFailed on the first failure."""
    started = time.perf_counter()
    if not tickets:
        raise ProofFailed("no candidates: give --candidates N or a roster with tickets")
    if len(set(tickets)) != len(tickets):
        dup = next(t for t, n in Counter(tickets).items() if n > 1)
        raise ProofFailed(f"ticket {dup!r} appears twice in the roster: fix the roster")
    forms = forms or {}
    plan = VariantPlan(paper)
    table = compile_key(paper)
    expect = _Expectations(paper)
    owner: dict[str, str] = {}
    digests: list[tuple[str, str]] = []  # variants are not kept: 3,000 of them are large
    planted_items = 0
    with paused_gc():
        for n, ticket in enumerate(tickets):
            variant = plan.build(variant_secret, session_id, ticket, forms.get(ticket))
            for vi in variant.items():
                other = owner.setdefault(vi.token, ticket)
                if other != ticket:
                    raise ProofFailed(f"tickets {other} and {ticket} share an item token")
            planted_items += _check_candidate(expect, table, variant)
            if n < RENDER_CHECKS:
                _check_render(paper, variant)
                _check_reference(paper, table, expect, variant)
            digests.append((ticket, variant.digest))
    again = plan.build(variant_secret, session_id, tickets[0], forms.get(tickets[0]))
    if again.digest != digests[0][1]:
        raise ProofFailed(f"ticket {tickets[0]}: building the variant twice gave two variants")
    return ProofReport(
        paper_id=paper.paper_id,
        candidates=len(tickets),
        items_by_type=dict(Counter(i.type for i in paper.items())),
        objective_points=table.objective_points,
        full_marks=len(tickets),
        planted_sheets=len(tickets),
        planted_items=planted_items,
        render_checks=min(RENDER_CHECKS, len(tickets)),
        item_tokens=len(owner),
        digest=combine_digests(digests),
        seconds=time.perf_counter() - started,
    )


def _check_reference(
    paper: Paper, table: KeyTable, expect: _Expectations, variant: Variant
) -> None:
    """The readable reference scorer agrees with the key table on this candidate."""
    for answers in (expect.key_answers(variant), expect.planted_answers(variant)):
        canonical = to_canonical(variant, answers)
        if score_paper(paper, canonical) != table.score(canonical):
            raise ProofFailed(
                f"ticket {variant.ticket}: the key table and score_paper disagree: report this bug"
            )
