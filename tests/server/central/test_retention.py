"""Retention (art. 23(7)): a package cannot be deleted before its retention date."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from datetime import timedelta
from functools import partial
from pathlib import Path

import aiohttp
import pytest

from paperpack.authority import Authority
from server.central.settings import init_central
from server.central.sqlite_store import SqliteStorage
from server.central.storage import PackageEntry, RetentionRefused, retention_until
from server.clock import iso
from server.protocol.receipts import sign_receipt
from server.venue.upload import upload_package
from tests.server.central.conftest import START, Central, make_package, new_venue, sample_contents

RESULTS = START + timedelta(days=30)


async def accepted(central: Central, authority: Authority, serious: bool = False) -> str:
    venue = new_venue("V1")
    await central.register(venue)
    contents = sample_contents("S1", "V1", 3)
    if serious:
        contents["violations"] = [{"ticket": "T1", "kind": "impersonation", "serious": True}]
    data = make_package(venue, authority, contents=contents)
    async with aiohttp.ClientSession() as http:
        result = await upload_package(
            http, central.url, data, authority.signing_public, **central.signer(data)
        )
    return result.package_sha256


async def test_nothing_is_deleted_before_results_are_published(
    central: Central, authority: Authority
) -> None:
    """Without a results date the retention date is unknown, so deletion is refused."""
    digest = await accepted(central, authority)
    with pytest.raises(RetentionRefused, match="not published yet"):
        await central.storage.delete_package(digest, START + timedelta(days=3650))
    assert await central.storage.package_data(digest)


async def test_six_months_after_results_and_not_a_day_earlier(
    central: Central, authority: Authority
) -> None:
    """A plain package is kept 6 months after results; the refusal names the date."""
    digest = await accepted(central, authority)
    await central.storage.set_results_published("S1", iso(RESULTS))
    until = retention_until(RESULTS, False)
    assert until is not None
    with pytest.raises(RetentionRefused, match=until.isoformat()[:10]):
        await central.storage.delete_package(digest, until - timedelta(seconds=1))
    await central.storage.delete_package(digest, until)
    stored = await central.storage.get_package(digest)
    assert stored is not None and stored.deleted_at is not None
    assert stored.log_position == 1  # the log entry stays; only the bytes go


async def test_a_serious_violation_keeps_the_package_five_years(
    central: Central, authority: Authority
) -> None:
    """With a serious violation attached, deletion after 6 months is refused until 5 years."""
    digest = await accepted(central, authority, serious=True)
    await central.storage.set_results_published("S1", iso(RESULTS))
    with pytest.raises(RetentionRefused, match="5 years"):
        await central.storage.delete_package(digest, RESULTS + timedelta(days=400))
    await central.storage.delete_package(digest, RESULTS + timedelta(days=5 * 366))


def test_the_cli_refuses_deletion_until_the_retention_date(
    tmp_path: Path, authority: Authority, authority_dir: Path
) -> None:
    """`cbt central delete` refuses before results (+6 months) and deletes after, in one line."""
    init_central(tmp_path / "c", authority_dir)
    venue = new_venue("V1")
    data = make_package(venue, authority)
    digest = hashlib.sha256(data).hexdigest()

    async def accept() -> None:
        storage = SqliteStorage(tmp_path / "c" / "central.db")
        await storage.open()
        await storage.add_venue(venue.record())
        await storage.create_upload(digest, "V1", len(data), iso(START))
        await storage.append_chunk(digest, 0, data, iso(START))
        entry = PackageEntry(digest, "S1", "V1", 1, len(data), False, {})
        await storage.accept_package(
            entry, partial(sign_receipt, authority.signing_key), iso(START)
        )
        await storage.close()

    asyncio.run(accept())

    def cbt(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "server.cli", "central", *args, str(tmp_path / "c")]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    refused = cbt("delete", "--package", digest)
    assert refused.returncode == 1 and "not published yet" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (
        cbt("results", "--session", "S1", "--published-at", "2020-01-01T00:00:00+00:00").returncode
        == 0
    )
    deleted = cbt("delete", "--package", digest)
    assert deleted.returncode == 0, deleted.stderr
