"""Autosaves: `PUT /api/v1/attempt/responses`, a batch of answers with a `seq`.

The browser's answers arrive in this candidate's opaque tokens, are mapped to canonical ids
and appended to the journal (`server.venue.journal`); the reply is sent only after the group
commit that holds the save. The same seq twice is acknowledged once; the same seq with other
content is a conflict. Whatever authentication read before, the save is refused inside its
own write transaction if the attempt has closed or the token has been ended by a login
elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from server.errors import Conflict, Invalid
from server.http import read_json_object, require_field
from server.problems import Problem
from server.store import Outcome, batched_write
from server.venue import journal, keys
from server.venue.attempts import check_not_reopening, check_open
from server.venue.candidate_auth import authenticate, token_ended
from server.venue.identity import require_checked

routes = web.RouteTableDef()
MAX_SEQ = 2**63 - 1  # the largest INTEGER SQLite stores: a larger seq was a 500


def check_answer_shapes(responses: Mapping[str, Any]) -> None:
    """Each answer is a list of strings (choice, fill-in) or a string (essay)."""
    for token, answer in responses.items():
        if isinstance(answer, str):
            continue
        if isinstance(answer, list) and all(isinstance(a, str) for a in answer):
            continue
        raise Invalid(
            "invalid-answer",
            f"the answer for item {token!r} must be a list of strings or a string",
        )


def _refusal(error: Exception) -> Exception:
    """What a save's caller hears for a journal refusal (the same as `save_batch` raises)."""
    if isinstance(error, journal.AttemptClosed):
        return Conflict("attempt-submitted", "this attempt is closed; nothing can be saved")
    if isinstance(error, journal.TokenEnded):
        return token_ended()
    return error


def save_many(db: Database, calls: list[tuple[Any, ...]]) -> list[Outcome]:
    """`save_batch` for a whole group commit's saves at once (`journal.append_saves`)."""
    saves = [(attempt_id, seq, answers, now, hashed)
             for attempt_id, hashed, seq, answers, now in calls]  # fmt: skip
    return [(ok, value if ok else _refusal(value)) for ok, value in journal.append_saves(db, saves)]


# A routine write (the caller raises the cached acked seq; nothing else it changes is cached),
# run a group commit at a time by `save_many`.
@batched_write(save_many)
def save_batch(
    db: Database, attempt_id: str, hashed: str, seq: int, answers: dict[str, Any], now: datetime
) -> int:
    """Append one save to the journal unless the attempt is closed or no longer held by the
    token hash `hashed` (a login elsewhere); returns the acked seq.

    Both are checked inside the write transaction (`append_save(held_by=...)`), so no
    authentication read before it, cached or not, can let a save in after a submission, a
    close or a move to another PC. `append_save` also records the save's time as the
    attempt's last seen time."""
    try:
        return journal.append_save(db, attempt_id, seq, answers, now, held_by=hashed)
    except journal.AttemptClosed:
        raise Conflict(
            "attempt-submitted", "this attempt is closed; nothing can be saved"
        ) from None
    except journal.TokenEnded:
        raise token_ended() from None


@routes.put("/api/v1/attempt/responses", name="responses")
async def put_responses(request: web.Request) -> web.Response:
    """Save a batch of answers; the same seq twice is acknowledged once, other content is 409."""
    auth = await authenticate(request)
    app = request.app
    body = await read_json_object(request, app[keys.SETTINGS].max_save_bytes)
    seq = require_field(body, "seq", int)
    if not 1 <= seq <= MAX_SEQ:
        raise Problem(422, "invalid-field", f"field 'seq' must be from 1 to {MAX_SEQ}")
    responses = require_field(body, "responses", dict)
    check_answer_shapes(responses)
    now = app[keys.CLOCK].now()
    check_open(auth, now)
    check_not_reopening(auth)
    require_checked(auth.identity_ok)  # art. 30: no answers before the identity check
    exam = app[keys.LIVE].exam
    if now < auth.timeline.starts_at:
        raise Problem(409, "not-started", "answers are taken only once the exam has started")
    if exam is None or exam.session_id != auth.session_id:
        raise Problem(
            409,
            "paper-locked",
            "the paper is not open on the venue server; your answers are kept on this "
            "computer and sent once it is",
        )
    answers = exam.to_canonical(auth.ticket, responses)
    hashed = request[keys.TOKEN_HASH]
    try:
        acked = await app[keys.STORE].write(save_batch, auth.attempt_id, hashed, seq, answers, now)
    except journal.SeqConflict as exc:
        raise Problem(409, "seq-conflict", str(exc)) from None
    except journal.SaveTooLarge as exc:
        raise Problem(413, "too-large", str(exc)) from None
    except journal.JournalError as exc:
        raise Problem(422, "invalid-save", str(exc)) from None
    app[keys.ATTEMPT_CACHE].acknowledged(hashed, acked)
    # The reply every save gets, without a JSON encoder: {"acked_seq": <int>}.
    return web.Response(body=b'{"acked_seq":%d}' % acked, content_type="application/json")
