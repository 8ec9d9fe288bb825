"""Packing and the full round trip: pack, verify, k shares and the release, unlock."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import stat
from pathlib import Path

import pytest

from paperpack.authority import read_authority_public
from paperpack.canonical import canonical_json
from paperpack.crypto import unwrap
from paperpack.errors import SessionInvalid
from paperpack.model import Asset, paper_from_dict, paper_to_dict
from paperpack.pack import (
    PAYLOAD_MAGIC,
    PackError,
    central_context,
    iter_payload,
    pack_session,
)
from paperpack.package import open_package
from paperpack.release import issue_release
from paperpack.session import session_from_dict
from paperpack.unlock import Unlock
from tests.paperpack.sealing_fixtures import (
    ACCEPTED_ANSWERS,
    IN_WINDOW,
    KEYED_OPTION,
    PASS_MARK,
    START,
    Packed,
    keyed_paper,
    pack_for,
    session_data,
    venue_data,
)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    return pack_for(tmp_path_factory.mktemp("pack"))


def without_keys(paper):  # type: ignore[no-untyped-def]
    return paper_from_dict(paper_to_dict(paper, with_keys=False))


def unlock_with(packed: Packed, holders: tuple[int, ...], venue_id: str = "V1", opened=None):  # type: ignore[no-untyped-def]
    opened = opened or open_package(packed.package(venue_id), packed.authority.signing_public)
    unlock = Unlock(opened, packed.venue_keys[venue_id], IN_WINDOW)
    for holder in holders:
        unlock.add_share(packed.card(holder, venue_id), f"login-{holder}")
    unlock.add_release(
        issue_release(packed.authority, packed.session.session_id, venue_id).code, IN_WINDOW
    )
    return unlock.open(IN_WINDOW)


def test_every_three_of_five_shares_with_every_rebuilding_fragment_set_opens(
    packed: Packed,
) -> None:
    """Any 3 of the 5 share cards and any 3, 4 or 5 of the 5 fragments give the exact paper."""
    opened = open_package(packed.package(), packed.authority.signing_public)
    expected = without_keys(packed.paper)
    fragment_sets = [c for size in (3, 4, 5) for c in itertools.combinations(range(5), size)]
    for holders in itertools.combinations(range(1, 6), 3):
        for present in fragment_sets:
            subset = dataclasses.replace(
                opened, fragments={i: opened.fragments[i] for i in present}
            )
            unlocked = unlock_with(packed, holders, opened=subset)
            assert unlocked.paper == expected, (holders, present)


def test_unlock_yields_the_variant_secret_and_rules(packed: Packed) -> None:
    """The unlocked paper comes with a 32-byte variant secret and the session's rules."""
    unlocked = unlock_with(packed, (1, 2, 3))
    assert len(unlocked.variant_secret) == 32
    assert unlocked.rules == {}
    assert unlocked.manifest.venue_id == "V1"


def test_missing_fragment_files_within_tolerance_still_open(tmp_path: Path) -> None:
    """With 2 of 5 fragment files deleted the package verifies and opens."""
    packed = pack_for(tmp_path, ("V1",))
    for index in (0, 3):
        (packed.package() / f"fragment-{index:03d}.cbtf").unlink()
    opened = open_package(packed.package(), packed.authority.signing_public)
    assert opened.missing == [0, 3]
    assert unlock_with(packed, (2, 4, 5), opened=opened).paper == without_keys(packed.paper)


@pytest.mark.parametrize(("m", "rebuild"), [(1, 1), (3, 2), (4, 4), (7, 3)])
def test_multi_chunk_payload_round_trips(tmp_path: Path, m: int, rebuild: int) -> None:
    """Many 1 KiB chunks and three assets rebuild from the last `rebuild` of `m` fragments."""
    media = (
        Asset("z-chart.png", "image/png", os.urandom(20_000)),
        Asset("a-photo.jpg", "image/jpeg", os.urandom(15_000)),
        Asset("m-clip.mp3", "audio/mpeg", os.urandom(9_000)),
    )
    paper = dataclasses.replace(keyed_paper(), assets=media)
    authority_dir = tmp_path
    from tests.paperpack.sealing_fixtures import generate_wrapping_key, make_authority

    authority = make_authority(authority_dir)
    key = generate_wrapping_key()
    session = session_from_dict(
        session_data([venue_data("V1", key, n=3, k=2, m=m, rebuild=rebuild)])
    )
    (pack,) = pack_session(paper, session, authority, tmp_path / "out", chunk_size=1024)
    assert pack.manifest.payload["chunks"] > 30
    packed = Packed(tmp_path, authority, session, paper, {"V1": key}, {"V1": pack})
    opened = open_package(pack.package_dir, authority.signing_public)
    last = dict(list(opened.fragments.items())[-rebuild:])
    opened = dataclasses.replace(opened, fragments=last)
    assert unlock_with(packed, (3, 1), opened=opened).paper == without_keys(paper)


