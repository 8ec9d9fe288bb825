"""The candidate's receipt: what the venue gives a candidate at submission, and the centre
checks again over the answers it scores.

Format 1 (`answers-v1`, written before 2026-12) was the SHA-256 of the canonical JSON of the
final answers alone, so two candidates with the same answers got the same receipt and a
receipt did not say whose sheet it was. Format 2 (`attempt-v2`, written now) binds the
attempt:

    SHA-256( canonical_json({"format": "cbt-candidate-receipt", "version": 2,
                             "session_id": S, "ticket": T, "attempt_id": A,
                             "answers": {item id: answer}}) )

The venue stores which format it wrote beside the receipt (`submissions.receipt_format`) and
exports it; the centre recomputes the same format (an export without the field is format 1).

The **short code** is what a candidate can write down: the first 50 bits of the receipt as two
groups of five Crockford base32 characters, each followed by a check character
(`paperpack.typable.weighted_check`), e.g. `A3C5HJ-R4RBV2`. A mistyped character or two
swapped ones are caught when the code is entered. After results are published the centre's
public page takes a ticket and this code and says whether the answers it scored are the ones
submitted (`server.central.receipt_check`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paperpack.canonical import canonical_hash
from paperpack.typable import ALPHABET, weighted_check
from server.errors import CbtError

ANSWERS_V1 = "answers-v1"
ATTEMPT_V2 = "attempt-v2"
WRITTEN = ATTEMPT_V2
READABLE = (ANSWERS_V1, ATTEMPT_V2)
CODE_GROUPS = 2
CODE_GROUP_DATA = 5  # symbols of the receipt per group; each group then gets a check
_CRUDE = {"O": "0", "I": "1", "L": "1"}


class ReceiptCodeInvalid(CbtError):
    """A typed short code is not one: wrong length, a character no code has, or a check fails."""


def receipt_document(
    answers: Mapping[str, Any], *, session_id: str, ticket: str, attempt_id: str
) -> dict[str, Any]:
    """What a format 2 receipt is the hash of."""
    return {
        "format": "cbt-candidate-receipt",
        "version": 2,
        "session_id": session_id,
        "ticket": ticket,
        "attempt_id": attempt_id,
        "answers": dict(answers),
    }


def candidate_receipt(
    answers: Mapping[str, Any],
    *,
    session_id: str,
    ticket: str,
    attempt_id: str,
    receipt_format: str = WRITTEN,
) -> str:
    """The receipt (hex SHA-256) of `answers` in `receipt_format`."""
    if receipt_format == ANSWERS_V1:
        return canonical_hash(dict(answers))
    if receipt_format != ATTEMPT_V2:
        raise ValueError(f"receipt format {receipt_format!r} is not one of {', '.join(READABLE)}")
    return canonical_hash(
        receipt_document(answers, session_id=session_id, ticket=ticket, attempt_id=attempt_id)
    )


def short_code(receipt: str) -> str:
    """The receipt's checked short form, two groups of six characters."""
    value = int(receipt[:13], 16) >> 2  # 52 bits, keep the first 50
    symbols = [(value >> (5 * (9 - i))) & 0x1F for i in range(CODE_GROUPS * CODE_GROUP_DATA)]
    groups = []
    for start in range(0, len(symbols), CODE_GROUP_DATA):
        chunk = symbols[start : start + CODE_GROUP_DATA]
        groups.append("".join(ALPHABET[s] for s in [*chunk, weighted_check(chunk)]))
    return "-".join(groups)


def normalise_code(typed: str) -> str:
    """The canonical form of a typed short code (case, O/I/L, spaces and hyphens forgiven);
    ReceiptCodeInvalid says which group is wrong."""
    compact = "".join(_CRUDE.get(c, c) for c in typed.upper() if c not in " -\t")
    size = CODE_GROUP_DATA + 1
    if len(compact) != CODE_GROUPS * size:
        raise ReceiptCodeInvalid(
            f"a receipt code has {CODE_GROUPS * size} characters (two groups of {size});"
            f" {len(compact)} were typed: copy it again from the receipt"
        )
    if any(c not in ALPHABET for c in compact):
        raise ReceiptCodeInvalid(
            "a receipt code uses 0-9 and A-Z without I, L, O, U: copy it again from the receipt"
        )
    for number, start in enumerate(range(0, len(compact), size), start=1):
        group = [ALPHABET.index(c) for c in compact[start : start + size]]
        if weighted_check(group[:-1]) != group[-1]:
            raise ReceiptCodeInvalid(
                f"group {number} of the receipt code does not check: a character is mistyped"
                " there; copy it again from the receipt"
            )
    return f"{compact[:size]}-{compact[size:]}"
