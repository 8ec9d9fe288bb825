"""The online time release (art. 24): the venue asks the central server for its session's
release, inside the unlock window.

The request is signed by the venue's key; the answer is the release record wrapped to the
venue's own key, so only this machine can open it. When the centre cannot be reached, refuses,
or answers with something this venue cannot open, the refusal (`Unreachable`, 502) says to ask
for the release code by phone; a venue with no central server configured must type the code in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from paperpack.errors import PaperpackError
from server.clock import iso
from server.errors import Invalid, Unreachable
from server.protocol.release import open_release_response, sign_release_request
from server.venue import keys
from server.venue.workspace import load_signing_key, load_venue, load_wrapping_key


async def fetch_release(
    central_url: str, body: Mapping[str, str], timeout_s: float
) -> dict[str, Any]:
    """POST the signed request (`server.protocol.release.sign_release_request`) to the central
    server; returns its JSON answer (the release record wrapped to this venue's key)."""
    url = central_url.rstrip("/") + "/api/v1/release"
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as client,
            client.post(url, json=dict(body)) as response,
        ):
            if response.status != 200:
                detail = (await response.text())[:300]
                raise Unreachable(
                    "release-unavailable",
                    f"the central server refused the release "
                    f"({response.status}): {detail}; ask for the release code by phone",
                )
            record: dict[str, Any] = await response.json()
            return record
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unreachable(
            "release-unavailable",
            f"the central server at {central_url} could not be "
            f"reached ({type(exc).__name__}); ask for the release code by phone",
        ) from None


async def fetch_release_for(app: web.Application, session_id: str, now: datetime) -> Any:
    settings = app[keys.SETTINGS]
    if not settings.central_url:
        raise Invalid(
            "release-code-needed",
            "this venue has no central server configured: type in "
            "the release code read out by the centre",
        )
    venue = load_venue(settings.venue_dir)
    body = sign_release_request(load_signing_key(venue), session_id, venue.venue_id, iso(now))
    answer = await fetch_release(settings.central_url, body, settings.central_timeout_s)
    try:
        return open_release_response(answer, load_wrapping_key(venue))
    except (KeyError, ValueError, TypeError, PaperpackError) as exc:
        raise Unreachable(
            "release-unavailable",
            f"the central server's answer cannot be opened by this "
            f"venue ({type(exc).__name__}); ask for the release code by phone",
        ) from None
