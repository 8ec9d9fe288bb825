"""Typed keys the central app keeps (`web.AppKey`): one place, never string keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from paperpack.authority import Authority
    from server.central.release import ReleaseSource
    from server.central.settings import CentralSettings
    from server.central.storage import CentralStorage
    from server.clock import Clock

SETTINGS: web.AppKey[CentralSettings] = web.AppKey("central_settings")
CLOCK: web.AppKey[Clock] = web.AppKey("central_clock")
STORAGE: web.AppKey[CentralStorage] = web.AppKey("central_storage")
AUTHORITY: web.AppKey[Authority] = web.AppKey("central_authority")
RELEASES: web.AppKey[ReleaseSource] = web.AppKey("central_releases")
