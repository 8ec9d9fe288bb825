"""The central store's interface, split by role, and the rules both back-ends share.

`CentralStorage` is what the app talks to: the roles `VenueRegistry`, `Uploads`, `PackageLog`,
`ReleaseLog`, `AuditLog` and `StaffStore` composed into one store. Code that needs one role
asks for that one. `server.central.store.CentralStore` implements them once, over the drivers
`server.central.sqlite_store` (the default, a file in the central directory) and
`server.central.pg_store` (asyncpg, for several central processes sharing one PostgreSQL),
which pass the same test suite. This module also owns the retention rule of art. 23(7)
(`retention_until`) and the central staff accounts' records (`StaffAccount`, `LoginState`),
so neither back-end can drift from the other. The chains both back-ends write are formats
the venue speaks too: the package log's (`server.protocol.receipts.next_log_root`) and the
audit chain (`server.protocol.audit_chain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from server.errors import CbtError

LOG_GENESIS = "0" * 64  # the log's root before any package was accepted
RETENTION_AFTER_RESULTS = timedelta(days=183)  # art. 23(7): at least 6 months after results
RETENTION_SERIOUS = timedelta(
    days=5 * 366
)  # art. 23(7): 5 years when a serious violation is attached


class StorageError(CbtError):
    """The central store refused an operation; the message says why and what to do."""


class UnknownUpload(StorageError):
    """No upload with this id exists (it was never created, or it has been accepted and purged)."""


class OffsetConflict(StorageError):
    """A chunk was sent at an offset other than the upload's current one."""

    def __init__(self, upload_id: str, expected: int, got: int) -> None:
        self.expected = expected
        super().__init__(
            f"upload {upload_id} is at offset {expected}, not {got}: "
            "ask HEAD for the offset and resume there"
        )


class PackageReplayed(StorageError):
    """An older export of a session and venue arrived after a newer one was accepted."""

    def __init__(self, session_id: str, venue_id: str, export_seq: int, newest: int) -> None:
        super().__init__(
            f"export {export_seq} of session {session_id} at venue {venue_id} is not newer than "
            f"export {newest} already accepted: this is a replay of an older package; "
            "export again at the venue and upload the new file"
        )


class RetentionRefused(StorageError):
    """A record was asked to be deleted before its retention date (art. 23(7))."""


@dataclass(frozen=True)
class VenueRecord:
    """One registered venue: its id and the public keys the centre trusts for it."""

    venue_id: str
    name: str
    signing_public: str  # base64 raw Ed25519 public key: verifies packages and release requests
    wrap_public: str  # base64 raw X25519 public key: releases are wrapped to it
    registered_at: str  # ISO-8601 UTC


@dataclass(frozen=True)
class UploadState:
    """Where a resumable upload stands."""

    upload_id: str  # equals the package's SHA-256 (hex): uploads are idempotent by content
    venue_id: str
    size: int  # bytes the package has in total
    offset: int  # bytes received and stored so far
    receipt: dict[str, Any] | None  # the signed receipt once the package was accepted


@dataclass(frozen=True)
class PackageEntry:
    """What the store records about a package it is about to accept."""

    package_sha256: str
    session_id: str
    venue_id: str
    export_seq: int  # the venue's monotonically increasing export number
    size: int
    serious_violation: bool  # a serious violation is attached: 5-year retention
    summary: dict[str, Any]  # counts for the status page (candidates, submitted, absent, ...)


@dataclass(frozen=True)
class UploadQuota:
    """What one venue's unfinished uploads may claim at once (issue 16, F1)."""

    max_open: int  # unfinished uploads
    max_bytes: int  # the sizes they announced, together


class UploadQuotaExceeded(StorageError):
    """A venue already holds as many unfinished uploads (or bytes) as its quota allows."""


class ChunkPastEnd(StorageError):
    """A chunk would run past the size announced when the upload was created."""


def chunk_pieces(data: bytes | Sequence[bytes]) -> Sequence[bytes]:
    """A chunk as its pieces: one `bytes` is one piece."""
    return (data,) if isinstance(data, bytes) else data


def chunk_size(data: Sequence[bytes]) -> int:
    """The bytes in a chunk that arrived in pieces."""
    return sum(len(piece) for piece in data)


def check_chunk(state: UploadState, offset: int, size: int) -> None:
    """Raise unless a chunk of `size` bytes may be stored at `offset` (both back-ends' rule)."""
    if state.offset != offset or state.receipt is not None:
        raise OffsetConflict(state.upload_id, state.offset, offset)
    if offset + size > state.size:
        raise ChunkPastEnd(
            f"chunk at {offset} of {size} bytes runs past the announced size "
            f"{state.size}: send only the package's remaining bytes"
        )


