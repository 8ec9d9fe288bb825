"""What a person judges beside the statistics (art. 35(5), "雷同"): the closest pairs of each
room, and essays that are the same text.

The statistical test (`server.scoring.similarity`) flags a pair only when its identical wrong
answers are improbable across the whole session; with seven candidates in a room it cannot
reach significance however blatant the copying. The invigilators' and the examiners' eye
works differently: two neighbours who share six wrong answers and one essay are worth a look
whatever the p-value. So the report also lists:

- per room, the pairs with the most identical wrong answers (at least `MIN_IDENTICAL`), with
  their seats, even below significance: a list for a person to judge, not a verdict;
- every pair of essays (per venue and item) whose texts are identical or near-identical:
  identical after normalising case, width and spacing, or a Jaccard similarity of their
  character 5-gram shingles of at least `NEAR_DUPLICATE` (0.6). Such texts are always flagged,
  whatever the session's size: two people do not write the same 30 words by chance.

Scaling: pairs are formed only within a room (wrong answers) or a venue and item (texts).
Texts are screened with MinHash and locality-sensitive hashing (bands of the signature), so
only colliding pairs get the exact Jaccard; identical texts are found by one dictionary.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from server.scoring.similarity import WrongAnswer

MIN_IDENTICAL = 2  # identical wrong answers before a pair is worth listing
PAIRS_PER_ROOM = 5  # the closest pairs listed per room
NEAR_DUPLICATE = 0.6  # Jaccard of 5-gram shingles from which two texts count as near-identical
# (two words changed in a 30-word answer still leave 0.79; independent answers to one question
# stay well below 0.3)
MIN_TEXT_CHARS = 20  # shorter texts (after normalising) are not compared: "不知道" twice is no copy
SHINGLE = 5
MINHASH_SIZE = 63
BANDS = 21  # 21 bands of 3 rows: a pair at Jaccard 0.6 collides in some band with p = 0.994,
# at 0.2 with p = 0.16 (then the exact Jaccard decides)
_ROWS = MINHASH_SIZE // BANDS
_rng = np.random.default_rng(20261205)  # fixed: the same texts give the same screen every run
_SALTS = _rng.integers(1, 2**63 - 1, size=MINHASH_SIZE, dtype=np.uint64)
_MULTIPLIERS = _rng.integers(1, 2**63 - 1, size=MINHASH_SIZE, dtype=np.uint64) | np.uint64(1)

Seat = tuple[str, str, int, int]  # venue, room, row, column (server.scoring.report.seat_map)


@dataclass(frozen=True)
class ClosePair:
    """Two candidates of one room and how many wrong answers they share."""

    venue_id: str
    room_id: str
    first: str
    second: str
    identical_wrong: int
    both_wrong: int
    items: tuple[str, ...]  # the items answered with the same wrong answer
    neighbours: bool


@dataclass(frozen=True)
class TextMatch:
    """Two candidates of one venue whose texts for one item are (near-)identical."""

    venue_id: str
    item_id: str
    first: str
    second: str
    similarity: float  # Jaccard of the shingles, 1.0 for identical texts
    identical: bool
    length: int  # characters of the first text, normalised


def closest_pairs(
    wrong_answers: Mapping[str, Sequence[WrongAnswer]],
    item_ids: Sequence[str],
    seats: Mapping[str, Seat],
    venues: Mapping[str, str],
    *,
    per_room: int = PAIRS_PER_ROOM,
    minimum: int = MIN_IDENTICAL,
) -> list[ClosePair]:
    """Per room (candidates without a seat: per venue), the `per_room` pairs with the most
    identical wrong answers, at least `minimum` of them; most identical first."""
    rooms: dict[tuple[str, str], list[str]] = {}
    for ticket in sorted(wrong_answers):
        seat = seats.get(ticket)
        key = (seat[0], seat[1]) if seat else (venues.get(ticket, ""), "")
        rooms.setdefault(key, []).append(ticket)
    listed: list[ClosePair] = []
    for (venue_id, room_id), tickets in sorted(rooms.items()):
        pairs = _room_pairs(tickets, wrong_answers, item_ids, minimum)
        for identical, both, a, b, items in pairs[:per_room]:
            touching = _touching(seats.get(a), seats.get(b))
            listed.append(ClosePair(venue_id, room_id, a, b, identical, both, items, touching))
    return listed


def _room_pairs(
    tickets: Sequence[str],
    wrong_answers: Mapping[str, Sequence[WrongAnswer]],
    item_ids: Sequence[str],
    minimum: int,
) -> list[tuple[int, int, str, str, tuple[str, ...]]]:
    """(identical, both wrong, first, second, items) for the room's pairs, most identical first."""
    if len(tickets) < 2:
        return []
    codes: list[dict[object, int]] = [{} for _ in item_ids]
    coded = np.full((len(tickets), len(item_ids)), -1, dtype=np.int64)
    for t, ticket in enumerate(tickets):
        for i, answer in enumerate(wrong_answers[ticket]):
            if answer is not None:
                coded[t, i] = codes[i].setdefault(answer, len(codes[i]))
    wrong = coded >= 0
    both = wrong.astype(np.int32) @ wrong.T.astype(np.int32)
    same = np.zeros_like(both)
    for i in range(len(item_ids)):
        column = coded[:, i]
        same += (column[:, None] == column[None, :]) & (column[:, None] >= 0)
    upper = np.triu(np.ones(same.shape, dtype=bool), k=1)
    found = []
    for a, b in np.argwhere(upper & (same >= minimum)):
        shared = np.flatnonzero((coded[a] == coded[b]) & wrong[a])
        items = tuple(str(item_ids[int(i)]) for i in shared)
        found.append((int(same[a, b]), int(both[a, b]), tickets[a], tickets[b], items))
    found.sort(key=lambda pair: (-pair[0], pair[2], pair[3]))
    return found