def test_payload_is_a_canonical_head_then_the_raw_assets(packed: Packed) -> None:
    """The payload: magic, head length, canonical JSON of the keyless paper, asset bytes."""
    raw = packed.packs["V1"].manifest.raw
    payload = b"".join(iter_payload(packed.paper, raw, bytes(32)))
    assert payload.startswith(PAYLOAD_MAGIC)
    length = int.from_bytes(payload[8:16], "big")
    head = json.loads(payload[16 : 16 + length])
    assert canonical_json(head) == payload[16 : 16 + length]
    assert head["paper"] == paper_to_dict(packed.paper, with_keys=False, with_assets=False)
    assert head["assets"] == [{"media_type": "image/png", "name": "chart.png", "size": 2056}]
    assert payload[16 + length :] == packed.paper.assets[0].data
    assert len(payload) == raw["payload"]["plain_size"]


def test_no_answer_key_is_in_the_package_or_the_decrypted_paper(packed: Packed) -> None:
    """Accepted answers, the keyed option and the pass mark appear in no venue file or payload."""
    needles = [a.encode() for a in ACCEPTED_ANSWERS] + [str(PASS_MARK).encode()]
    venue_files = [p for p in (packed.root / "out").rglob("*") if p.is_file()]
    assert venue_files
    for path in venue_files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, (path, needle)
    decrypted = paper_to_dict(unlock_with(packed, (1, 4, 5)).paper, with_keys=True)
    text = canonical_json(decrypted)
    for needle in needles:
        assert needle not in text
    items = [i for s in decrypted["sections"] for i in s["items"]]
    assert all(not i.get("key") for i in items)
    assert all(not b.get("accepted") for i in items for b in i.get("blanks", []))
    assert "pass_mark" not in decrypted
    assert KEYED_OPTION.encode() in text  # the option itself is shown, only its keyness is not


def test_central_answer_key_record_opens_only_with_the_authority_key(packed: Packed) -> None:
    """The answer-key record in the authority directory holds the keyed paper."""
    central = packed.authority.central_dir(packed.session.session_id, "V1")
    blob = (central / "answer-keys.sealed").read_bytes()
    doc = json.loads(
        bytes(
            unwrap(
                packed.authority.wrapping_key,
                blob,
                context=central_context("answer-keys", packed.session.session_id, "V1"),
            )
        )
    )
    assert doc["paper"]["pass_mark"] == PASS_MARK
    assert doc["paper"]["sections"][0]["items"][3]["blanks"][0]["accepted"] == list(
        ACCEPTED_ANSWERS
    )
    assert stat.S_IMODE((central / "secrets.sealed").stat().st_mode) == 0o600


def test_share_cards_are_private_files_one_per_holder(packed: Packed) -> None:
    """Each venue gets n share cards, mode 0600, each naming its holder number."""
    cards = sorted(packed.packs["V1"].shares_dir.iterdir())
    assert [c.name for c in cards] == [f"holder-{i}.txt" for i in range(1, 6)]
    assert all(stat.S_IMODE(c.stat().st_mode) == 0o600 for c in cards)


def test_pack_refuses_a_paper_of_another_subject(tmp_path: Path) -> None:
    """Art. 24: a paper whose subject differs from the session's is not packed."""
    paper = dataclasses.replace(keyed_paper(), subject_code="99")
    with pytest.raises(PackError, match="subject 99"):
        pack_for(tmp_path, ("V1",), paper=paper)


def test_pack_refuses_a_duration_that_disagrees_with_the_paper(tmp_path: Path) -> None:
    """A session duration different from the paper's is refused, naming both."""
    with pytest.raises(PackError, match="120 minutes, the paper 150"):
        pack_for(tmp_path, ("V1",), duration_minutes=120)


def test_repacking_needs_a_higher_manifest_version(tmp_path: Path) -> None:
    """The centre refuses to re-pack a venue without raising manifest_version."""
    first = pack_for(tmp_path / "a", ("V1",))
    with pytest.raises(PackError, match="raise manifest_version"):
        pack_for(tmp_path / "b", ("V1",), authority=first.authority)
    again = pack_for(tmp_path / "c", ("V1",), authority=first.authority, manifest_version=2)
    assert again.packs["V1"].manifest.manifest_version == 2


def test_pack_refuses_to_overwrite_an_existing_venue_directory(packed: Packed) -> None:
    """Packing into an output that already holds the venue is refused."""
    session = dataclasses.replace(packed.session, manifest_version=5)
    with pytest.raises(PackError, match="already exists"):
        pack_session(packed.paper, session, packed.authority, packed.root / "out")


def test_session_defaults_open_the_window_60_minutes_before_and_close_30_after() -> None:
    """Without a window section the unlock window is start-60 min .. start+30 min."""
    from paperpack.crypto import generate_wrapping_key

    session = session_from_dict(session_data([venue_data("V1", generate_wrapping_key())]))
    assert (START - session.not_before).total_seconds() == 3600
    assert (session.not_after - START).total_seconds() == 1800
    assert session.manifest_version == 1