@dataclass(frozen=True)
class StoredPackage:
    """An accepted package as the store holds it."""

    package_sha256: str
    session_id: str
    venue_id: str
    export_seq: int
    size: int
    received_at: str
    log_position: int
    log_root: str
    receipt: dict[str, Any]
    serious_violation: bool
    summary: dict[str, Any]
    deleted_at: str | None


STAFF_ROLES = ("operator", "auditor")  # the central console's roles (server.central.staff)


@dataclass(frozen=True)
class StaffAccount:
    """A central staff account as the store holds it (never its password hash)."""

    staff_id: int
    login: str  # letters, digits, '-', '_', '.'
    name: str  # the person's name, for the console and the audit trail
    role: str  # one of STAFF_ROLES
    active: bool  # False once disabled (`cbt central staff disable`)
    created_at: str  # ISO-8601 UTC

    def as_json(self) -> dict[str, Any]:
        return {"login": self.login, "name": self.name, "role": self.role}


@dataclass(frozen=True)
class LoginState:
    """What a login needs before the (slow) password check, read in one go."""

    account: StaffAccount | None  # the ACTIVE account with this login, or None
    password_hash: str | None  # its argon2id hash (None with no active account)
    login_failures: list[str]  # failed_at of the newest failures for this login, newest first
    remote_failures: list[str]  # the same for the client address


class ReceiptSigner(Protocol):
    def __call__(
        self, entry: PackageEntry, received_at: str, position: int, previous_root: str, root: str
    ) -> dict[str, Any]:
        """Return the signed receipt for `entry` at log `position` (root before and after)."""
        ...


def retention_until(results_at: datetime | None, serious_violation: bool) -> datetime | None:
    """The first moment a record may be deleted, or None while results are not published."""
    if results_at is None:
        return None
    return results_at + (RETENTION_SERIOUS if serious_violation else RETENTION_AFTER_RESULTS)


def check_deletable(
    package_sha256: str, results_at: datetime | None, serious: bool, now: datetime
) -> None:
    """Raise `RetentionRefused` unless the package's retention date has passed."""
    until = retention_until(results_at, serious)
    if until is None:
        raise RetentionRefused(
            f"package {package_sha256[:16]} cannot be deleted: results of its session are not "
            "published yet, so its retention date (art. 23(7)) is not known"
        )
    if now < until:
        why = "5 years, a serious violation is attached" if serious else "6 months after results"
        raise RetentionRefused(
            f"package {package_sha256[:16]} must be kept until {until.isoformat()} ({why}); "
            "try again after that date"
        )


class VenueRegistry(Protocol):
    """The venues the centre trusts, and their public keys."""

    async def add_venue(self, venue: VenueRecord) -> None:
        """Register a venue, or replace its keys (a re-registration is audited by the caller)."""
        ...

    async def get_venue(self, venue_id: str) -> VenueRecord | None: ...

    async def list_venues(self) -> list[VenueRecord]: ...


class Uploads(Protocol):
    """Resumable uploads of response packages, before they are accepted."""

    async def create_upload(
        self, upload_id: str, venue_id: str, size: int, now: str, quota: UploadQuota | None = None
    ) -> UploadState:
        """Create the upload, or return the existing one with the same id (idempotent).
        A new one past the venue's `quota` raises `UploadQuotaExceeded`."""
        ...

    async def stale_uploads(self, before: str) -> list[str]:
        """Unfinished uploads with no chunk stored since `before` (ISO-8601 UTC)."""
        ...

    async def get_upload(self, upload_id: str) -> UploadState:
        """The upload's state; raises `UnknownUpload`."""
        ...

    async def append_chunk(
        self, upload_id: str, offset: int, data: bytes | Sequence[bytes], now: str
    ) -> int:
        """Store `data` (one chunk, already checked against its checksum; as one `bytes` or
        as the pieces it arrived in, which a store need not join) at `offset` if that is
        the current offset, durably, then move the offset; return the new offset."""
        ...

    async def discard_upload(self, upload_id: str) -> None:
        """Drop an unaccepted upload and its chunks (bytes that do not hash to its id)."""
        ...

    async def read_upload(self, upload_id: str) -> bytes:
        """The bytes received so far, in order (`StorageError` if they are not all there)."""
        ...


