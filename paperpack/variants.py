"""Per-candidate variants (art. 20, 24): item and option order, opaque tokens, and the inverse.

A candidate's variant is a pure function of the paper's structure (never its keys, so the
venue can build it from a paper without keys), the session's variant secret, the session id,
the candidate's ticket and, for papers with parallel forms, the candidate's form:

    seed   = HMAC-SHA256(variant_secret, "cbt-variant-seed-v1" | len | session_id | len | ticket)
    stream = SHAKE-256("cbt-variant-stream-v1" | seed | form), as many bytes as the plan needs
             (form: 0x00 for none, else 0x01 | len | form; len = 4-byte big-endian UTF-8 length)

The seed is the HMAC the architecture names; the stream expands it into every decision of the
variant with one call of a keyed extendable-output function (the construction KMAC uses).
One HMAC per item and option would cost seconds for 3,000 candidates; the stream costs tens
of microseconds per candidate. Positions in the stream are fixed by the paper's structure:

- item order in a section with `shuffle`: sort by 64-bit keys from the stream;
- option order in a choice item with `shuffle_options`: the movable (non-`fixed`) options are
  permuted among their own slots, fixed options keep their index; the permutation is picked
  from the table of all permutations by a 64-bit number mod k! (k <= 5; bias below 2^-56),
  or for more options by sorting 64-bit keys;
- tokens: 8 stream bytes each, as 16 lowercase hex characters, for every item, option slot
  and blank. They are unlinkable between candidates because every candidate's seed differs.

Forms (art. 20) are real alternatives, not labels: form k of F arranges the paper itself
before any candidate's shuffle. In every section (shuffled or not) the items are rotated by
k * n // F places, and in every item whose options may be shuffled the movable options are
rotated by k * m // F slots among their own slots; the first form keeps the authored order.
So with no shuffling at all, forms A and B differ at every position of a section with two or
more items; a paper whose forms would come out the same is refused (the packer refuses it).
`form` may also carry the seat's order class (`A#2`, `#2`; `paperpack.forms`): in each
shuffled section the candidate's order is then rotated so that the first item shown has an
authored position equal to the class's digit modulo the section's radix, which keeps
neighbours' orders apart (in every shuffled section of 4 items or more). The
stream depends on the paper form only (a move to another seat keeps the tokens); the digest
binds the whole layout.

A variant's `digest` is SHA-256 over the plan's structure fingerprint, ticket, form, every
item's position and option order in display order, and every token; `variant_digest` hashes
all candidates' digests (sorted by ticket) into one value the venue records and `prove` prints.

`to_canonical` maps a browser's answer (item token -> option tokens / strings / text) back to
canonical ids and checks its shape; `to_display` is the forward map. `render_variant` is what
the candidate's paper endpoint returns: never keys, canonical ids or scoring details.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import itertools
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, cached_property
from operator import getitem, itemgetter, mod
from typing import Any, NamedTuple

from paperpack.canonical import canonical_hash
from paperpack.errors import PaperpackError
from paperpack.forms import SeatPlanInvalid, class_digits, class_radices, parse_layout
from paperpack.model import CHOICE_TYPES, Item, Paper, Section
from paperpack.scoring import Answer

SEED_LABEL = b"cbt-variant-seed-v1"
STREAM_LABEL = b"cbt-variant-stream-v1"
DIGEST_LABEL = "cbt-variant-v1"
TOKEN_BYTES = 8  # 64 bits -> 16 lowercase hex characters
MIN_SECRET_BYTES = 16
_TABLE_MAX = 5  # up to 5! = 120 arrangements are tabulated per item; more options sort keys
_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class VariantError(PaperpackError):
    """A variant cannot be built from these inputs (secret, form); the message says why."""


class UnknownToken(PaperpackError):
    """A response names a token this candidate's paper does not have, or has the wrong shape.

    `role` is "item", "option", "blank" or "answer"; the message never names a canonical id
    (nor the token itself: tokens stay out of logs).
    """

    def __init__(self, role: str, message: str) -> None:
        self.role = role
        super().__init__(message)


def _length_prefixed(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def variant_seed(variant_secret: bytes, session_id: str, ticket: str) -> bytes:
    """HMAC-SHA256(secret, session | ticket), each part length-prefixed so no two inputs collide."""
    if len(variant_secret) < MIN_SECRET_BYTES:
        raise VariantError(
            f"variant secret has {len(variant_secret)} bytes; "
            f"use at least {MIN_SECRET_BYTES} random bytes"
        )
    message = SEED_LABEL + _length_prefixed(session_id) + _length_prefixed(ticket)
    return hmac.digest(variant_secret, message, "sha256")


# --- what a variant is --------------------------------------------------------------------


class VariantItem(NamedTuple):
    """One item as one candidate sees it. Options are in display order."""

    token: str  # the item's opaque id for this candidate
    item_id: str  # canonical id (central side and venue only, never sent to the browser)
    type: str
    option_tokens: tuple[str, ...]  # display order
    option_ids: tuple[str, ...]  # canonical option ids, aligned with option_tokens
    option_order: tuple[int, ...]  # canonical index of the option in each display slot
    blank_tokens: tuple[str, ...]  # blanks keep their authored order
    canonical_option_ids: tuple[str, ...]  # the item's option ids in paper order


class VariantSection(NamedTuple):
    """One section (sections keep the paper's order) with its items in display order."""

    section_id: str
    items: tuple[VariantItem, ...]


@dataclass(frozen=True)
class Variant:
    """One candidate's variant; `digest` binds every order and token of it."""

    ticket: str
    form: str | None
    digest: str
    # Not in repr: tokens stay out of logs and tracebacks.
    sections: tuple[VariantSection, ...] = field(repr=False)

    @cached_property
    def items_by_token(self) -> dict[str, VariantItem]:
        """Inverse map: item token -> item."""
        return {vi.token: vi for s in self.sections for vi in s.items}

    @cached_property
    def items_by_id(self) -> dict[str, VariantItem]:
        """Forward map: canonical item id -> item."""
        return {vi.item_id: vi for s in self.sections for vi in s.items}

    def items(self) -> list[VariantItem]:
        """All items in display order."""
        return [vi for s in self.sections for vi in s.items]


# --- the plan: the paper's structure, compiled once for many candidates ------------------


class _Arrangement(NamedTuple):
    order: tuple[int, ...]  # canonical option index per display slot
    ids: tuple[str, ...]  # option ids per display slot
    trace: bytes  # item position + order, as the digest records them


class _ItemPlan(NamedTuple):
    item_id: str
    type: str
    option_ids: tuple[str, ...]  # paper order
    slots: tuple[int, ...]  # canonical indices of the movable options
    perm_at: int  # index in the stream's numbers of the option permutation, -1 = fixed order
    table: tuple[_Arrangement, ...]  # every arrangement, indexed by permutation number
    fixed: _Arrangement  # the arrangement when options keep their order
    token_index: int  # the item token; its option slot tokens and blank tokens follow
    blanks: int
    position: int  # the item's authored position in its section
    base: tuple[int, ...]  # the form's option order (canonical index per slot) before shuffling


class _SectionPlan(NamedTuple):
    section_id: str
    items: tuple[_ItemPlan, ...]  # in the form's order (the authored order for the first form)
    order_at: int  # index in the stream's numbers of the item sort keys, -1 = authored order


@cache
def _permutations(k: int) -> tuple[tuple[int, ...], ...]:
    return tuple(itertools.permutations(range(k)))


def _display_order(
    base: tuple[int, ...], slots: tuple[int, ...], perm: Sequence[int]
) -> tuple[int, ...]:
    """Canonical option index per display slot: the movable options of the form's order
    `base` permuted among their slots (fixed options keep theirs)."""
    if len(slots) == len(base):
        return tuple([base[p] for p in perm])
    order = list(base)
    for j, p in enumerate(perm):
        order[slots[j]] = base[slots[p]]
    return tuple(order)


def _arrangement(
    option_ids: tuple[str, ...], order: tuple[int, ...], position: int
) -> _Arrangement:
    trace = position.to_bytes(2, "big") + bytes(order)
    return _Arrangement(order, tuple(option_ids[q] for q in order), trace)


def _option_table(
    option_ids: tuple[str, ...], slots: tuple[int, ...], position: int, base: tuple[int, ...]
) -> tuple[_Arrangement, ...]:
    """Every arrangement an item can take, indexed by permutation number (small k only)."""
    if len(slots) > _TABLE_MAX:
        return ()
    return tuple(
        _arrangement(option_ids, _display_order(base, slots, perm), position)
        for perm in _permutations(len(slots))
    )


def _rotated(count: int, index: int, n_forms: int) -> int:
    """How far form `index` of `n_forms` rotates `count` things (0 for the first form)."""
    return index * count // n_forms


def _form_item(ip: _ItemPlan, index: int, n_forms: int) -> _ItemPlan:
    """The item as form `index` arranges it: its movable options rotated among their slots
    (items whose options are not shuffled keep their order, as the author set it)."""
    shift = _rotated(len(ip.slots), index, n_forms) if ip.perm_at >= 0 else 0
    if not shift:
        return ip
    base = list(range(len(ip.option_ids)))
    for j, slot in enumerate(ip.slots):
        base[slot] = ip.slots[(j + shift) % len(ip.slots)]
    order = tuple(base)
    return ip._replace(
        base=order,
        fixed=_arrangement(ip.option_ids, order, ip.position),
        table=_option_table(ip.option_ids, ip.slots, ip.position, order),
    )


def _form_section(sp: _SectionPlan, index: int, n_forms: int) -> _SectionPlan:
    """The section as form `index` arranges it: its items rotated (shuffled or not), each
    item's options arranged by the form."""
    items = tuple(_form_item(ip, index, n_forms) for ip in sp.items)
    shift = _rotated(len(items), index, n_forms)
    return sp._replace(items=items[shift:] + items[:shift])


def _signature(sections: Sequence[_SectionPlan]) -> tuple[Any, ...]:
    return tuple((ip.item_id, ip.base) for sp in sections for ip in sp.items)


def _first_at(sp: _SectionPlan, order: list[int], digit: int, radix: int) -> list[int]:
    """`order` (indices into the section's items) rotated so that the first item's authored
    position is `digit` modulo `radix`: the seat's order class (`paperpack.forms`)."""
    if radix < 2:
        return order
    items = sp.items
    for start, i in enumerate(order):
        if items[i].position % radix == digit:
            return order[start:] + order[:start]
    return order


def _structure(paper: Paper) -> list[Any]:
    return [
        paper.paper_id,
        [
            [
                s.section_id,
                s.shuffle,
                [
                    [
                        i.item_id,
                        i.type,
                        i.shuffle_options,
                        [[o.option_id, o.fixed] for o in i.options],
                        len(i.blanks),
                    ]
                    for i in s.items
                ],
            ]
            for s in paper.sections
        ],
    ]


class VariantPlan:
    """A paper's structure compiled for building many candidates' variants quickly.

    Keys play no part: a paper with keys and the same paper without them give one plan.
    """

    def __init__(self, paper: Paper) -> None:
        self.paper_id = paper.paper_id
        self.forms = paper.forms
        # Binds the digest to the structure: ids, types, shuffle and fixed flags, blank counts.
        self.fingerprint = canonical_hash(_structure(paper))
        self._offset = 0
        self._tokens = 0
        authored = tuple(self._plan_section(s) for s in paper.sections)
        self._token_offset = self._offset
        self._numbers = struct.Struct(f">{self._offset // 8}Q")
        self.stream_bytes = self._offset + TOKEN_BYTES * self._tokens
        # Per form: its sections (the first form keeps the authored order) and their traces.
        self._layouts: dict[str | None, tuple[tuple[_SectionPlan, ...], tuple[Any, ...]]] = {}
        n_forms = max(1, len(self.forms))
        for index, form in enumerate(self.forms or (None,)):
            sections = tuple(_form_section(sp, index, n_forms) for sp in authored)
            self._layouts[form] = (sections, tuple(_section_traces(sp) for sp in sections))
        self._layouts[None] = self._layouts[self.forms[0] if self.forms else None]
        self._check_forms_differ()
        # The order classes of seats (paperpack.forms) are written over the shuffled sections.
        self.shuffled = tuple(len(sp.items) for sp in authored if sp.order_at >= 0)
        self._radices = class_radices(self.shuffled)

    def _check_forms_differ(self) -> None:
        seen: dict[tuple[Any, ...], str] = {}
        for form in self.forms:
            signature = _signature(self._layouts[form][0])
            if signature in seen:
                raise VariantError(
                    f"paper {self.paper_id}'s forms {seen[signature]} and {form} come out the "
                    "same: it has no section of 2 or more items and no item with shuffled "
                    "options to arrange them differently; give it fewer forms, or none"
                )
            seen[signature] = form

    def _digits(self, klass: int | None) -> list[tuple[int, int]]:
        """Per section (paper order), (digit, radix) of the seat's order class; (0, 1) where
        no rule applies (a section not shuffled, or no seat)."""
        if klass is None:
            return [(0, 1)] * len(self._layouts[None][0])
        pairs = iter(zip(class_digits(klass, self._radices), self._radices, strict=True))
        return [next(pairs) if sp.order_at >= 0 else (0, 1) for sp in self._layouts[None][0]]

    def _plan_section(self, section: Section) -> _SectionPlan:
        items = tuple(self._plan_item(item, n) for n, item in enumerate(section.items))
        order_at = -1
        if section.shuffle and len(items) >= 2:
            order_at = self._offset // 8
            self._offset += 8 * len(items)
        return _SectionPlan(section.section_id, items, order_at)

    def _plan_item(self, item: Item, position: int) -> _ItemPlan:
        option_ids = tuple(o.option_id for o in item.options)
        if len(option_ids) > 255 or position > 0xFFFF:
            raise VariantError(f"item {item.item_id}: too many options or items for a variant")
        slots = tuple(n for n, o in enumerate(item.options) if not o.fixed)
        perm_at = -1
        table: tuple[_Arrangement, ...] = ()
        if item.type in CHOICE_TYPES and item.shuffle_options and len(slots) >= 2:
            perm_at = self._offset // 8
            self._offset += 8 if len(slots) <= _TABLE_MAX else 8 * len(slots)
            table = _option_table(option_ids, slots, position, tuple(range(len(option_ids))))
        blanks = len(item.blanks) if item.type == "fill_blank" else 0
        token_index = self._tokens
        self._tokens += 1 + len(option_ids) + blanks
        return _ItemPlan(
            item.item_id,
            item.type,
            option_ids,
            slots,
            perm_at,
            table,
            _arrangement(option_ids, tuple(range(len(option_ids))), position),
            token_index,
            blanks,
            position,
            tuple(range(len(option_ids))),
        )

    def _layout(self, form: str | None) -> tuple[str | None, int | None]:
        """The paper form and the seat's order class of a layout (`A`, `A#2`, `#2`)."""
        try:
            paper_form, klass = parse_layout(form)
        except SeatPlanInvalid as exc:
            raise VariantError(str(exc)) from None
        if paper_form is not None and paper_form not in self.forms:
            known = ", ".join(self.forms) or "none"
            raise VariantError(
                f"form {paper_form!r} is not one of paper {self.paper_id}'s forms ({known}): "
                "redraw the seat plan before the unlock (cbt venue seats --redraw)"
            )
        return paper_form, klass

    def _stream(
        self, variant_secret: bytes, session_id: str, ticket: str, form: str | None
    ) -> tuple[bytes, tuple[int, ...], bytes]:
        """The candidate's stream, its 64-bit numbers before the tokens, and the layout as
        the digest encodes it. The stream depends on the paper form only, so a move to a seat
        of another order class keeps the candidate's tokens."""
        paper_form = self._layout(form)[0]
        seed = variant_seed(variant_secret, session_id, ticket)
        stream_form = b"\x00" if paper_form is None else b"\x01" + _length_prefixed(paper_form)
        form_bytes = b"\x00" if form is None else b"\x01" + _length_prefixed(form)
        stream = hashlib.shake_256(STREAM_LABEL + seed + stream_form).digest(self.stream_bytes)
        # Every decision before the tokens is a big-endian 64-bit number: one C call reads all.
        return stream, self._numbers.unpack_from(stream), form_bytes

    def _digest(self, ticket: str, form_bytes: bytes, orders: bytearray, text: str) -> str:
        return hashlib.sha256(
            DIGEST_LABEL.encode()
            + self.fingerprint.encode()
            + _length_prefixed(ticket)
            + form_bytes
            + bytes(orders)
            + text.encode("ascii")
        ).hexdigest()

    def build(
        self, variant_secret: bytes, session_id: str, ticket: str, form: str | None = None
    ) -> Variant:
        """The variant of candidate `ticket` in session `session_id` (and `form`, if any)."""
        stream, numbers, form_bytes = self._stream(variant_secret, session_id, ticket, form)
        text = stream[self._token_offset :].hex(" ", TOKEN_BYTES)
        tokens = tuple(text.split(" "))
        if len(set(tokens)) != len(tokens):
            raise VariantError(
                f"two tokens of ticket {ticket!r} coincide (a 2^-50 event); "
                "draw a new variant secret for the session"
            )
        orders = bytearray()
        paper_form, klass = self._layout(form)
        digits = self._digits(klass)
        sections = tuple(
            VariantSection(
                sp.section_id,
                _build_section(sp, numbers, tokens, orders, *digits[n]),
            )
            for n, sp in enumerate(self._layouts[paper_form][0])
        )
        return Variant(ticket, form, self._digest(ticket, form_bytes, orders, text), sections)

    def digest(
        self, variant_secret: bytes, session_id: str, ticket: str, form: str | None = None
    ) -> str:
        """The digest `build` gives, without building the variant (a few times faster).

        For checking a recorded digest where the variant itself is not needed.
        """
        stream, numbers, form_bytes = self._stream(variant_secret, session_id, ticket, form)
        orders = bytearray()
        paper_form, klass = self._layout(form)
        digits = self._digits(klass)
        sections, all_traces = self._layouts[paper_form]
        for n, (sp, traces) in enumerate(zip(sections, all_traces, strict=True)):
            found = traces.pick(numbers) if traces is not None else _slow_traces(sp, numbers)
            if sp.order_at >= 0:
                keys = numbers[sp.order_at : sp.order_at + len(found)]
                order = sorted(range(len(found)), key=keys.__getitem__)
                order = _first_at(sp, order, *digits[n])
                found = [found[i] for i in order]
            orders += b"".join(found)
        text = stream[self._token_offset :].hex(" ", TOKEN_BYTES)
        return self._digest(ticket, form_bytes, orders, text)


class _SectionTraces:
    """A section's arrangement traces laid out for `VariantPlan.digest`'s hot loop.

    Per item (authored order) the trace of every arrangement it can take and where its
    permutation number sits in the stream; picking all of them is three C-level maps. An
    item with fixed options has one trace and reads any number (n % 1 == 0).
    """

    def __init__(self, sp: _SectionPlan) -> None:
        self.tables = tuple(
            tuple(a.trace for a in ip.table) if ip.perm_at >= 0 else (ip.fixed.trace,)
            for ip in sp.items
        )
        self.moduli = tuple(len(t) for t in self.tables)
        at = [max(ip.perm_at, 0) for ip in sp.items]
        self.numbers_at = itemgetter(*at) if len(at) > 1 else lambda ns: (ns[at[0]],)
        self.constant = all(ip.perm_at < 0 for ip in sp.items)

    def pick(self, numbers: tuple[int, ...]) -> list[bytes]:
        if self.constant:
            return [t[0] for t in self.tables]
        return list(map(getitem, self.tables, map(mod, self.numbers_at(numbers), self.moduli)))


def _section_traces(sp: _SectionPlan) -> _SectionTraces | None:
    """The section's traces for `digest`; None when an item is too large for a table."""
    if not sp.items or any(ip.perm_at >= 0 and not ip.table for ip in sp.items):
        return None
    return _SectionTraces(sp)


def _slow_traces(sp: _SectionPlan, numbers: tuple[int, ...]) -> list[bytes]:
    return [_arrange(ip, numbers).trace for ip in sp.items]


def _display_items(
    sp: _SectionPlan, numbers: tuple[int, ...], digit: int = 0, radix: int = 1
) -> tuple[_ItemPlan, ...]:
    """The section's items in this candidate's display order."""
    if sp.order_at < 0:
        return sp.items
    keys = numbers[sp.order_at : sp.order_at + len(sp.items)]
    order = _first_at(sp, sorted(range(len(sp.items)), key=keys.__getitem__), digit, radix)
    return tuple([sp.items[i] for i in order])


def _arrange(ip: _ItemPlan, numbers: tuple[int, ...]) -> _Arrangement:
    """The item's option arrangement for this candidate."""
    if ip.perm_at < 0:
        return ip.fixed
    if ip.table:
        return ip.table[numbers[ip.perm_at] % len(ip.table)]
    keys = numbers[ip.perm_at : ip.perm_at + len(ip.slots)]
    perm = sorted(range(len(ip.slots)), key=keys.__getitem__)
    order = _display_order(ip.base, ip.slots, perm)
    return _arrangement(ip.option_ids, order, ip.position)


def _build_section(
    sp: _SectionPlan,
    numbers: tuple[int, ...],
    tokens: tuple[str, ...],
    orders: bytearray,
    digit: int,
    radix: int,
) -> tuple[VariantItem, ...]:
    out = []
    new = tuple.__new__  # VariantItem's own __new__ is a Python function; this is the hot loop
    for ip in _display_items(sp, numbers, digit, radix):
        item_id, kind, option_ids, _, perm_at, table, fixed, t, blanks, _, _ = ip
        if perm_at < 0:
            arrangement = fixed
        elif table:  # the usual case, inline
            arrangement = table[numbers[perm_at] % len(table)]
        else:
            arrangement = _arrange(ip, numbers)
        order, ids, trace = arrangement
        orders += trace
        first = t + 1 + len(option_ids)
        out.append(
            new(
                VariantItem,
                (
                    tokens[t],
                    item_id,
                    kind,
                    tokens[t + 1 : first],
                    ids,
                    order,
                    tokens[first : first + blanks] if blanks else (),
                    option_ids,
                ),
            )
        )
    return tuple(out)


def build_variant(
    paper: Paper, variant_secret: bytes, session_id: str, ticket: str, form: str | None = None
) -> Variant:
    """One candidate's variant (compiles the paper each call: use `VariantPlan` for many)."""
    return VariantPlan(paper).build(variant_secret, session_id, ticket, form)


def build_variants(
    paper: Paper,
    variant_secret: bytes,
    session_id: str,
    tickets: Iterable[str],
    forms: Mapping[str, str] | None = None,
) -> dict[str, Variant]:
    """Every candidate's variant, by ticket; `forms` maps ticket -> form (papers with forms)."""
    plan = VariantPlan(paper)
    forms = forms or {}
    with paused_gc():
        return {t: plan.build(variant_secret, session_id, t, forms.get(t)) for t in tickets}


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many variants (or decoding and
    scoring many answers).

    Variants and decoded answers hold only tuples, lists, dicts and strings (no reference
    cycles), but making thousands of them triggers collections that walk every object
    already made; pausing roughly halves the time for 3,000 candidates. On resuming, what
    was made is moved straight to the oldest generation (`gc.freeze` then `gc.unfreeze`, no
    walk): otherwise the first young collection walks all of it at once, about a fifth of a
    second for a session's answers, for objects that are freed by reference counting anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def variant_digest(variants: Iterable[Variant]) -> str:
    """One hash over all variants (sorted by ticket), for `prove` and the venue's records."""
    return combine_digests((v.ticket, v.digest) for v in variants)


def combine_digests(pairs: Iterable[tuple[str, str]]) -> str:
    """`variant_digest` from (ticket, variant digest) pairs, without the variants themselves."""
    return canonical_hash([DIGEST_LABEL, sorted([ticket, digest] for ticket, digest in pairs)])


# --- answers: tokens <-> canonical ids ----------------------------------------------------


def _strings(value: Any, role: str, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise UnknownToken(role, f"{what} must be a list of strings")
    if not all(isinstance(v, str) for v in value):
        raise UnknownToken(role, f"{what} must be a list of strings")
    return list(value)


def _option_index(vi: VariantItem, token: Any) -> int:
    """The canonical index of the option `token` names in item `vi`."""
    try:
        return vi.option_order[vi.option_tokens.index(token)]
    except ValueError:
        raise UnknownToken(
            "option", "a choice answer names an option token that item does not have"
        ) from None


def _canonical_choice(vi: VariantItem, answer: Any) -> tuple[str, ...]:
    if type(answer) is not list and type(answer) is not tuple:
        raise UnknownToken("answer", "a choice answer must be a list of option tokens")
    ids = vi.canonical_option_ids
    if len(answer) == 1:  # the common case (single choice, true/false)
        return (ids[_option_index(vi, answer[0])],)
    chosen = sorted(_option_index(vi, token) for token in answer)
    if len(set(chosen)) != len(chosen):
        raise UnknownToken("option", "a choice answer names the same option token twice")
    return tuple([ids[q] for q in chosen])


def _canonical_answer(vi: VariantItem, answer: Any) -> Answer:
    if vi.type in CHOICE_TYPES:
        return _canonical_choice(vi, answer)
    if vi.type == "fill_blank":
        given = _strings(answer, "answer", "a fill-in answer")
        if len(given) != len(vi.blank_tokens):
            raise UnknownToken(
                "blank", f"a fill-in answer needs {len(vi.blank_tokens)} strings, one per blank"
            )
        return tuple(given)
    if not isinstance(answer, str):
        raise UnknownToken("answer", "an essay answer must be a string")
    return answer


def to_canonical(variant: Variant, responses: Mapping[str, Any]) -> dict[str, Answer]:
    """Map a browser's responses (item token -> answer) to canonical item id -> Answer.

    Choice answers become option ids in the paper's order; raises `UnknownToken` for an
    unknown item or option token or an answer of the wrong shape.
    """
    items = variant.items_by_token
    out: dict[str, Answer] = {}
    for token, answer in responses.items():
        vi = items.get(token) if type(token) is str else None
        if vi is None:
            raise UnknownToken("item", "the responses name an item token that is not in this paper")
        if type(answer) is list and len(answer) == 1 and vi.type in CHOICE_TYPES:
            # The usual answer (one option), inline: this runs for every item of every save.
            out[vi.item_id] = (vi.canonical_option_ids[_option_index(vi, answer[0])],)
        else:
            out[vi.item_id] = _canonical_answer(vi, answer)
    return out


def to_display(variant: Variant, canonical: Mapping[str, Answer]) -> dict[str, Any]:
    """The forward map: canonical answers as the browser would send them (tokens, display order)."""
    items = variant.items_by_id
    out: dict[str, Any] = {}
    for item_id, answer in canonical.items():
        vi = items.get(item_id)
        if vi is None:
            raise UnknownToken("item", "a canonical answer names an item that is not in this paper")
        if vi.type in CHOICE_TYPES:
            chosen = set(_strings(answer, "answer", "a choice answer"))
            out[vi.token] = [
                t for t, o in zip(vi.option_tokens, vi.option_ids, strict=True) if o in chosen
            ]
        elif vi.type == "fill_blank":
            out[vi.token] = _strings(answer, "answer", "a fill-in answer")
        else:
            out[vi.token] = answer
    return out


# --- what the candidate's browser receives -------------------------------------------------


def _label(n: int) -> str:
    return _LABELS[n] if n < len(_LABELS) else str(n + 1)


def _render_item(item: Item, vi: VariantItem, number: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": vi.token,
        "number": number,
        "type": item.type,
        "stem": item.stem,
        "points": item.points,
    }
    if item.type in CHOICE_TYPES:
        html = [item.options[q].html for q in vi.option_order]
        out["options"] = [
            {"id": tok, "label": _label(j), "html": h}
            for j, (tok, h) in enumerate(zip(vi.option_tokens, html, strict=True))
        ]
    elif item.type == "fill_blank":
        out["blanks"] = list(vi.blank_tokens)
    elif item.type == "essay":
        out["max_length"] = item.max_length
    return out


def render_variant(paper: Paper, variant: Variant) -> dict[str, Any]:
    """The candidate's paper as JSON: display order, tokens only; no keys or canonical ids."""
    sections = {s.section_id: s for s in paper.sections}
    items = {i.item_id: i for i in paper.items()}
    rendered = []
    number = 0
    for vs in variant.sections:
        section = sections[vs.section_id]
        out_items = []
        for vi in vs.items:
            number += 1
            out_items.append(_render_item(items[vi.item_id], vi, number))
        rendered.append(
            {"title": section.title, "instructions": section.instructions, "items": out_items}
        )
    return {
        "title": paper.title,
        "subject_code": paper.subject_code,
        "subject_name": paper.subject_name,
        "language": paper.language,
        "kind": paper.kind,
        "duration_minutes": paper.duration_minutes,
        "form": parse_layout(variant.form)[0],
        "sections": rendered,
    }


def key_in_display_order(paper: Paper, variant: Variant) -> dict[str, Any]:
    """The key answered as a candidate would send it (tokens, display order); essays left out.

    Needs a paper with keys (central side: prove and tests).
    """
    items = {i.item_id: i for i in paper.items()}
    out: dict[str, Any] = {}
    for vi in variant.items():
        item = items[vi.item_id]
        if item.type in CHOICE_TYPES:
            key = set(item.key)
            out[vi.token] = [
                t for t, o in zip(vi.option_tokens, vi.option_ids, strict=True) if o in key
            ]
        elif item.type == "fill_blank":
            out[vi.token] = [b.accepted[0] for b in item.blanks]
    return out
