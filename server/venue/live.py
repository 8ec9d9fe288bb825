"""What the venue holds in memory only, never on disk: the open unlock ceremony, the
unlocked exam (the decrypted paper without keys and every candidate's variant), the jobs
started without awaiting them, and heartbeats not yet written.

`LiveState` is kept on the app (`keys.LIVE`); nothing is unlocked when the server starts. After
a restart during a session the paper comes back from its key sealed to this machine
(`server.venue.restart`), or from a new ceremony. `ExamState` renders each candidate's paper
once and maps the browser's opaque tokens back to canonical ids.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from paperpack import variants
from paperpack.model import Paper
from paperpack.variants import Variant
from server.errors import Invalid
from server.venue import keys

if TYPE_CHECKING:
    from server.venue.ceremony import CeremonyState


@dataclass
class ExamState:
    """The decrypted paper and every candidate's variant. Never written to disk."""

    session_id: str
    package_id: str
    dry_run: bool
    paper: Paper  # without keys
    variant_secret: bytes
    forms: dict[str, str]  # ticket -> form, for papers with forms
    variants: dict[str, Variant] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)  # ticket -> rendered paper JSON
    # The paper key sealed to this machine's key (paperpack.unlock), written to disk from the
    # exam's start to the session's end (server.venue.restart); None when not kept.
    sealed_key: bytes | None = None
    ceremony_id: int = 0  # the ceremony that opened the paper
    sealed_kept: bool = False  # the sealed key is on disk (DIR/run/) for this session

    def variant(self, ticket: str) -> Variant:
        found = self.variants.get(ticket)
        if found is None:  # a roster row added after the unlock
            found = variants.build_variant(
                self.paper, self.variant_secret, self.session_id, ticket, self.forms.get(ticket)
            )
            self.variants[ticket] = found
        return found

    def reseat(self, ticket: str, layout: str | None) -> Variant:
        """The candidate moved to a seat with another form or order (art. 20): their variant
        from now on. Answers are kept by canonical item id, so none is lost."""
        if layout is None:
            self.forms.pop(ticket, None)
        else:
            self.forms[ticket] = layout
        self.variants.pop(ticket, None)
        self.bodies.pop(ticket, None)
        return self.variant(ticket)

    def paper_body(self, ticket: str) -> bytes:
        """This candidate's paper as the browser gets it (cached; opaque tokens only)."""
        body = self.bodies.get(ticket)
        if body is None:
            rendered = variants.render_variant(self.paper, self.variant(ticket))
            body = json.dumps(rendered, ensure_ascii=False, separators=(",", ":")).encode()
            self.bodies[ticket] = body
        return body

    def render_all(self) -> None:
        """Render every prepared variant ahead of the exam-start herd (runs in a thread), then
        take everything alive out of the cyclic collector's sight (`gc.freeze`): the exam is
        millions of objects kept until the session ends, and every full collection walked
        them all again, in the herd most of the server's time (issue 18: py-spy --gil)."""
        for ticket in list(self.variants):
            self.paper_body(ticket)
        gc.freeze()

    def to_canonical(self, ticket: str, responses: Mapping[str, Any]) -> dict[str, Any]:
        """A browser's answers in canonical ids, or `Invalid` for an unknown token."""
        try:
            return variants.to_canonical(self.variant(ticket), responses)
        except variants.UnknownToken as exc:
            raise Invalid(f"unknown-{exc.role}", str(exc)) from None


@dataclass
class LiveState:
    """What the venue holds in memory only: the open ceremony and the unlocked exam."""

    ceremony: CeremonyState | None = None
    exam: ExamState | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)  # jobs not awaited
    # Heartbeats not yet written: attempt id -> ISO time. Written by the closer's pass (and on
    # shutdown) in one transaction, so a heartbeat costs no commit of its own.
    seen: dict[str, str] = field(default_factory=dict)


def setup(app: web.Application) -> None:
    """Nothing is unlocked when the server starts: the paper lives in memory only."""
    app[keys.LIVE] = LiveState()