class PackageLog(Protocol):
    """The append-only log of accepted packages, their bytes and their retention."""

    async def accept_package(
        self, entry: PackageEntry, sign: ReceiptSigner, now: str
    ) -> dict[str, Any]:
        """Append the package to the log and return its signed receipt.

        The same package again returns the receipt it already has; an older export of the
        same session and venue than one already accepted raises `PackageReplayed`."""
        ...

    async def get_package(self, package_sha256: str) -> StoredPackage | None: ...

    async def package_data(self, package_sha256: str) -> bytes:
        """The accepted package's bytes, exactly as uploaded (its upload's chunks, in order)."""
        ...

    async def list_packages(self, session_id: str | None = None) -> list[StoredPackage]:
        """Accepted packages in log order, optionally of one session."""
        ...

    async def set_results_published(self, session_id: str, results_at: str) -> None:
        """Record when a session's results were published (starts the retention clock)."""
        ...

    async def results_published(self, session_id: str) -> str | None: ...

    async def delete_package(self, package_sha256: str, now: datetime) -> None:
        """Delete the package's bytes (its log entry stays); refused before its retention date."""
        ...


class ReleaseLog(Protocol):
    """The time releases served to venues."""

    async def record_release(
        self, session_id: str, venue_id: str, requested_at: str, now: str
    ) -> None:
        """Count one served release and audit it in the same transaction."""
        ...

    async def release_counts(self) -> dict[tuple[str, str], int]:
        """How many releases each (session, venue) fetched."""
        ...


class LiveLine(Protocol):
    """The venues' heartbeats and serious events (issue 14, point 4: server.central.live)."""

    async def record_heartbeat(
        self, venue_id: str, seq: int, kind: str, recorded_at: str, body: str, now: str
    ) -> bool:
        """Store one message; False (nothing stored) if (venue, seq) was stored before."""
        ...

    async def latest_heartbeats(self) -> list[dict[str, Any]]:
        """Each venue's newest message, its body decoded."""
        ...

    async def heartbeat_seqs(self, venue_id: str) -> list[int]:
        """Every stored message number of a venue, in order."""
        ...


class AuditLog(Protocol):
    """The centre's hash-chained audit events."""

    async def audit(
        self, actor: str, action: str, obj: str, details: dict[str, Any], now: str
    ) -> None:
        """Append one event to the central audit chain."""
        ...

    async def audit_events(self) -> list[dict[str, Any]]:
        """Every audit event in order, with its chain hashes and `chain_format`
        (verify with `server.protocol.audit_chain.verify_audit_records`)."""
        ...


class StaffStore(Protocol):
    """Central staff accounts and their logins (server.central.staff)."""

    async def add_staff(
        self, login: str, name: str, role: str, password_hash: str, actor: str, now: str
    ) -> StaffAccount:
        """Create an account (audited `staff.added`); `StaffError` if the login exists."""
        ...

    async def disable_staff(self, login: str, reason: str, actor: str, now: str) -> None:
        """Disable an account and end its sessions (audited `staff.disabled` with the reason);
        `StaffError` if there is no such account or it is already disabled."""
        ...

    async def list_staff(self) -> list[StaffAccount]:
        """Every account, by login."""
        ...

    async def login_state(self, login: str, remote: str, since: str, limit: int) -> LoginState:
        """The active account of `login` and the newest (at most `limit`) failures after
        `since` for this login and for this address."""
        ...

    async def record_login_failure(
        self, login: str, remote: str, now: str, forget_before: str
    ) -> None:
        """Count one failed login (audited `staff.login_failed`); failures older than
        `forget_before` are dropped."""
        ...

    async def open_staff_session(
        self,
        account: StaffAccount,
        token_hash: str,
        csrf_hash: str,
        remote: str,
        now: str,
        expires_at: str,
    ) -> None:
        """Store a login (token hashes only), clear the login's failures (audited `staff.login`)."""
        ...

    async def find_staff_session(
        self, token_hash: str, now: str
    ) -> tuple[StaffAccount, str] | None:
        """The account and CSRF hash of a live session (not ended, not expired, account
        active), or None."""
        ...

    async def end_staff_session(self, token_hash: str, account: StaffAccount, now: str) -> None:
        """Log out: end the session (audited `staff.logout`)."""
        ...


class CentralStorage(
    VenueRegistry, Uploads, PackageLog, ReleaseLog, LiveLine, AuditLog, StaffStore, Protocol
):
    """Everything the central server keeps: every role above, in one store. Every method is
    atomic. `server.central.store.CentralStore` implements them once for both back-ends."""

    async def open(self) -> None:
        """Connect and bring the schema to the latest migration (`server.central.schema`)."""
        ...

    async def close(self) -> None: ...
