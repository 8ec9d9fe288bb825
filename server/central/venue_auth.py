"""Who may call the upload API, and how much a venue may hold open (issue 16, F1).

Every upload call is signed by the venue's registered Ed25519 key
(`server.protocol.upload_auth`): `authenticate_venue` checks the Authorization header BEFORE
the request's body is read, and answers an unsigned call, a signature that does not verify
or one made too far from the centre's time with 401 problem+json and
`WWW-Authenticate: CBT-Venue` (an unregistered venue: 403 `unknown-venue`). An upload
belongs to the venue that created it; another venue gets 404, as for an upload that does not
exist, so nobody learns which packages another venue sent. The upload's state with its
receipt (`GET`) is readable by its venue or by logged-in central staff (any role).

Quotas (`CBT_CENTRAL_MAX_OPEN_UPLOADS`, `CBT_CENTRAL_MAX_OPEN_UPLOAD_BYTES`) bound what one
venue's unfinished uploads may claim; they are checked in the transaction that creates an
upload (`server.central.queries.create_upload`). `sweeper_context` drops, every few minutes,
unfinished uploads with no chunk for `CBT_CENTRAL_UPLOAD_STALE_S` seconds (their venue, if it
comes back, gets 404 and creates the upload again: the venue's uploader does so by itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

from aiohttp import web

from paperpack import crypto
from server.central import keys
from server.central.staff import ALL_ROLES, find_staff
from server.central.storage import UnknownUpload, UploadState, VenueRecord
from server.clock import iso, parse_time
from server.errors import DomainError, Forbidden, NotFound, Unauthenticated
from server.problems import Problem, as_problem
from server.protocol.upload_auth import (
    EMPTY_SHA256,
    SCHEME,
    UploadAuthInvalid,
    check_upload_request,
    parse_authorization,
)

log = logging.getLogger(__name__)

VENUE: web.RequestKey[VenueRecord] = web.RequestKey("central_upload_venue")
SIGN_HOW = (
    "sign every upload call with the venue's key (the venue's uploader does: "
    "`cbt venue upload`, server.venue.upload)"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def challenge(handler: Handler) -> Handler:
    """Add `WWW-Authenticate: CBT-Venue` to the handler's 401s (RFC 9110 asks for it)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (Problem, DomainError) as refusal:
            problem = as_problem(refusal)
            if problem.status != 401:
                raise
            response = problem.to_response()
            response.headers["WWW-Authenticate"] = f'{SCHEME} realm="cbt-uploads"'
            return response

    return wrapped


def _unauthenticated(why: str) -> Unauthenticated:
    return Unauthenticated("venue-signature-required", f"{why}: {SIGN_HOW}")


def require_signed(request: web.Request) -> None:
    """401 at once for a call without a signature, before its headers or body are read."""
    if "Authorization" not in request.headers:
        raise _unauthenticated("the request is not signed")


async def authenticate_venue(
    request: web.Request, content: str = EMPTY_SHA256, offset: str = ""
) -> VenueRecord:
    """The venue that signed this request, or a refusal (401; 403 for an unregistered one)."""
    try:
        claim = parse_authorization(request.headers.get("Authorization"))
    except UploadAuthInvalid as exc:
        raise _unauthenticated(str(exc)) from None
    app = request.app
    venue = await app[keys.STORAGE].get_venue(claim.venue_id)
    if venue is None:
        raise Forbidden(
            "unknown-venue", f"venue {claim.venue_id!r} is not registered at this centre"
        )
    public = crypto.read_signing_public(venue.signing_public)
    try:
        check_upload_request(public, claim, request.method, request.path, content, offset)
    except UploadAuthInvalid as exc:
        raise _unauthenticated(str(exc)) from None
    now = app[keys.CLOCK].now()
    skew = timedelta(milliseconds=app[keys.SETTINGS].release_skew_ms)
    try:
        signed_at = parse_time(claim.signed_at)
    except ValueError:
        raise _unauthenticated("signed_at is not an ISO-8601 time") from None
    if abs(signed_at - now) > skew:
        raise _unauthenticated(
            f"the request was signed at {claim.signed_at}, more than {skew.seconds} s from the "
            f"centre's time {iso(now)}; check the venue server's clock"
        )
    request[VENUE] = venue
    return venue


def not_found(upload_id: str) -> NotFound:
    return NotFound(
        "unknown-upload", f"no upload {upload_id}: create it first with POST /api/v1/uploads"
    )


async def own_upload(request: web.Request, venue: VenueRecord) -> UploadState:
    """The upload named in the path if it is this venue's (404 otherwise, as if it did not
    exist: another venue learns nothing)."""
    upload_id = request.match_info["upload_id"]
    try:
        state = await request.app[keys.STORAGE].get_upload(upload_id)
    except UnknownUpload:
        raise not_found(upload_id) from None
    if state.venue_id != venue.venue_id:
        raise not_found(upload_id)
    return state


async def venue_or_staff(request: web.Request) -> UploadState:
    """The upload named in the path, for its own venue (signed) or for central staff."""
    if "Authorization" not in request.headers:
        found = await find_staff(request)
        if found is not None and found[0].role in ALL_ROLES:
            upload_id = request.match_info["upload_id"]
            try:
                return await request.app[keys.STORAGE].get_upload(upload_id)
            except UnknownUpload:
                raise not_found(upload_id) from None
        raise _unauthenticated(
            "the request is not signed and carries no central staff login; a receipt is "
            "readable by its venue and by central staff only"
        )
    return await own_upload(request, await authenticate_venue(request))


# --- the stale-upload sweeper ----------------------------------------------------------------


async def sweep_stale(app: web.Application, now: datetime) -> int:
    """Drop unfinished uploads with no chunk for `upload_stale_s`; how many were dropped."""
    storage = app[keys.STORAGE]
    before = iso(now - timedelta(seconds=app[keys.SETTINGS].upload_stale_s))
    stale = await storage.stale_uploads(before)
    for upload_id in stale:
        await storage.discard_upload(upload_id)
    if stale:
        log.info("uploads.swept count=%d before=%s", len(stale), before)
    return len(stale)


def sweeper_context(every_s: float = 300.0) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context sweeping stale uploads every `every_s` seconds while the app runs."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:  # the first sweep after `every_s`: start-up touches nothing
                await asyncio.sleep(every_s)
                try:
                    await sweep_stale(app, app[keys.CLOCK].now())
                except Exception:  # a broken sweep must not end the loop; it is logged
                    log.exception("uploads.sweep_failed")

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
