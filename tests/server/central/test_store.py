"""The central store's contract, role by role, on both back-ends (one suite, parametrised).

Each test calls the store directly (no HTTP), as `server.central.uploads`, `staff`, `release`
and scoring do, so SQLite and PostgreSQL are held to the same answers and the same errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial

import pytest

from paperpack.authority import Authority
from server.central.app import open_storage
from server.central.storage import (
    LOG_GENESIS,
    CentralStorage,
    ChunkPastEnd,
    OffsetConflict,
    PackageEntry,
    PackageReplayed,
    RetentionRefused,
    StorageError,
    UnknownUpload,
)
from server.clock import iso
from server.protocol.audit_chain import LEGACY_CENTRAL_FORMAT, verify_audit_records
from server.protocol.receipts import next_log_root, sign_receipt
from server.staffauth import StaffError
from tests.server.central.conftest import START, make_package, new_venue

T0 = iso(START)


@pytest.fixture
async def store(database: str) -> AsyncIterator[CentralStorage]:
    storage = open_storage(database, pg_pool_size=2)
    await storage.open()
    yield storage
    await storage.close()


async def accepted(
    store: CentralStorage, authority: Authority, data: bytes, session: str = "S1", seq: int = 1
) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    if (await store.create_upload(digest, "V1", len(data), T0)).receipt is None:
        await store.append_chunk(digest, 0, data, T0)
    entry = PackageEntry(digest, session, "V1", seq, len(data), False, {"candidates": 5})
    return await store.accept_package(entry, partial(sign_receipt, authority.signing_key), T0)


async def test_venues_are_registered_replaced_and_listed(store: CentralStorage) -> None:
    """Registering a venue again replaces its keys; unknown venues are None; the list is sorted."""
    second, first = new_venue("V2").record(), new_venue("V1").record()
    await store.add_venue(second)
    await store.add_venue(first)
    again = new_venue("V1").record()
    await store.add_venue(again)
    assert await store.get_venue("V1") == again
    assert await store.get_venue("nope") is None
    assert await store.list_venues() == [again, second]


async def test_an_upload_moves_only_from_its_offset_and_within_its_size(
    store: CentralStorage,
) -> None:
    """Creating is idempotent; a chunk at another offset or past the size is refused and moves
    nothing; chunks arriving as pieces read back joined; a discarded upload is unknown."""
    digest = "ab" * 32
    with pytest.raises(UnknownUpload):
        await store.get_upload(digest)
    state = await store.create_upload(digest, "V1", 10, T0)
    assert (state.offset, state.size, state.receipt) == (0, 10, None)
    assert await store.create_upload(digest, "V1", 10, T0) == state
    assert await store.append_chunk(digest, 0, [b"ab", b"cd"], T0) == 4
    with pytest.raises(OffsetConflict) as conflict:
        await store.append_chunk(digest, 0, b"xx", T0)
    assert conflict.value.expected == 4
    with pytest.raises(ChunkPastEnd):
        await store.append_chunk(digest, 4, b"0123456", T0)
    assert (await store.get_upload(digest)).offset == 4
    assert await store.read_upload(digest) == b"abcd"
    await store.discard_upload(digest)
    with pytest.raises(UnknownUpload):
        await store.get_upload(digest)


async def test_the_log_chains_packages_and_refuses_replays(
    store: CentralStorage, authority: Authority
) -> None:
    """Each accepted package gets the next position and root; accepting it again gives the
    same receipt; an older export of the same session and venue is a replay; the upload then
    reads as complete, and discarding it keeps the package."""
    venue = new_venue("V1")
    one, two = make_package(venue, authority), make_package(venue, authority, export_seq=2)
    first = await accepted(store, authority, one)
    body = first["receipt"]
    assert isinstance(body, dict)
    root = next_log_root(LOG_GENESIS, 1, body["package_sha256"], T0)
    assert (body["log_position"], body["log_root"]) == (1, root)
    assert await accepted(store, authority, one) == first
    second = await accepted(store, authority, two, seq=2)
    assert second["receipt"]["log_previous_root"] == root  # type: ignore[index]
    with pytest.raises(PackageReplayed):
        await accepted(store, authority, make_package(venue, authority, seed=5), seq=2)
    digest = hashlib.sha256(one).hexdigest()
    state = await store.get_upload(digest)
    assert state.receipt == first and state.offset == len(one)
    await store.discard_upload(digest)
    assert await store.package_data(digest) == one
    packages = await store.list_packages("S1")
    assert [p.log_position for p in packages] == [1, 2]
    assert await store.list_packages("S2") == []
    stored = await store.get_package(digest)
    assert stored is not None and stored.summary == {"candidates": 5} and not stored.deleted_at


async def test_bytes_go_only_after_the_retention_date(
    store: CentralStorage, authority: Authority
) -> None:
    """Deletion waits for published results (+183 days); the entry stays, the bytes go."""
    data = make_package(new_venue("V1"), authority)
    await accepted(store, authority, data)
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(RetentionRefused, match="not published yet"):
        await store.delete_package(digest, START + timedelta(days=999))
    await store.set_results_published("S1", iso(START + timedelta(days=400)))
    await store.set_results_published("S1", T0)  # published again: the later call wins
    assert await store.results_published("S1") == T0
    assert await store.results_published("S9") is None
    await store.delete_package(digest, START + timedelta(days=183))
    with pytest.raises(StorageError, match="not held"):
        await store.package_data(digest)
    stored = await store.get_package(digest)
    assert stored is not None and stored.deleted_at is not None


async def test_releases_and_events_share_one_verified_chain(store: CentralStorage) -> None:
    """Releases are counted per session and venue, each audited; the chain verifies and every
    event links to the one before."""
    await store.record_release("S1", "V1", T0, T0)
    await store.record_release("S1", "V1", T0, T0)
    await store.record_release("S1", "V2", T0, T0)
    await store.audit("cli:test", "venue.registered", "venue:V3", {"n": 1}, T0)
    assert await store.release_counts() == {("S1", "V1"): 2, ("S1", "V2"): 1}
    events = await store.audit_events()
    assert verify_audit_records(events, "seq", LEGACY_CENTRAL_FORMAT) == 4
    assert [e["action"] for e in events] == ["release.served"] * 3 + ["venue.registered"]
    assert events[-1]["details"] == {"n": 1} and events[0]["actor"] == "venue:V1"


async def test_staff_accounts_logins_and_failures(store: CentralStorage) -> None:
    """A login name is unique; failures come newest first and at most `limit`, and a login
    clears them; a session is found until it expires, ends or its account is disabled."""
    account = await store.add_staff("op", "Op", "operator", "hash", "cli:test", T0)
    with pytest.raises(StaffError, match="already exists"):
        await store.add_staff("op", "Other", "auditor", "hash", "cli:test", T0)
    for minute in range(3):
        at = iso(START + timedelta(minutes=minute))
        await store.record_login_failure("op", "10.0.0.1", at, T0)
    state = await store.login_state("op", "10.0.0.1", T0, 2)
    assert state.account == account and state.password_hash == "hash"
    assert state.login_failures == [
        iso(START + timedelta(minutes=2)),
        iso(START + timedelta(minutes=1)),
    ]
    assert state.remote_failures == state.login_failures
    expires = iso(START + timedelta(hours=8))
    await store.open_staff_session(account, "tok", "csrf", "10.0.0.1", T0, expires)
    assert (await store.login_state("op", "10.0.0.2", T0, 5)).login_failures == []
    assert await store.find_staff_session("tok", T0) == (account, "csrf")
    assert await store.find_staff_session("tok", expires) is None  # expired
    await store.end_staff_session("tok", account, T0)
    assert await store.find_staff_session("tok", T0) is None
    await store.open_staff_session(account, "tok2", "csrf", "10.0.0.1", T0, expires)
    await store.disable_staff("op", "left", "cli:test", T0)
    assert await store.find_staff_session("tok2", T0) is None
    assert (await store.login_state("op", "x", T0, 5)).account is None
    with pytest.raises(StaffError, match="already disabled"):
        await store.disable_staff("op", "again", "cli:test", T0)
    with pytest.raises(StaffError, match="no staff account"):
        await store.disable_staff("nobody", "x", "cli:test", T0)
    assert [(s.login, s.active) for s in await store.list_staff()] == [("op", False)]
    actions = [e["action"] for e in await store.audit_events()]
    assert actions == ["staff.added"] + ["staff.login_failed"] * 3 + [
        "staff.login", "staff.logout", "staff.login", "staff.disabled"
    ]  # fmt: skip
