"""check_journals: the quick encoder never decides alone that a journal was altered."""

from __future__ import annotations

import pytest

from paperpack.canonical import canonical_json
from server.protocol.journal_chain import GENESIS, JournalMismatch, check_journals, link_hash


def _journal(saves: list[dict]) -> list[dict]:
    out, previous = [], GENESIS
    for n, responses in enumerate(saves, start=1):
        at = f"2026-06-13T01:00:0{n}.000Z"
        digest = link_hash("a1", n, n, at, canonical_json(responses).decode(), previous)
        out.append({"seq": n, "position": n, "saved_at": at, "responses": responses,
                    "prev_hash": previous, "hash": digest})  # fmt: skip
        previous = digest
    return out


def test_a_chain_over_the_canonical_bytes_verifies_even_where_orjson_writes_otherwise():
    # orjson writes 1e16 where the definition writes 1e+16: the definition decides.
    saves = [{"q1": ["b"]}, {"q2": 1e16}, {"q3": "三十\n"}]
    assert check_journals({"attempts": [{"attempt_id": "a1", "journal": _journal(saves)}]}) == 3


def test_an_edited_answer_breaks_the_chain():
    journal = _journal([{"q1": ["b"]}, {"q2": ["c"]}])
    journal[0]["responses"] = {"q1": ["a"]}
    with pytest.raises(JournalMismatch, match="position 1 does not chain"):
        check_journals({"attempts": [{"attempt_id": "a1", "ticket": "T1", "journal": journal}]})
