"""The journal chain: the hash chain over every save of an attempt.

The venue writes it (`server.venue.journal.append_save`, one link per save, in arrival
order) and verifies it in its own database; the journals travel to the centre in the
response package, where `check_journals(contents)` re-checks every attempt's chain, so an
answer edited after it was saved is caught at the centre too, and `broken_journals(attempts)`
does the same attempt by attempt and names the tickets whose journal does not chain. The
journals travel in the package's evidence document (format 2) or inline in the attempts
(format 1). Reading the packages themselves is `server.scoring.packages`.

Link: `hash = SHA-256(canonical JSON {attempt_id, seq, position, saved_at, responses_sha256,
prev_hash})`, where `responses_sha256` is the hex SHA-256 of the save's canonical JSON and
`prev_hash` the hash at the previous position (`GENESIS`, 64 zeros, at position 1).
"""

from __future__ import annotations

import hashlib
from typing import Any

from paperpack.canonical import canonical_json, quick_canonical_json
from server.errors import CbtError

GENESIS = "0" * 64  # prev_hash of an attempt's first save


def link_hash(
    attempt_id: str, seq: int, position: int, saved_at: str, body: str, prev_hash: str
) -> str:
    """The hash of one journal entry (`body`: the save's canonical JSON), chained to the last.

    `canonical_hash` of the link's fields, written with `quick_canonical_json`: strings and
    integers only, so the bytes are the same (a test pins it), several times faster, which
    counts when the centre re-chains every save of a session."""
    link = {
        "attempt_id": attempt_id,
        "seq": seq,
        "position": position,
        "saved_at": saved_at,
        "responses_sha256": hashlib.sha256(body.encode()).hexdigest(),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(quick_canonical_json(link)).hexdigest()


class JournalMismatch(CbtError):
    """An attempt's journal in a package does not chain: it was altered."""


def check_journals(contents: dict[str, Any]) -> int:
    """Verify every attempt's journal chain; return how many saves were checked."""
    checked = 0
    for attempt in contents.get("attempts", []):
        previous = GENESIS
        for save in attempt.get("journal", []):
            digest = _link(attempt["attempt_id"], save, previous)
            if save["prev_hash"] != previous or digest != save["hash"]:
                raise JournalMismatch(
                    f"attempt of ticket {attempt.get('ticket')} journal position "
                    f"{save['position']} does not chain: the package's journal was altered; "
                    "hold this candidate's score"
                )
            previous = digest
            checked += 1
    return checked


def broken_journals(attempts: list[dict[str, Any]]) -> tuple[int, dict[str, str]]:
    """(saves checked, ticket -> why its journal cannot be trusted) over `attempts`, each a
    {"attempt_id", "ticket", "journal"} record."""
    checked, broken = 0, {}
    for attempt in attempts:
        ticket = str(attempt.get("ticket"))
        try:
            checked += check_journals({"attempts": [attempt]})
        except JournalMismatch:
            broken[ticket] = "the journal in the package does not chain: saved answers were altered"
        except (KeyError, TypeError, AttributeError):
            broken[ticket] = "the journal in the package is incomplete: it cannot be checked"
    return checked, broken


def _link(attempt_id: str, save: dict[str, Any], previous: str) -> str:
    """The save's link hash, its body written with `quick_canonical_json`; a link that does
    not match is recomputed with `canonical_json`, the definition, before it counts as
    altered."""
    fields = (attempt_id, save["seq"], save["position"], save["saved_at"])
    quick = link_hash(*fields, quick_canonical_json(save["responses"]).decode(), previous)
    if quick == save["hash"]:
        return quick
    return link_hash(*fields, canonical_json(save["responses"]).decode(), previous)
