"""The unlock object: shares checked on entry, the release, the window, zeroised secrets."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from paperpack.crypto import generate_wrapping_key
from paperpack.errors import (
    OutsideWindow,
    PayloadCorrupt,
    ReleaseRejected,
    SignatureInvalid,
    UnlockIncomplete,
    WrongVenue,
)
from paperpack.package import open_package
from paperpack.release import ReleaseError, issue_release
from paperpack.sharecards import DuplicateShare, ShareRejected
from paperpack.typable import Mistyped
from paperpack.unlock import Unlock, reopen
from tests.paperpack.sealing_fixtures import IN_WINDOW, START, Packed, pack_for


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    return pack_for(tmp_path_factory.mktemp("unlock"))


def new_unlock(packed: Packed, venue_id: str = "V1", now=IN_WINDOW) -> Unlock:  # type: ignore[no-untyped-def]
    opened = open_package(packed.package(venue_id), packed.authority.signing_public)
    return Unlock(opened, packed.venue_keys[venue_id], now)


def code(packed: Packed, venue_id: str = "V1") -> str:
    return issue_release(packed.authority, packed.session.session_id, venue_id).code


def test_progress_counts_shares_towards_the_threshold(packed: Packed) -> None:
    """Progress reads 'n of k' as shares are entered."""
    unlock = new_unlock(packed)
    assert unlock.progress == "0 of 3"
    unlock.add_share(packed.card(2), "alice")
    unlock.add_share(packed.card(4), "bob")
    assert unlock.progress == "2 of 3"
    assert unlock.holders_entered == [2, 4]


def test_k_minus_one_shares_do_not_open(packed: Packed) -> None:
    """With 2 of 3 shares and the release, open is refused as incomplete."""
    unlock = new_unlock(packed)
    unlock.add_share(packed.card(1), "alice")
    unlock.add_share(packed.card(2), "bob")
    unlock.add_release(code(packed), IN_WINDOW)
    with pytest.raises(UnlockIncomplete, match="2 of 3 shares entered"):
        unlock.open(IN_WINDOW)


def test_shares_without_the_release_do_not_open(packed: Packed) -> None:
    """Three shares but no time release: refused, saying the release is missing."""
    unlock = new_unlock(packed)
    for holder, login in ((1, "a"), (2, "b"), (3, "c")):
        unlock.add_share(packed.card(holder), login)
    with pytest.raises(UnlockIncomplete, match="time release is missing"):
        unlock.open(IN_WINDOW)


def test_the_same_share_twice_is_refused(packed: Packed) -> None:
    """A holder's share entered again (even by another login) counts once and is refused."""
    unlock = new_unlock(packed)
    unlock.add_share(packed.card(3), "alice")
    with pytest.raises(DuplicateShare, match="holder 3 is already entered") as caught:
        unlock.add_share(packed.card(3), "bob")
    assert caught.value.holder == 3


def test_one_login_cannot_enter_two_shares(packed: Packed) -> None:
    """Art. 23: each share is entered by a distinct, separately logged-in supervisor."""
    unlock = new_unlock(packed)
    unlock.add_share(packed.card(1), "alice")
    with pytest.raises(DuplicateShare, match="login alice already entered"):
        unlock.add_share(packed.card(2), "alice")
    assert unlock.progress == "1 of 3"


def test_a_share_of_another_venue_is_rejected_naming_its_holder(packed: Packed) -> None:
    """V2's card 4 entered at V1 is rejected on entry, naming holder 4."""
    unlock = new_unlock(packed)
    with pytest.raises(ShareRejected, match="holder 4 belongs to another set") as caught:
        unlock.add_share(packed.card(4, "V2"), "alice")
    assert caught.value.holder == 4


