"""Objective scoring rules: how one answer to one item earns points, and the fast key table.

Answers here are *canonical*: keyed by the author's item ids and naming option ids, as
`paperpack.variants.to_canonical` produces them from a candidate's opaque tokens.

Rules (art. 33-35):

- `single_choice`, `true_false`, `multiple_choice` with `all_or_nothing`: the chosen set of
  options must be exactly the key.
- `multiple_choice` with `partial`: exactly the key earns the points; a non-empty proper
  subset of the key with no wrong option earns `partial_points`; anything else earns 0.
- `fill_blank`: each blank whose normalised answer is among its normalised accepted answers
  earns `points / len(blanks)` (all blanks right earns exactly `points`).
- `essay`: 0 here; essays are marked by people later (they are listed as pending).

An answer of the wrong shape (a string for a choice item, a list for an essay) earns 0: the
shape is checked when the answer is saved (`to_canonical`), scoring never crashes on it.

`score_item` / `score_paper` are the readable reference; `compile_key(paper)` precompiles the
same rules into a `KeyTable` whose `total` is the central scorer's hot path (see
`loadtests/bench_scoring_core.py`). A property test holds the two equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from paperpack.model import CHOICE_TYPES, Blank, Item, Normalisation, Paper

# A canonical answer: option ids (choice), one string per blank (fill_blank), or text (essay).
Answer = tuple[str, ...] | str

# Full-width ASCII variants U+FF01..U+FF5E map to U+0021..U+007E; the ideographic space
# U+3000 maps to an ordinary space.
_HALFWIDTH: Final = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_WHITESPACE_RUN: Final = re.compile(r"\s+")


def normalise_fill(text: str, normalisation: Normalisation) -> str:
    """`text` as it is compared with a blank's accepted answers under `normalisation`."""
    if normalisation.fullwidth_to_halfwidth:
        text = text.translate(_HALFWIDTH)
    if normalisation.collapse_whitespace:
        text = _WHITESPACE_RUN.sub(" ", text)
    if normalisation.trim:
        text = text.strip()
    if not normalisation.case_sensitive:
        text = text.casefold()
    return text


def _is_list(answer: Any) -> bool:
    """Whether `answer` is a list-like answer (not a string): the shape of choice and fill-in."""
    kind = type(answer)
    if kind is tuple or kind is list:  # the usual shapes, without the slower ABC check
        return True
    return not isinstance(answer, str) and isinstance(answer, Sequence)


def _chosen(answer: Any) -> frozenset[str] | None:
    """The set of options an answer chooses, or None when it is not a list of option ids."""
    if not _is_list(answer):
        return None
    try:
        # Non-string ids can never equal a key option, so they need no check of their own.
        return frozenset(answer)
    except TypeError:  # an unhashable element: not a list of option ids
        return None


def _blank_correct(blank: Blank, given: Any) -> bool:
    if not isinstance(given, str):
        return False
    norm = blank.normalisation
    return normalise_fill(given, norm) in {normalise_fill(a, norm) for a in blank.accepted}


def _fill_score(points: float, correct: int, blanks: int) -> float:
    # All blanks right gives exactly `points` (points * n / n can be off by one ulp).
    if correct == blanks:
        return points
    return points * correct / blanks


def score_item(item: Item, answer: Any) -> float:
    """The points `answer` earns on `item`; None (unanswered) and malformed answers earn 0."""
    if answer is None or item.type == "essay":
        return 0.0
    if item.type in CHOICE_TYPES:
        chosen = _chosen(answer)
        key = frozenset(item.key)
        if chosen is None or not chosen:
            return 0.0
        if chosen == key:
            return item.points
        if item.type == "multiple_choice" and item.scoring == "partial" and chosen < key:
            return item.partial_points
        return 0.0
    # fill_blank
    if not _is_list(answer):
        return 0.0
    correct = sum(
        1
        for i, blank in enumerate(item.blanks)
        if i < len(answer) and _blank_correct(blank, answer[i])
    )
    return _fill_score(item.points, correct, len(item.blanks))


@dataclass(frozen=True)
class ScoreSheet:
    """One candidate's objective scores: per item (paper order), the total, and the essays
    still to be marked by people (their 0 here is not a mark)."""

    items: Mapping[str, float]  # item_id -> points earned
    total: float  # exact (math.fsum) sum of `items`
    pending: tuple[str, ...] = ()  # essay item ids, marked later


def score_paper(paper: Paper, answers: Mapping[str, Any]) -> ScoreSheet:
    """Score every item of `paper` against `answers` (item_id -> Answer); unanswered is 0."""
    items = {item.item_id: score_item(item, answers.get(item.item_id)) for item in paper.items()}
    pending = tuple(i.item_id for i in paper.items() if i.type == "essay")
    return ScoreSheet(items=items, total=math.fsum(items.values()), pending=pending)


# --- the fast path ------------------------------------------------------------------------
# Each item becomes one tuple (item_id, rule, points, data, key list) so scoring a candidate
# is one loop of dict lookups and comparisons, with no attribute access or per-call setup.
# A canonical answer equal to the key (the common case for a right answer) is one comparison:
# with the key as a list (answers decoded from JSON) or as a tuple (`to_canonical`'s);
# anything else falls back to set logic.