def test_session_file_reports_every_problem_by_field() -> None:
    """A bad session file lists each problem with the field it is in."""
    from paperpack.crypto import generate_wrapping_key

    venue = venue_data("V1", generate_wrapping_key(), n=3, k=4)
    venue["public_key"] = "not a key"
    data = session_data(
        [venue, {"id": "V1"}], start="2026-11-07T09:00:00", rules={"entry_cutof_minutes": 3}
    )
    with pytest.raises(SessionInvalid) as caught:
        session_from_dict(data)
    text = "\n".join(caught.value.problems)
    assert "start: must carry a time zone" in text
    assert "venues[V1].threshold: 4 is more than the 3 supervisors" in text
    assert "venues[V1].public_key" in text
    assert "rules.entry_cutof_minutes: unknown rule" in text
    assert "venues[V1].supervisors: required" in text


def test_example_session_file_is_valid() -> None:
    """examples/session.yaml loads and matches the example paper's subject."""
    from paperpack.session import load_session
    from tests.conftest import EXAMPLES

    session = load_session(EXAMPLES / "session.yaml")
    assert session.subject_code == "27"
    assert [v.threshold for v in session.venues] == [3, 2]


def test_cli_authority_pack_verify_inspect_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands run end to end: authority init, pack, verify, inspect, release."""
    import yaml

    from paperpack.cli import main
    from paperpack.crypto import generate_wrapping_key
    from paperpack.paperfile import dump_paper

    (tmp_path / "pass").write_text("correct horse battery staple\n")
    assert (
        main(
            [
                "authority",
                "init",
                str(tmp_path / "auth"),
                "--passphrase-file",
                str(tmp_path / "pass"),
            ]
        )
        == 0
    )
    assert stat.S_IMODE((tmp_path / "auth" / "signing.key").stat().st_mode) == 0o600
    assert b"ENCRYPTED" in (tmp_path / "auth" / "signing.key").read_bytes()
    paper = keyed_paper()
    dump_paper(paper, tmp_path / "paper.yaml")
    venue_key = generate_wrapping_key()
    session = session_data([venue_data("V1", venue_key)])
    (tmp_path / "session.yaml").write_text(yaml.safe_dump(session))
    pack_args = ["pack", str(tmp_path / "paper.yaml"), "--session", str(tmp_path / "session.yaml"),
                 "--authority", str(tmp_path / "auth"), "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(pack_args) == 1
    assert "passphrase-protected: pass --passphrase-file" in capsys.readouterr().err
    assert main([*pack_args, "--passphrase-file", str(tmp_path / "pass")]) == 0
    package = tmp_path / "out" / "V1" / "package"
    assert (
        main(["verify", str(package), "--authority-pub", str(tmp_path / "auth" / "signing.pub")])
        == 0
    )
    assert "OK:" in capsys.readouterr().out
    assert main(["inspect", str(package)]) == 0
    shown = capsys.readouterr().out
    assert "any 3 of 5 rebuild" in shown and "3 of 5 supervisors" in shown
    auth, passphrase, rel = str(tmp_path / "auth"), str(tmp_path / "pass"), str(tmp_path / "rel")
    release_args = ["release", "S-2026-27", "V1", "--authority", auth,
                    "--passphrase-file", passphrase, "--out", rel]  # fmt: skip
    assert main(release_args) == 1  # the test session's window (November 2026) is past
    assert "only inside its unlock window" in capsys.readouterr().err
    assert main([*release_args, "--force", "--reason", "test of the CLI"]) == 0
    code = capsys.readouterr().out.splitlines()[1].strip()
    opened = open_package(package, read_authority_public(tmp_path / "auth"))
    unlock = Unlock(opened, venue_key, IN_WINDOW)
    for holder in (1, 2, 5):
        unlock.add_share(
            (tmp_path / "out" / "V1" / "shares" / f"holder-{holder}.txt").read_text(), f"u{holder}"
        )
    unlock.add_release(code, IN_WINDOW)
    assert unlock.open(IN_WINDOW).paper == without_keys(paper)
    record = (tmp_path / "rel" / "release-S-2026-27-V1.json").read_text()
    unlock.add_release(record, IN_WINDOW)
    assert main(["release", "S-2026-27", "NOPE", *release_args[3:]]) == 1
    assert "venue NOPE is not in session S-2026-27" in capsys.readouterr().err


def test_packing_allocates_per_chunk_not_per_paper(tmp_path: Path) -> None:
    """Sealing 24 MiB of media allocates a few chunks' worth of memory, not the paper's size."""
    import tracemalloc

    from tests.paperpack.sealing_fixtures import generate_wrapping_key, make_authority

    media = tuple(Asset(f"m{i}.jpg", "image/jpeg", os.urandom(4 << 20)) for i in range(6))
    paper = dataclasses.replace(keyed_paper(), assets=media)
    authority = make_authority(tmp_path)
    session = session_from_dict(session_data([venue_data("V1", generate_wrapping_key())]))
    tracemalloc.start()
    try:
        pack_session(paper, session, authority, tmp_path / "out", chunk_size=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20, f"peak {peak / 2**20:.1f} MiB for 24 MiB of media"