def test_a_mistyped_share_names_the_group(packed: Packed) -> None:
    """One wrong character in a typed share is caught by its group's check."""
    card = packed.card(1)
    lines = card.splitlines()
    begin = next(i for i, line in enumerate(lines) if "BEGIN SHARE CODE" in line)
    row = lines[begin + 1]
    head, groups = row.split(":", 1)
    first = groups.split()[1]
    wrong = ("1" if first[0] != "1" else "2") + first[1:]
    lines[begin + 1] = f"{head}:{groups.replace(first, wrong, 1)}"
    with pytest.raises(Mistyped, match="group 2 of"):
        new_unlock(packed).add_share("\n".join(lines), "alice")


def test_a_release_code_of_another_venue_is_rejected(packed: Packed) -> None:
    """V2's release code does not match V1's release commitment."""
    with pytest.raises(ReleaseRejected, match="not the release for session S-2026-27 at venue V1"):
        new_unlock(packed).add_release(code(packed, "V2"), IN_WINDOW)


def test_a_release_record_of_another_venue_is_rejected(packed: Packed) -> None:
    """A signed record for V2 entered at V1 names the venue it is for."""
    record = issue_release(packed.authority, packed.session.session_id, "V2").record
    with pytest.raises(ReleaseRejected, match="for venue V2, not V1"):
        new_unlock(packed).add_release(json.dumps(record), IN_WINDOW)


def test_a_release_record_of_another_session_is_rejected(packed: Packed) -> None:
    """A record naming another session is refused, even if signed."""
    from paperpack.canonical import canonical_json
    from paperpack.crypto import sign

    record = issue_release(packed.authority, packed.session.session_id, "V1").record
    body = {k: v for k, v in record.items() if k != "signature"} | {"session_id": "S-OTHER"}
    signed = sign(packed.authority.signing_key, "release-record", canonical_json(body))
    signature = base64.b64encode(signed).decode()
    with pytest.raises(ReleaseRejected, match="for session S-OTHER, not S-2026-27"):
        new_unlock(packed).add_release({**body, "signature": signature}, IN_WINDOW)


def test_a_release_record_with_a_bad_signature_is_refused(packed: Packed) -> None:
    """Changing any field of a signed record breaks its signature."""
    record = issue_release(packed.authority, packed.session.session_id, "V1").record
    record["issued_at"] = "2020-01-01T00:00:00+00:00"
    with pytest.raises(SignatureInvalid, match="release record is not signed"):
        new_unlock(packed).add_release(record, IN_WINDOW)


def test_a_release_outside_the_window_is_refused(packed: Packed) -> None:
    """The release is refused before the window opens and once it has closed."""
    unlock = new_unlock(packed)
    with pytest.raises(OutsideWindow, match="before the unlock window opens"):
        unlock.add_release(code(packed), now=START - timedelta(minutes=61))
    with pytest.raises(OutsideWindow, match="window closed"):
        unlock.add_release(code(packed), now=START + timedelta(minutes=30))
    unlock.add_release(code(packed), now=START + timedelta(minutes=29, seconds=59))
    assert unlock.has_release


def test_unlock_cannot_start_or_open_outside_the_window(packed: Packed) -> None:
    """Starting before not_before, or opening at not_after, raises OutsideWindow."""
    with pytest.raises(OutsideWindow):
        new_unlock(packed, now=START - timedelta(minutes=60, milliseconds=1))
    unlock = new_unlock(packed, now=START - timedelta(minutes=60))
    for holder, login in ((1, "a"), (2, "b"), (3, "c")):
        unlock.add_share(packed.card(holder), login)
    unlock.add_release(code(packed), IN_WINDOW)
    with pytest.raises(OutsideWindow, match="closed"):
        unlock.open(START + timedelta(minutes=30))
    assert unlock.open(START + timedelta(minutes=29)).paper.paper_id == "P-TEST"


def test_the_wrong_venue_key_cannot_start_an_unlock(packed: Packed) -> None:
    """A package opened on a server with another key fails with WrongVenue."""
    opened = open_package(packed.package(), packed.authority.signing_public)
    with pytest.raises(WrongVenue, match="sealed to another venue server's key"):
        Unlock(opened, generate_wrapping_key(), IN_WINDOW)
    with pytest.raises(WrongVenue):
        Unlock(opened, packed.venue_keys["V2"], IN_WINDOW)