_EXACT: Final = 0  # multiple_choice all_or_nothing with a key of several options
_SINGLE: Final = 4  # _EXACT with a one-option key: single_choice, true_false and the like
_PARTIAL: Final = 1  # multiple_choice partial
_FILL: Final = 2
_ESSAY: Final = 3
# Fill-in verdicts are remembered per blank (thousands of candidates type the same few
# strings); the bound keeps memory flat on an adversarial answer set.
_VERDICTS_PER_BLANK: Final = 4096

# rule data: _EXACT and _SINGLE (key tuple in canonical order, key set); _PARTIAL (key tuple,
# key set, partial points); _FILL (per blank: raw accepted set, normalised accepted set,
# normalisation, verdict cache). The key list: a choice key as a list, or for a fill-in
# every blank's first accepted answer (equal to it: all blanks right under any rule).
_Entry = tuple[str, int, float, Any, list[str | None] | None]
_BlankKey = tuple[frozenset[str], frozenset[str], Normalisation, dict[str, bool]]


def _compile_item(item: Item) -> _Entry:
    if item.type in CHOICE_TYPES:
        rank = {o.option_id: n for n, o in enumerate(item.options)}
        ordered = tuple(sorted(item.key, key=lambda oid: rank.get(oid, len(rank))))
        keyset = frozenset(item.key)
        if item.type == "multiple_choice" and item.scoring == "partial":
            data = (ordered, keyset, item.partial_points)
            return (item.item_id, _PARTIAL, item.points, data, list(ordered))
        rule = _SINGLE if len(keyset) == 1 else _EXACT
        return (item.item_id, rule, item.points, (ordered, keyset), list(ordered))
    if item.type == "fill_blank":
        blanks: tuple[_BlankKey, ...] = tuple(
            (
                frozenset(b.accepted),
                frozenset(normalise_fill(a, b.normalisation) for a in b.accepted),
                b.normalisation,
                {},
            )
            for b in item.blanks
        )
        right = [b.accepted[0] if b.accepted else None for b in item.blanks]
        return (item.item_id, _FILL, item.points, blanks, right)
    return (item.item_id, _ESSAY, item.points, None, None)


def _fast_fill(points: float, blanks: Any, answer: Any) -> float:
    if not _is_list(answer):
        return 0.0
    correct = 0
    given_count = len(answer)
    for i, (raw, normalised, norm, verdicts) in enumerate(blanks):
        if i >= given_count:
            break
        given = answer[i]
        if not isinstance(given, str):
            continue
        if given in raw:  # equal to an accepted answer: right under any normalisation
            correct += 1
            continue
        verdict = verdicts.get(given)
        if verdict is None:
            verdict = normalise_fill(given, norm) in normalised
            if len(verdicts) < _VERDICTS_PER_BLANK:
                verdicts[given] = verdict
        if verdict:
            correct += 1
    return _fill_score(points, correct, len(blanks))


def _slow_choice(rule: int, points: float, data: Any, answer: Any) -> float:
    chosen = _chosen(answer)
    if not chosen:
        return 0.0
    if chosen == data[1]:
        return points
    if rule == _PARTIAL and chosen < data[1]:
        return float(data[2])
    return 0.0


class KeyTable:
    """A paper's keys precompiled for scoring many candidates; equal to `score_paper`."""

    def __init__(self, paper: Paper) -> None:
        self._entries: tuple[_Entry, ...] = tuple(_compile_item(i) for i in paper.items())
        self._ids = tuple(e[0] for e in self._entries)
        self.pending: tuple[str, ...] = tuple(e[0] for e in self._entries if e[1] == _ESSAY)
        self.objective_points: float = math.fsum(e[2] for e in self._entries if e[1] != _ESSAY)

    def earned(self, answers: Mapping[str, Any]) -> list[float]:
        """Points earned per item, in paper order.

        One comprehension (no per-item method calls): unanswered or essay 0; equal to the
        key list (a choice key, or every blank's first accepted answer) full points; other
        fill-ins blank by blank; a choice key as a tuple full points; one option chosen that
        is not a one-option key's 0 (the usual wrong answer); else set logic.
        """
        get = answers.get
        return [
            0.0
            if (answer := get(item_id)) is None or rule == _ESSAY
            else points
            if answer == key_list and answer
            else _fast_fill(points, data, answer)
            if rule == _FILL
            else points
            if answer == data[0] and answer
            else 0.0
            if rule == _SINGLE and _is_list(answer) and len(answer) == 1
            else _slow_choice(rule, points, data, answer)
            for item_id, rule, points, data, key_list in self._entries
        ]

    def total(self, answers: Mapping[str, Any]) -> float:
        """The candidate's objective total (the scorer's hot path)."""
        return math.fsum(self.earned(answers))

    def score(self, answers: Mapping[str, Any]) -> ScoreSheet:
        """Per-item scores and total, exactly as `score_paper` gives them."""
        earned = self.earned(answers)
        return ScoreSheet(
            items=dict(zip(self._ids, earned, strict=True)),
            total=math.fsum(earned),
            pending=self.pending,
        )


def compile_key(paper: Paper) -> KeyTable:
    """Precompile `paper`'s keys (the paper must carry its keys) for fast scoring."""
    return KeyTable(paper)
