"""The public receipt check (issue 14, point 7): after results are published, a candidate
enters their ticket and the short code from their receipt, and the centre says whether the
answers it scored are the ones they submitted. It shows no answers and no score.

    GET  /receipt                 the form (zh-CN or en, no login)
    POST /receipt                 the form's answer, as a page
    POST /api/v1/receipt-check    {ticket, code} -> {outcome, session_id}

Outcomes: `confirmed` (the code is the receipt's and the scored answers give that receipt),
`not-confirmed` (the code is not this ticket's receipt, or the answers scored give another
one: the page says to check the code and, if it is right, to ask for a score review, art.
36), `not-found` (no published result for that ticket). Only sessions whose results are
published are looked at (`storage.results_published`); what is looked at is the session's
`receipt-checks.json` that scoring writes (`server.scoring.results.receipt_checks`).
A wrong code tells nothing: a code has 50 bits, so guessing another candidate's is hopeless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from server.central import keys
from server.central.staff import language_context, render_page
from server.errors import Invalid, Malformed
from server.http import read_json_object
from server.protocol.candidate_receipt import ReceiptCodeInvalid, normalise_code
from server.scoring.pipeline import RESULTS
from server.scoring.results import RECEIPT_CHECKS

routes = web.RouteTableDef()
MAX_BODY = 4 * 1024  # a ticket and a code, however escaped, are far below this
FIELDS = ("ticket", "code")
MAX_TICKET = 64
MIN_CODE, MAX_CODE = 12, 40  # 12 characters, with any spaces and hyphens typed between them


@dataclass(frozen=True)
class ReceiptCheck:
    outcome: str  # confirmed | not-confirmed | not-found
    session_id: str | None = None


def _checks(central_dir: Path, session_id: str) -> dict[str, Any]:
    try:
        doc = json.loads((central_dir / RESULTS / session_id / RECEIPT_CHECKS).read_text())
    except (OSError, ValueError):
        return {}
    tickets = doc.get("tickets") if isinstance(doc, dict) else None
    return tickets if isinstance(tickets, dict) else {}


async def check_receipt(app: web.Application, ticket: str, code: str) -> ReceiptCheck:
    """The outcome for `ticket` and a normalised `code` over the published sessions."""
    central_dir = app[keys.SETTINGS].directory
    storage = app[keys.STORAGE]
    folder = central_dir / RESULTS
    sessions = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    for session_id in sessions:
        entry = _checks(central_dir, session_id).get(ticket)
        if entry is None or await storage.results_published(session_id) is None:
            continue
        confirmed = entry.get("code") == code and entry.get("scored_as_submitted") is True
        return ReceiptCheck("confirmed" if confirmed else "not-confirmed", session_id)
    return ReceiptCheck("not-found")


def _clean(ticket: Any, code: Any) -> tuple[str, str]:
    """Ticket and canonical code, or Invalid/Malformed naming the field that is wrong."""
    for field, value in (("ticket", ticket), ("code", code)):
        if not isinstance(value, str):
            raise Malformed("invalid-field", f"{field} must be text", field=field)
    ticket = ticket.strip()
    if not ticket or len(ticket) > MAX_TICKET:
        raise Invalid("invalid-field", "the ticket number is missing or too long", field="ticket")
    if not MIN_CODE <= len(code) <= MAX_CODE:
        raise Invalid("invalid-field", "a receipt code has 12 characters", field="code")
    try:
        return ticket, normalise_code(code)
    except ReceiptCodeInvalid as exc:
        raise Invalid("bad-receipt-code", str(exc), field="code") from None


@routes.post("/api/v1/receipt-check", name="receipt_check_api")
async def receipt_check_api(request: web.Request) -> web.Response:
    """Check a ticket's receipt code against the answers scored (public, no answers shown)."""
    body = await read_json_object(request, MAX_BODY)
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise Malformed("invalid-field", f"unknown field {unknown[0]!r}: send only ticket and code")
    ticket, code = _clean(body.get("ticket"), body.get("code"))
    result = await check_receipt(request.app, ticket, code)
    return web.json_response(
        {"outcome": result.outcome, "session_id": result.session_id},
        headers={"Cache-Control": "no-store"},
    )


@routes.get("/receipt", name="receipt_page")
async def receipt_page(request: web.Request) -> web.Response:
    """The form."""
    return render_page("central/receipt.html", ticket="", code="", outcome=None, error=None,
                       **language_context(request))  # fmt: skip


@routes.post("/receipt", name="receipt_page_check")
async def receipt_page_check(request: web.Request) -> web.Response:
    """The form's answer, in the page's language."""
    context = language_context(request)
    form = await request.post()
    ticket, code = str(form.get("ticket", "")), str(form.get("code", ""))
    try:
        clean_ticket, clean_code = _clean(ticket, code)
    except (Invalid, Malformed) as exc:
        t = context["t"]
        error = (
            t("receipt.error.code") if exc.slug == "bad-receipt-code" else t("receipt.error.ticket")
        )
        return render_page("central/receipt.html", status=422, ticket=ticket, code=code,
                           outcome=None, error=error, **context)  # fmt: skip
    result = await check_receipt(request.app, clean_ticket, clean_code)
    return render_page("central/receipt.html", ticket=clean_ticket, code=clean_code,
                       outcome=result.outcome, session_id=result.session_id, error=None,
                       **context)  # fmt: skip