def _touching(a: Seat | None, b: Seat | None) -> bool:
    if a is None or b is None or a[:2] != b[:2]:
        return False
    return abs(a[2] - b[2]) <= 1 and abs(a[3] - b[3]) <= 1


# --- texts ----------------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """Case, full/half width and spacing do not make two texts different."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\s+", " ", folded).strip()


def _shingles(text: str) -> set[str]:
    compact = text.replace(" ", "")
    if len(compact) <= SHINGLE:
        return {compact}
    return {compact[k : k + SHINGLE] for k in range(len(compact) - SHINGLE + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _minhash(shingles: set[str]) -> npt.NDArray[np.uint64]:
    hashed = np.array(
        [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big")
         for s in shingles],
        dtype=np.uint64,
    )  # fmt: skip
    with np.errstate(over="ignore"):  # multiplication modulo 2^64 is the point
        mixed = (hashed[None, :] ^ _SALTS[:, None]) * _MULTIPLIERS[:, None]
    return np.asarray(mixed.min(axis=1), dtype=np.uint64)


def matching_texts(
    texts: Mapping[str, Mapping[str, str]],
    venues: Mapping[str, str],
    *,
    threshold: float = NEAR_DUPLICATE,
) -> list[TextMatch]:
    """Per venue and item, the pairs of texts that are identical or near-identical.

    `texts` maps ticket -> item id -> the candidate's text (essays)."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for ticket in sorted(texts):
        for item_id, text in texts[ticket].items():
            normal = normalise_text(text)
            if len(normal.replace(" ", "")) >= MIN_TEXT_CHARS:
                groups.setdefault((venues.get(ticket, ""), item_id), []).append((ticket, normal))
    matches: list[TextMatch] = []
    for (venue_id, item_id), members in sorted(groups.items()):
        matches.extend(_matches_within(venue_id, item_id, members, threshold))
    matches.sort(key=lambda m: (-m.similarity, m.venue_id, m.item_id, m.first, m.second))
    return matches


def _matches_within(
    venue_id: str, item_id: str, members: Sequence[tuple[str, str]], threshold: float
) -> list[TextMatch]:
    shingles = [_shingles(text) for _, text in members]
    candidates: set[tuple[int, int]] = set()
    same_text: dict[str, list[int]] = {}
    for index, (_, text) in enumerate(members):
        same_text.setdefault(text, []).append(index)
    for indices in same_text.values():
        candidates.update(combinations(indices, 2))
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for index, shingle_set in enumerate(shingles):
        signature = _minhash(shingle_set)
        for band in range(BANDS):
            key = (band, signature[band * _ROWS : (band + 1) * _ROWS].tobytes())
            buckets.setdefault(key, []).append(index)
    for indices in buckets.values():
        candidates.update(combinations(indices, 2))
    found = []
    for a, b in sorted(candidates):
        identical = members[a][1] == members[b][1]
        score = 1.0 if identical else jaccard(shingles[a], shingles[b])
        if identical or score >= threshold:
            first, second, length = members[a][0], members[b][0], len(members[a][1])
            found.append(
                TextMatch(venue_id, item_id, first, second, round(score, 4), identical, length)
            )
    return found
