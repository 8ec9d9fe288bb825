"""The journal: every save of every attempt, append-only and hash-chained, and the current
answers derived from it.

`append_save()` runs inside the Store's writer transaction (`store.write(append_save, ...)`),
so a save is acknowledged only once it is committed. Saves are idempotent by `seq`: the same
seq with the same content is acknowledged again; with other content it is a `SeqConflict`.
Saves may arrive out of order (two autosaves in flight): each is chained in arrival order
(`position`), and an item's current answer is the one from the highest seq that carried it,
so a late, older save never overwrites a newer answer. The `responses` table holds those
current answers and is updated in the same transaction; `derive_responses()` recomputes them
from the journal alone so the two can be compared.

The chain's link (`link_hash`, `GENESIS`) is a format the centre checks too:
`server.protocol.journal_chain`.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.clock import iso
from server.errors import CbtError
from server.protocol.journal_chain import GENESIS, link_hash

MAX_SAVE_BYTES = 256 * 1024  # canonical JSON of one save, bytes
MAX_ITEMS_PER_SAVE = 1000  # answers in one save (count)
MAX_ANSWER_BYTES = 64 * 1024  # canonical JSON of one answer (an essay), bytes

# The same bytes as paperpack.canonical.canonical_json, with one encoder built once: saves are
# the hot path and building an encoder per call costs more than encoding a small answer.
_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _canonical(value: Any) -> str:
    return _encoder.encode(value)


class JournalError(CbtError):
    """A save cannot be journaled as sent."""


class SeqConflict(JournalError):
    """The seq was already saved with other content."""


class SaveTooLarge(JournalError):
    """A save exceeds a size limit."""


class ChainBroken(JournalError):
    """An attempt's journal does not verify; the message names the first bad position."""


def check_save_limits(
    responses: dict[str, Any],
    *,
    max_bytes: int = MAX_SAVE_BYTES,
    max_items: int = MAX_ITEMS_PER_SAVE,
    max_answer_bytes: int = MAX_ANSWER_BYTES,
) -> str:
    """Return the canonical JSON of `responses`, or raise SaveTooLarge saying which limit."""
    if len(responses) > max_items:
        raise SaveTooLarge(
            f"a save carries {len(responses)} answers; at most {max_items} are accepted at once"
        )
    body = _canonical(responses)
    size = len(body.encode())
    if size > max_answer_bytes:  # only then can one answer be over its own limit
        for item_id, answer in responses.items():
            answer_size = len(_canonical(answer).encode())
            if answer_size > max_answer_bytes:
                raise SaveTooLarge(
                    f"the answer to item {item_id} is {answer_size} bytes; "
                    f"at most {max_answer_bytes}"
                )
    if size > max_bytes:
        raise SaveTooLarge(f"the save is {size} bytes; at most {max_bytes} are accepted")
    return body


# The attempt's status and token, this seq if saved before, and the chain's head, in one
# statement: every statement on the writer thread also hands the GIL to the event loop and back.
_ATTEMPT_SEQ_AND_HEAD = (
    "SELECT a.status, a.token_hash,"
    " (SELECT responses FROM journal WHERE attempt_id = ?1 AND seq = ?2),"
    " (SELECT position FROM journal WHERE attempt_id = ?1 ORDER BY position DESC LIMIT 1),"
    " (SELECT hash FROM journal WHERE attempt_id = ?1 ORDER BY position DESC LIMIT 1)"
    " FROM attempts a WHERE a.attempt_id = ?1"
)
CLOSED_STATUSES = ("submitted", "closed")  # an attempt in these takes no more saves


class AttemptClosed(JournalError):
    """The attempt was submitted or closed (or does not exist): it takes no more saves."""


class TokenEnded(JournalError):
    """The attempt is no longer held by the token the save came with (a login elsewhere)."""


