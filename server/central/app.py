"""The central server's aiohttp application: `create_app(settings, clock=..., releases=...)`.

No I/O in the factory: the store (SQLite or PostgreSQL, from `settings.database`) and the
authority keys open in a cleanup context. Routes: uploads and receipts
(`server.central.uploads`) and the time release (`server.central.release`), authenticated by
the venues' keys; for people, the staff login (`server.central.staff`) in front of the status
page (`server.central.status`) and the verification reports (`server.scoring.routes`); the
OpenAPI document of all the JSON routes (`server.central.openapi`).
Errors are RFC 9457 problem details.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from paperpack.authority import Authority
from server.central import (
    keys,
    live,
    openapi,
    receipt_check,
    release,
    staff,
    status,
    uploads,
    venue_auth,
)
from server.central.release import ReleaseSource
from server.central.settings import CentralSettings, load_central_keys
from server.central.storage import CentralStorage
from server.clock import Clock, SystemClock
from server.private import tighten
from server.problems import problem_middleware
from server.requestlog import request_log_middleware
from server.scoring.routes import routes as results_routes

log = logging.getLogger("server.central.requests")
REQUEST_LOG = request_log_middleware(log, lambda app: app[keys.SETTINGS].log_requests)


def open_storage(
    database: str, *, pg_pool_size: int = 10, packages_dir: Path | None = None
) -> CentralStorage:
    """The back-end for `database`: a postgresql:// URL, or else a SQLite file path. With
    PostgreSQL, `packages_dir` is where new packages' bytes are written (None: bytea rows);
    stored packages are read from wherever they are, so readers need not name it."""
    if database.startswith(("postgresql://", "postgres://")):
        from server.central.pg_store import PgStorage

        return PgStorage(database, pool_size=pg_pool_size, packages_dir=packages_dir)
    from server.central.sqlite_store import SqliteStorage

    return SqliteStorage(Path(database))


def create_app(
    settings: CentralSettings,
    *,
    clock: Clock | None = None,
    releases: ReleaseSource | None = None,
    authority: Authority | None = None,
) -> web.Application:
    """Build the central app; the store opens (and closes) in a cleanup context."""
    app = web.Application(
        middlewares=[REQUEST_LOG, problem_middleware],
        client_max_size=settings.max_chunk_bytes + 1024,
    )
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock or SystemClock()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[keys.AUTHORITY] = authority or load_central_keys(settings.directory)
        if releases is None:
            from server.central.release_source import AuthorityReleaseSource

            app[keys.RELEASES] = AuthorityReleaseSource(app[keys.AUTHORITY])
        else:
            app[keys.RELEASES] = releases
        storage = open_storage(
            settings.database_url(),
            pg_pool_size=settings.pg_pool_size,
            packages_dir=settings.packages_path(),
        )
        await storage.open()
        tighten(settings.directory)  # central.db, its packages and results: 0600 in 0700 (F10)
        app[keys.STORAGE] = storage
        yield
        await storage.close()

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(venue_auth.sweeper_context())  # stale uploads (issue 16, F1)
    app.add_routes(uploads.routes)
    app.add_routes(release.routes)
    app.add_routes(staff.routes)  # login, logout, the console's stylesheets and icon
    app.add_routes(status.routes)
    app.add_routes(live.routes)  # POST /api/v1/heartbeat: the venues' live line
    app.add_routes(receipt_check.routes)  # the public receipt check (/receipt, no login)
    app.add_routes(results_routes)  # GET /results/{session_id}/report (server.scoring)
    app.add_routes(openapi.routes)  # GET /api/v1/openapi.json
    return app
