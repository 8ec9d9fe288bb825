"""Submission: `POST /api/v1/attempt/submit`, and freezing an attempt's answers.

`finalise_attempt` is the one way an attempt ends, by the candidate or by the closer at time:
it freezes the acknowledged answers as the submission, with a receipt that binds the attempt
(session, ticket, attempt id) and its final answers, and its short code for the candidate to
write down (`server.protocol.candidate_receipt`), and audits it in the same transaction. The
candidate's own submission is refused in the sealed period (`rules.check_submit`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlite_utils import Database

from paperpack.canonical import canonical_json
from server import audit
from server.clock import iso
from server.errors import Conflict
from server.problems import Problem
from server.protocol.candidate_receipt import WRITTEN, candidate_receipt, short_code
from server.venue import keys, rules
from server.venue.attempts import check_open
from server.venue.candidate_auth import authenticate
from server.venue.identity import require_checked
from server.venue.journal import CLOSED_STATUSES
from server.venue.rules import RuleViolation

routes = web.RouteTableDef()


class AlreadyClosed(Conflict):
    """The attempt was submitted or closed already: there is nothing left to finalise."""

    def __init__(self, detail: str) -> None:
        super().__init__("attempt-submitted", detail)


def finalise_attempt(db: Database, attempt_id: str, how: str, at: datetime) -> dict[str, Any]:
    """Freeze the acknowledged answers as the submission; returns receipt and time."""
    now = iso(at)
    row = db.execute(
        "SELECT status, last_seq, session_id, ticket FROM attempts WHERE attempt_id = ?",
        [attempt_id],
    ).fetchone()
    if row is None or row[0] in CLOSED_STATUSES:
        raise AlreadyClosed("this attempt has already been submitted")
    answers = {
        item_id: json.loads(answer)
        for item_id, answer in db.execute(
            "SELECT item_id, answer FROM responses WHERE attempt_id = ? ORDER BY item_id",
            [attempt_id],
        )
    }
    receipt = candidate_receipt(
        answers, session_id=row[2], ticket=row[3], attempt_id=attempt_id, receipt_format=WRITTEN
    )
    db.table("submissions").insert(
        {
            "attempt_id": attempt_id,
            "submitted_at": now,
            "how": how,
            "final_seq": row[1],
            "answers": canonical_json(answers).decode("utf-8"),
            "receipt": receipt,
            "receipt_format": WRITTEN,
        }
    )
    status = "submitted" if how == "candidate" else "closed"
    db.execute(
        "UPDATE attempts SET status = ?, submitted_at = ? WHERE attempt_id = ?",
        [status, now, attempt_id],
    )
    actor = f"candidate:{row[3]}" if how == "candidate" else "system"
    audit.record(
        db,
        actor,
        f"attempt.{status}",
        f"session:{row[2]}/ticket:{row[3]}",
        {"attempt_id": attempt_id, "how": how, "final_seq": row[1], "receipt": receipt},
        now=at,
    )
    return {"submitted_at": now, "receipt": receipt, "receipt_code": short_code(receipt)}


@routes.post("/api/v1/attempt/submit", name="submit")
async def submit(request: web.Request) -> web.Response:
    """Submit the attempt: refused in the sealed period; returns the receipt."""
    auth = await authenticate(request)
    now = request.app[keys.CLOCK].now()
    check_open(auth, now)
    require_checked(auth.identity_ok)
    try:
        rules.check_submit(now, auth.timeline)
    except RuleViolation as exc:
        raise Problem(409, exc.slug, str(exc), **exc.extra) from None
    result = await request.app[keys.STORE].write(
        finalise_attempt, auth.attempt_id, "candidate", now
    )
    return web.json_response(result)