def append_save(
    db: Database,
    attempt_id: str,
    seq: int,
    responses: dict[str, Any],
    now: datetime,
    *,
    held_by: str | None = None,
) -> int:
    """Journal one save and update the current answers; return the acknowledged seq.

    With `held_by` (a token hash), the save is refused unless the attempt is still open
    (`AttemptClosed`) and still held by that token (`TokenEnded`), checked in the same
    statement that looks up the seq and the chain's head."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise JournalError(f"seq must be a whole number from 1 up, not {seq!r}")
    conn = db.conn  # the sqlite3 connection directly: this is the hot path
    row = conn.execute(_ATTEMPT_SEQ_AND_HEAD, (attempt_id, seq)).fetchone()
    if row is None:
        raise AttemptClosed(f"there is no attempt {attempt_id}")
    status, token, existing, last_position, last_hash = row
    if held_by is not None:
        if status in CLOSED_STATUSES:
            raise AttemptClosed(f"this attempt is {status}; nothing can be saved")
        if token is None or not hmac.compare_digest(token, held_by):
            raise TokenEnded("the attempt is no longer held by this login")
    body = check_save_limits(responses)
    if existing is not None:
        if existing != body:
            raise SeqConflict(
                f"seq {seq} was already saved with other answers; send new answers with a new seq"
            )
        return seq
    position, prev_hash = (last_position + 1, last_hash) if last_position else (1, GENESIS)
    saved_at = iso(now)
    digest = link_hash(attempt_id, seq, position, saved_at, body, prev_hash)
    conn.execute(
        _INSERT_JOURNAL,
        (attempt_id, seq, position, saved_at, body, len(body.encode()), prev_hash, digest),
    )
    _apply_to_responses(db, attempt_id, seq, responses, saved_at)
    conn.execute(_UPDATE_ATTEMPT, (seq, saved_at, attempt_id))
    return seq


# For a whole group commit's saves at once: each attempt's status, token and chain head.
_HEADS = (
    "SELECT a.attempt_id, a.status, a.token_hash,"
    " (SELECT position FROM journal WHERE attempt_id = a.attempt_id"
    "  ORDER BY position DESC LIMIT 1),"
    " (SELECT hash FROM journal WHERE attempt_id = a.attempt_id ORDER BY position DESC LIMIT 1)"
    " FROM attempts a WHERE a.attempt_id IN ({marks})"
)
# Every (attempt, seq) of the batch saved before, and a few other pairs filtered out after:
# a row-value IN (VALUES ...) would scan the whole journal, this searches its primary key.
_SEQS_SAVED = (
    "SELECT attempt_id, seq, responses FROM journal"
    " WHERE attempt_id IN ({attempts}) AND seq IN ({seqs})"
)


def append_saves(
    db: Database, saves: list[tuple[str, int, dict[str, Any], datetime, str | None]]
) -> list[tuple[bool, Any]]:
    """`append_save(db, attempt_id, seq, responses, now, held_by=held_by)` for each of
    `saves` in order, with the same rows and outcomes, in five statements however many
    saves there are: each outcome is (True, acked seq) or (False, the JournalError it raises).

    The group commit runs a batch of autosaves through this (`server.store.batched_write`):
    per save, the event loop and the writer thread trade the GIL once per statement."""
    outcomes: list[tuple[bool, Any]] = []
    attempts = list(dict.fromkeys(save[0] for save in saves))
    conn = db.conn
    heads = {
        row[0]: [row[1], row[2], row[3] or 0, row[4] or GENESIS]
        for row in conn.execute(_HEADS.format(marks=",".join("?" * len(attempts))), attempts)
    }
    wanted = [(a, q) for a, q, *_ in saves if isinstance(q, int) and not isinstance(q, bool)]
    saved: dict[tuple[str, int], str] = {}
    if wanted:
        pairs = set(wanted)
        seqs = list({q for _, q in pairs})
        sql = _SEQS_SAVED.format(
            attempts=",".join("?" * len(attempts)), seqs=",".join("?" * len(seqs))
        )
        saved = {(a, q): r for a, q, r in conn.execute(sql, [*attempts, *seqs]) if (a, q) in pairs}
    journal_rows, answer_rows, attempt_rows = [], [], []
    for attempt_id, seq, responses, now, held_by in saves:
        try:
            if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
                raise JournalError(f"seq must be a whole number from 1 up, not {seq!r}")
            head = heads.get(attempt_id)
            if head is None:
                raise AttemptClosed(f"there is no attempt {attempt_id}")
            status, token, last_position, last_hash = head
            if held_by is not None:
                if status in CLOSED_STATUSES:
                    raise AttemptClosed(f"this attempt is {status}; nothing can be saved")
                if token is None or not hmac.compare_digest(token, held_by):
                    raise TokenEnded("the attempt is no longer held by this login")
            body = check_save_limits(responses)
            existing = saved.get((attempt_id, seq))
            if existing is not None:
                if existing != body:
                    raise SeqConflict(
                        f"seq {seq} was already saved with other answers; send new answers "
                        "with a new seq"
                    )
                outcomes.append((True, seq))
                continue
        except JournalError as exc:
            outcomes.append((False, exc))
            continue
        position = last_position + 1
        saved_at = iso(now)
        digest = link_hash(attempt_id, seq, position, saved_at, body, last_hash)
        journal_rows.append(
            (attempt_id, seq, position, saved_at, body, len(body.encode()), last_hash, digest)
        )
        head[2], head[3] = position, digest
        saved[(attempt_id, seq)] = body
        answer_rows += [
            (attempt_id, item_id, _canonical(answer), seq, saved_at)
            for item_id, answer in responses.items()
        ]
        attempt_rows.append((seq, saved_at, attempt_id))
        outcomes.append((True, seq))
    if journal_rows:
        conn.executemany(_INSERT_JOURNAL, journal_rows)
        conn.executemany(_UPSERT_RESPONSE, answer_rows)
        conn.executemany(_UPDATE_ATTEMPT, attempt_rows)
    return outcomes


_INSERT_JOURNAL = (
    "INSERT INTO journal (attempt_id, seq, position, saved_at, responses, size_bytes,"
    " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_RESPONSE = (
    "INSERT INTO responses (attempt_id, item_id, answer, seq, updated_at)"
    " VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (attempt_id, item_id) DO UPDATE SET"
    " answer = excluded.answer, seq = excluded.seq, updated_at = excluded.updated_at"
    " WHERE excluded.seq > responses.seq"
)
_UPDATE_ATTEMPT = (
    "UPDATE attempts SET last_seq = MAX(last_seq, ?), last_seen_at = ? WHERE attempt_id = ?"
)


def _apply_to_responses(
    db: Database, attempt_id: str, seq: int, responses: dict[str, Any], saved_at: str
) -> None:
    """Upsert each answer unless a higher seq already set that item."""
    db.conn.executemany(
        _UPSERT_RESPONSE,
        [
            (attempt_id, item_id, _canonical(answer), seq, saved_at)
            for item_id, answer in responses.items()
        ],
    )


def current_responses(db: Database, attempt_id: str) -> dict[str, Any]:
    """The attempt's current answers {item id: answer}, from the materialised table."""
    rows = db.execute(
        "SELECT item_id, answer FROM responses WHERE attempt_id = ? ORDER BY item_id",
        (attempt_id,),
    )
    return {item_id: json.loads(answer) for item_id, answer in rows}