def test_close_overwrites_the_device_and_time_secrets(packed: Packed) -> None:
    """After close the held secrets are zero bytes."""
    unlock = new_unlock(packed)
    unlock.add_release(code(packed), IN_WINDOW)
    device, time_secret = unlock._s_dev, unlock._s_time
    unlock.close()
    assert device == bytearray(len(device)) and time_secret == bytearray(len(time_secret or b""))


def test_the_centre_refuses_a_release_only_for_unknown_session_or_venue(packed: Packed) -> None:
    """issue_release names an unknown session or venue; a known one always issues."""
    with pytest.raises(ReleaseError, match="session NOPE was never packed"):
        issue_release(packed.authority, "NOPE", "V1")
    with pytest.raises(ReleaseError, match="venue V9 is not in session"):
        issue_release(packed.authority, packed.session.session_id, "V9")
    assert len(code(packed).split("-")) >= 5


def test_open_overwrites_the_secrets_and_cannot_run_twice(packed: Packed) -> None:
    """After the paper is opened the held secrets are zero and a second open is refused."""
    unlock = new_unlock(packed)
    for holder, login in ((2, "a"), (3, "b"), (5, "c")):
        unlock.add_share(packed.card(holder), login)
    unlock.add_release(code(packed), IN_WINDOW)
    device, time_secret = unlock._s_dev, unlock._s_time
    assert unlock.open(IN_WINDOW).paper.paper_id == "P-TEST"
    assert device == bytearray(32) and time_secret == bytearray(16)
    with pytest.raises(UnlockIncomplete, match="already opened"):
        unlock.open(IN_WINDOW)


def opened_and_sealed(packed: Packed, venue_id: str = "V1") -> tuple[Any, bytes]:
    unlock = new_unlock(packed, venue_id)
    for holder, login in ((1, "a"), (2, "b"), (3, "c")):
        unlock.add_share(packed.card(holder, venue_id), login)
    unlock.add_release(code(packed, venue_id), IN_WINDOW)
    public = packed.venue_keys[venue_id].public_key()
    unlocked = unlock.open(IN_WINDOW, seal_to=public)
    assert unlocked.sealed_key is not None
    return unlocked, unlocked.sealed_key


def test_the_paper_reopens_from_its_key_sealed_to_this_machine(packed: Packed) -> None:
    """The sealed key opens the same paper again on this machine, outside the window too;
    without `seal_to` nothing is sealed."""
    unlocked, sealed = opened_and_sealed(packed)
    assert sealed.startswith(b"CBTW\x02")  # the HPKE wrap of paperpack.crypto
    opened = open_package(packed.package("V1"), packed.authority.signing_public)
    again = reopen(opened, packed.venue_keys["V1"], sealed)
    assert again.paper == unlocked.paper and again.variant_secret == unlocked.variant_secret
    plain = new_unlock(packed)
    for holder, login in ((1, "a"), (2, "b"), (3, "c")):
        plain.add_share(packed.card(holder), login)
    plain.add_release(code(packed), IN_WINDOW)
    assert plain.open(IN_WINDOW).sealed_key is None


def test_a_sealed_key_opens_nothing_elsewhere(packed: Packed) -> None:
    """Another machine's key, another venue's package, or one flipped byte: PayloadCorrupt."""
    _, sealed = opened_and_sealed(packed)
    opened = open_package(packed.package("V1"), packed.authority.signing_public)
    with pytest.raises(PayloadCorrupt, match="does not open on this machine"):
        reopen(opened, generate_wrapping_key(), sealed)
    other = open_package(packed.package("V2"), packed.authority.signing_public)
    with pytest.raises(PayloadCorrupt, match="does not open on this machine"):
        reopen(other, packed.venue_keys["V2"], sealed)
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(PayloadCorrupt, match="does not open on this machine"):
        reopen(opened, packed.venue_keys["V1"], bytes(flipped))
