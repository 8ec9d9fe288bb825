"""Every typed key the venue server keeps on the app and on requests (`web.AppKey`,
`web.RequestKey`); the centre's are in `server.central.keys`.

One module, so a name is never spelled twice as a string and mypy knows each value's type.
The types are imported only for checking, so this module imports nothing at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import asyncio

    from server.clock import Clock
    from server.store import Store
    from server.venue.candidate_auth import AttemptAuth, AttemptCache
    from server.venue.live import LiveState
    from server.venue.login_limiter import LoginLimiter
    from server.venue.settings import Settings

# --- the venue app ------------------------------------------------------------------------
SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STORE: web.AppKey[Store] = web.AppKey("store")
# The ceremony in progress and the unlocked paper with every variant: memory only, never disk.
LIVE: web.AppKey[LiveState] = web.AppKey("live")
# The background task that closes attempts at the end of their time.
CLOSER: web.AppKey[asyncio.Task[Any]] = web.AppKey("closer")
LOGIN_LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter")
# Authenticated attempts by token hash; emptied whenever the store commits a change.
ATTEMPT_CACHE: web.AppKey[AttemptCache] = web.AppKey("attempt_cache")

# --- per request --------------------------------------------------------------------------
# The authenticated candidate's attempt (set by the bearer-token check).
ATTEMPT: web.RequestKey[AttemptAuth] = web.RequestKey("attempt")
# The authenticated request's token hash (for the in-transaction check of a save).
TOKEN_HASH: web.RequestKey[str] = web.RequestKey("token_hash")