def derive_responses(db: Database, attempt_id: str) -> dict[str, Any]:
    """The current answers recomputed from the journal alone (highest seq per item wins)."""
    answers: dict[str, Any] = {}
    for (body,) in db.execute(
        "SELECT responses FROM journal WHERE attempt_id = ? ORDER BY seq", (attempt_id,)
    ):
        answers.update(json.loads(body))
    return dict(sorted(answers.items()))


def verify_chain(db: Database, attempt_id: str) -> int:
    """Check the attempt's hash chain; return its length or raise ChainBroken."""
    expected_prev = GENESIS
    expected_position = 1
    rows = db.execute(
        "SELECT seq, position, saved_at, responses, prev_hash, hash FROM journal"
        " WHERE attempt_id = ? ORDER BY position",
        (attempt_id,),
    )
    for seq, position, saved_at, body, prev_hash, digest in rows:
        where = f"attempt {attempt_id} journal position {expected_position}"
        if position != expected_position:
            raise ChainBroken(f"{where} is missing: an entry was deleted")
        if prev_hash != expected_prev:
            raise ChainBroken(f"{where} does not follow the entry before it")
        if link_hash(attempt_id, seq, position, saved_at, body, prev_hash) != digest:
            raise ChainBroken(f"{where} (seq {seq}) does not match its hash: it was edited")
        expected_prev = digest
        expected_position += 1
    return expected_position - 1


def journal_head(db: Database, attempt_id: str) -> tuple[int, str]:
    """(length, head hash) of the attempt's chain; (0, zeros) when it has no saves."""
    row = db.execute(
        "SELECT position, hash FROM journal WHERE attempt_id = ? ORDER BY position DESC LIMIT 1",
        (attempt_id,),
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)
