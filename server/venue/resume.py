"""What the candidate's page needs to resume and to show media: the answers the server has
acknowledged (in this candidate's tokens) with the last acknowledged seq, and the paper's
images and audio, served only to a logged-in candidate once the paper is open to them.

A reload, a crash or a seat move to another computer resumes from here; the page then lays
its own unacknowledged journal entries (IndexedDB) over it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlite_utils import Database

from paperpack.variants import to_display
from server.problems import Problem
from server.venue import journal, keys
from server.venue.candidate_auth import authenticate

routes = web.RouteTableDef()


def acknowledged(db: Database, attempt_id: str) -> tuple[int, dict[str, Any]]:
    """The highest acknowledged seq and the current canonical answers."""
    row = db.execute("SELECT last_seq FROM attempts WHERE attempt_id = ?", [attempt_id]).fetchone()
    return (int(row[0]) if row else 0), journal.current_responses(db, attempt_id)


@routes.get("/api/v1/attempt/responses", name="saved_responses")
async def get_saved_responses(request: web.Request) -> web.Response:
    """The acknowledged answers in this candidate's tokens, and the last acknowledged seq."""
    auth = await authenticate(request)
    app = request.app
    acked_seq, canonical = await app[keys.STORE].read(acknowledged, auth.attempt_id)
    exam = app[keys.LIVE].exam
    if exam is None or exam.session_id != auth.session_id:
        # Nothing to map tokens with: only possible before the unlock, when nothing is saved.
        return web.json_response({"acked_seq": acked_seq, "responses": {}})
    shown = to_display(exam.variant(auth.ticket), canonical)
    return web.json_response({"acked_seq": acked_seq, "responses": shown})


@routes.get("/api/v1/attempt/assets/{name}", name="attempt_asset")
async def get_asset(request: web.Request) -> web.Response:
    """An image or audio file of the paper, once the paper is open to this candidate."""
    auth = await authenticate(request)
    app = request.app
    exam = app[keys.LIVE].exam
    now = app[keys.CLOCK].now()
    if exam is None or exam.session_id != auth.session_id or now < auth.timeline.starts_at:
        raise Problem(409, "paper-locked", "the paper is not open yet; please wait")
    try:
        asset = exam.paper.asset(request.match_info["name"])
    except KeyError:
        raise Problem(404, "no-such-asset", "the paper has no file of that name") from None
    return web.Response(body=asset.data, content_type=asset.media_type)
