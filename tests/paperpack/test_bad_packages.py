"""The bad-package kit: one case per attack, each refused with its exact typed error.

The kit is built at test time from real packs (see tests/vectors/packages/README.md for the
table of cases). Package-level attacks are refused by `open_package`, which holds no key
material, so nothing is decrypted; `paperpack verify` prints the same reason on one line.
Unlock-level attacks (shares, releases, keys, the bomb) are refused by the unlock object.
Parsers are fuzzed (bounded Hypothesis runs) and may raise only the project's own errors.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperpack.canonical import canonical_json
from paperpack.cli import main
from paperpack.crypto import generate_signing_key, public_key_text, sign
from paperpack.errors import (
    DecompressionBomb,
    FragmentCorrupt,
    ManifestInvalid,
    ManifestRolledBack,
    OutsideWindow,
    PackageInvalid,
    PaperpackError,
    ReleaseRejected,
    SignatureInvalid,
    TooFewFragments,
    UnlockIncomplete,
    WrongSession,
    WrongVenue,
)
from paperpack.fragments import parse_header
from paperpack.manifest import parse_manifest, signature_text
from paperpack.pack import pack_venue, sign_manifest
from paperpack.package import check_fragment, open_package, read_manifest_unverified
from paperpack.release import issue_release, parse_record
from paperpack.sharecards import DuplicateShare, ShareRejected
from paperpack.typable import Mistyped
from paperpack.unlock import Unlock
from tests.paperpack.sealing_fixtures import IN_WINDOW, START, Packed, keyed_paper, pack_for

FRAGMENT = "fragment-001.cbtf"


@dataclass(repr=False)
class Kit:
    """The real packs the attacks start from."""

    base: Packed  # session S-2026-27, venues V1 and V2, manifest version 1
    other_session: Packed  # session S-OTHER, venue V1, another authority
    newer: Packed  # S-2026-27 / V1 packed again as manifest version 2 (its own authority)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    root = tmp_path_factory.mktemp("kit")
    base = pack_for(root / "base")
    other = pack_for(root / "other", ("V1",), session_id="S-OTHER")
    newer = pack_for(root / "newer", ("V1",), manifest_version=2)
    return Kit(base, other, newer)


# --- package-level attacks: refused by open_package and `paperpack verify` -----------------


def flip(offset: int | Callable[[bytes], int], name: str = FRAGMENT) -> Callable[[Path, Kit], None]:
    def mutate(package: Path, kit: Kit) -> None:
        data = bytearray((package / name).read_bytes())
        at = offset(bytes(data)) if callable(offset) else offset
        data[at] ^= 0x01
        (package / name).write_bytes(bytes(data))

    return mutate


def session_byte(data: bytes) -> int:
    return 28  # after the 27 fixed header bytes and the session length byte


def venue_byte(data: bytes) -> int:
    return 28 + data[27] + 1


def truncate(package: Path, kit: Kit) -> None:
    data = (package / FRAGMENT).read_bytes()
    (package / FRAGMENT).write_bytes(data[:-10])


def remove(*indexes: int) -> Callable[[Path, Kit], None]:
    def mutate(package: Path, kit: Kit) -> None:
        for index in indexes:
            (package / f"fragment-{index:03d}.cbtf").unlink()

    return mutate


def foreign_fragment(source: Callable[[Kit], Path]) -> Callable[[Path, Kit], None]:
    def mutate(package: Path, kit: Kit) -> None:
        shutil.copyfile(source(kit) / FRAGMENT, package / FRAGMENT)

    return mutate


def swap(package: Path, kit: Kit) -> None:
    a, b = package / "fragment-001.cbtf", package / "fragment-002.cbtf"
    a.rename(package / "tmp")
    b.rename(a)
    (package / "tmp").rename(b)


def edit_manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[Path, Kit], None]:
    def mutate(package: Path, kit: Kit) -> None:
        raw = json.loads((package / "manifest.json").read_bytes())
        change(raw)
        (package / "manifest.json").write_bytes(canonical_json(raw))

    return mutate


def widen_window(raw: dict[str, Any]) -> None:
    raw["window"]["not_after"] = (START + timedelta(days=1)).isoformat()


def bump_version(raw: dict[str, Any]) -> None:
    raw["manifest_version"] = 99


def replace_hash(raw: dict[str, Any]) -> None:
    raw["fragments"]["hashes"][1] = "0" * 64


def bad_signature(package: Path, kit: Kit) -> None:
    signature = bytearray(base64.b64decode((package / "manifest.sig").read_text()))
    signature[10] ^= 0x01
    (package / "manifest.sig").write_text(signature_text(bytes(signature)))


def signed_by_another_key(package: Path, kit: Kit) -> None:
    other = generate_signing_key()
    raw = json.loads((package / "manifest.json").read_bytes())
    raw["authority"]["signing_key"] = public_key_text(other.public_key())
    data = canonical_json(raw)
    (package / "manifest.json").write_bytes(data)
    (package / "manifest.sig").write_text(signature_text(sign(other, "manifest", data)))


def unsigned(package: Path, kit: Kit) -> None:
    (package / "manifest.sig").unlink()


def nothing(package: Path, kit: Kit) -> None:
    """The unchanged package (for cases that differ only in how it is opened)."""


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Callable[[Path, Kit], None]
    error: type[PackageInvalid]
    message: str
    source: str = "base"  # which pack's V1 package to start from
    open_as: dict[str, Any] | None = None  # keyword arguments to open_package / verify


PACKAGE_CASES = [
    Case("fragment magic flipped", flip(0), FragmentCorrupt, "bad magic"),
    Case("fragment version flipped", flip(7), FragmentCorrupt, "format version 0 is not supported"),
    Case("fragment package id flipped", flip(8), FragmentCorrupt, "another package"),
    Case("fragment index flipped", flip(24), FragmentCorrupt, "holds fragment 0, not 1"),
    Case("fragment total flipped", flip(25), FragmentCorrupt, "header says 3 of 4"),
    Case("fragment needed flipped", flip(26), FragmentCorrupt, "header says 2 of 5"),
    Case("fragment session flipped", flip(session_byte), WrongSession, "belongs to session"),
    Case("fragment venue flipped", flip(venue_byte), WrongVenue, "belongs to venue"),
    Case("fragment body flipped", flip(lambda d: len(d) // 2 + 20), FragmentCorrupt, "SHA-256"),
    Case("fragment last byte flipped", flip(lambda d: len(d) - 1), FragmentCorrupt, "SHA-256"),
    Case("fragment truncated", truncate, FragmentCorrupt, "truncated or padded"),
    Case("too many fragments missing", remove(0, 2, 4), TooFewFragments, "only 2 of 5 fragments"),
    Case(
        "fragment of another venue",
        foreign_fragment(lambda k: k.base.package("V2")),
        WrongVenue,
        "belongs to venue 'V2', not V1",
    ),
    Case(
        "fragment of another session",
        foreign_fragment(lambda k: k.other_session.package()),
        WrongSession,
        "belongs to session 'S-OTHER'",
    ),
    Case(
        "fragment of an older pack",
        foreign_fragment(lambda k: k.base.package()),
        FragmentCorrupt,
        "another package",
        source="newer",
    ),
    Case("fragments swapped", swap, FragmentCorrupt, "swapped or renamed"),
    Case(
        "manifest window tampered",
        edit_manifest(widen_window),
        SignatureInvalid,
        "altered after signing",
    ),
    Case(
        "manifest version tampered",
        edit_manifest(bump_version),
        SignatureInvalid,
        "altered after signing",
    ),
    Case(
        "manifest fragment hash tampered",
        edit_manifest(replace_hash),
        SignatureInvalid,
        "altered after signing",
    ),
    Case("bad signature", bad_signature, SignatureInvalid, "does not verify"),
    Case(
        "signature by another key",
        signed_by_another_key,
        SignatureInvalid,
        "signed by another key",
    ),
    Case("unsigned manifest", unsigned, SignatureInvalid, "unsigned"),
    Case(
        "rolled-back manifest version",
        nothing,
        ManifestRolledBack,
        "older than version 2",
        open_as={"highest_seen_version": 2},
    ),
    Case(
        "package of another venue",
        nothing,
        WrongVenue,
        "for venue V1, not V2",
        open_as={"venue_id": "V2"},
    ),
    Case(
        "package of another session",
        nothing,
        WrongSession,
        "for session S-2026-27, not S-X",
        open_as={"session_id": "S-X"},
    ),
]


def source_of(case: Case, kit: Kit) -> Packed:
    return {"base": kit.base, "newer": kit.newer}[case.source]


def build_case(case: Case, kit: Kit, tmp_path: Path) -> Path:
    source = source_of(case, kit).package()
    package = tmp_path / "package"
    shutil.copytree(source, package)
    case.mutate(package, kit)
    return package


@pytest.mark.parametrize("case", PACKAGE_CASES, ids=lambda c: c.name)
def test_package_attack_is_refused_with_its_typed_error(
    case: Case, kit: Kit, tmp_path: Path
) -> None:
    """open_package raises exactly the case's error, with a message saying what is wrong."""
    package = build_case(case, kit, tmp_path)
    with pytest.raises(PackageInvalid) as caught:
        open_package(package, source_of(case, kit).authority.signing_public, **(case.open_as or {}))
    assert type(caught.value) is case.error
    assert case.message in str(caught.value)


@pytest.mark.parametrize("case", PACKAGE_CASES, ids=lambda c: c.name)
def test_verify_command_prints_the_problem_on_one_line(
    case: Case, kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`paperpack verify` exits 1 with one line `paperpack: error: <the reason>`."""
    package = build_case(case, kit, tmp_path)
    flags = {"highest_seen_version": "--highest-seen-version", "venue_id": "--venue"}
    flags["session_id"] = "--session"
    extra = [arg for key, value in (case.open_as or {}).items() for arg in (flags[key], str(value))]
    pub = str(source_of(case, kit).authority.directory / "signing.pub")
    assert main(["verify", str(package), "--authority-pub", pub, *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("paperpack: error: ") and case.message in err
    assert err.count("\n") == 1


def test_inspect_flags_a_corrupt_fragment(
    kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`paperpack inspect` lists every fragment and marks the corrupt one, exit 1."""
    package = build_case(PACKAGE_CASES[8], kit, tmp_path)
    assert main(["inspect", str(package)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert sum("  ok" in line for line in lines) == 4
    assert any(FRAGMENT in line and "BAD:" in line and "SHA-256" in line for line in lines)


def test_two_missing_fragments_are_within_tolerance(kit: Kit, tmp_path: Path) -> None:
    """With 3 of 5 fragments left the package still verifies (and unlock tests open it)."""
    package = build_case(Case("two missing", remove(0, 4), TooFewFragments, ""), kit, tmp_path)
    opened = open_package(package, kit.base.authority.signing_public)
    assert opened.missing == [0, 4]


# --- unlock-level attacks -----------------------------------------------------------------


def started(kit: Kit, holders: tuple[int, ...] = ()) -> Unlock:
    opened = open_package(kit.base.package(), kit.base.authority.signing_public)
    unlock = Unlock(opened, kit.base.venue_keys["V1"], IN_WINDOW)
    for holder in holders:
        unlock.add_share(kit.base.card(holder), f"login-{holder}")
    return unlock


def release_code(packed: Packed, venue_id: str = "V1") -> str:
    return issue_release(packed.authority, packed.session.session_id, venue_id).code


def mistype(card: str) -> str:
    lines = card.splitlines()
    row = next(i for i, line in enumerate(lines) if "BEGIN SHARE CODE" in line) + 1
    label, groups = lines[row].split(":", 1)
    first = groups.split()[0]
    lines[row] = (
        f"{label}:{groups.replace(first, first[:-1] + ('0' if first[-1] != '0' else '1'), 1)}"
    )
    return "\n".join(lines)


def test_share_of_another_set_is_rejected(kit: Kit) -> None:
    """A card of another session's set is rejected on entry, naming holder 2."""
    with pytest.raises(ShareRejected, match="holder 2 belongs to another set"):
        started(kit).add_share(kit.other_session.card(2), "alice")


def test_mistyped_share_is_caught_by_its_group(kit: Kit) -> None:
    """One wrong check character makes group 1 fail."""
    with pytest.raises(Mistyped, match="group 1 of"):
        started(kit).add_share(mistype(kit.base.card(1)), "alice")


def test_duplicate_share_is_refused(kit: Kit) -> None:
    """The same card twice counts once."""
    with pytest.raises(DuplicateShare):
        started(kit, (1,)).add_share(kit.base.card(1), "bob")


def test_k_minus_one_shares_are_refused(kit: Kit) -> None:
    """Two of three shares and the release do not open the paper."""
    unlock = started(kit, (1, 2))
    unlock.add_release(release_code(kit.base), IN_WINDOW)
    with pytest.raises(UnlockIncomplete):
        unlock.open(IN_WINDOW)


@pytest.mark.parametrize("which", ["venue", "session"])
def test_release_of_another_venue_or_session_is_refused(kit: Kit, which: str) -> None:
    """Codes for V2, or for another session's V1, fail the release commitment."""
    other = release_code(kit.base, "V2") if which == "venue" else release_code(kit.other_session)
    with pytest.raises(ReleaseRejected, match="belongs to another venue, session or package"):
        started(kit).add_release(other, IN_WINDOW)


def test_release_outside_the_window_is_refused(kit: Kit) -> None:
    """A release entered after the window closed raises OutsideWindow."""
    with pytest.raises(OutsideWindow):
        started(kit).add_release(release_code(kit.base), now=START + timedelta(hours=2))


def test_wrong_venue_key_is_refused(kit: Kit) -> None:
    """V1's package on V2's server raises WrongVenue before any share is taken."""
    opened = open_package(kit.base.package(), kit.base.authority.signing_public)
    with pytest.raises(WrongVenue):
        Unlock(opened, kit.base.venue_keys["V2"], IN_WINDOW)


def test_decompression_bomb_is_refused_after_authentication(tmp_path: Path) -> None:
    """A signed package whose payload expands past its signed size raises DecompressionBomb."""
    base = pack_for(tmp_path / "a", ("V1",))
    session, venue = base.session, base.session.venues[0]
    zeros = (bytes(1 << 20) for _ in range(64))  # 64 MiB that compress to a few KiB
    newer = dataclasses.replace(session, manifest_version=2)
    bomb = pack_venue(keyed_paper(), newer, venue, base.authority, tmp_path / "bomb", payload=zeros)
    raw = dict(bomb.manifest.raw)
    raw["payload"] = {**raw["payload"], "plain_size": 4096}  # the forged, signed size
    data, signature = sign_manifest(raw, base.authority)
    (bomb.package_dir / "manifest.json").write_bytes(data)
    (bomb.package_dir / "manifest.sig").write_text(signature)
    opened = open_package(bomb.package_dir, base.authority.signing_public)
    unlock = Unlock(opened, base.venue_keys["V1"], IN_WINDOW)
    for holder in (1, 2, 3):
        unlock.add_share((bomb.shares_dir / f"holder-{holder}.txt").read_text(), f"u{holder}")
    unlock.add_release(issue_release(base.authority, session.session_id, "V1").code, IN_WINDOW)
    with pytest.raises(DecompressionBomb, match="signed size of 4096"):
        unlock.open(IN_WINDOW)


# --- fuzzing: parsers raise only the project's errors --------------------------------------

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_manifest_bytes(data: bytes) -> None:
    """Random bytes as a manifest raise ManifestInvalid, nothing else."""
    with pytest.raises(ManifestInvalid):
        parse_manifest(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=20)
    | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += paths_of(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += paths_of(child, (*prefix, index))
    return out


@FUZZ
@given(data=st.data())
def test_fuzz_manifest_fields(kit: Kit, data: st.DataObject) -> None:
    """A valid manifest with any one field replaced parses or raises ManifestInvalid."""
    raw = json.loads((kit.base.package() / "manifest.json").read_bytes())
    path = data.draw(st.sampled_from(paths_of(raw)[1:]))
    target = raw
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans()) and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = data.draw(json_values)
    with contextlib.suppress(ManifestInvalid):
        parse_manifest(json.dumps(raw).encode())


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_fragment_header(data: bytes) -> None:
    """Random bytes as a fragment header raise FragmentCorrupt or parse."""
    with contextlib.suppress(FragmentCorrupt):
        parse_header(data)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, 400), st.integers(1, 255)), min_size=1, max_size=4),
    st.integers(0, 50),
)
def test_fuzz_fragment_file(
    kit: Kit, tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[int, int]], cut: int
) -> None:
    """A fragment with random byte changes and truncation raises only PackageInvalid."""
    data = bytearray((kit.base.package() / FRAGMENT).read_bytes())
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    original = (kit.base.package() / FRAGMENT).read_bytes()
    path = tmp_path_factory.mktemp("fz") / FRAGMENT
    path.write_bytes(bytes(data[: len(data) - cut]))
    manifest = read_manifest_unverified(kit.base.package())
    if path.read_bytes() == original:  # the flips cancelled out: the fragment is intact
        assert check_fragment(manifest, path, 1)[0] == 1
    else:
        with pytest.raises(PackageInvalid):
            check_fragment(manifest, path, 1)


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_fuzz_release_record(text: str | bytes) -> None:
    """Random text as a release record raises ReleaseRejected."""
    with pytest.raises(ReleaseRejected):
        parse_record(text)


@FUZZ
@given(data=st.data())
def test_fuzz_release_record_fields(kit: Kit, data: st.DataObject) -> None:
    """A real record with one field replaced raises a project error, never a crash."""
    record = issue_release(kit.base.authority, kit.base.session.session_id, "V1").record
    key = data.draw(st.sampled_from(sorted(record)))
    record[key] = data.draw(json_values)
    with pytest.raises(PaperpackError):
        started(kit).add_release(json.dumps(record), IN_WINDOW)


@FUZZ
@given(
    st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ- :\n", max_size=120) | st.text(max_size=80)
)
def test_fuzz_share_and_release_codes(kit: Kit, text: str) -> None:
    """Random typed text as a share or a release code raises only project errors."""
    unlock = started(kit)
    for enter in (
        lambda: unlock.add_share(text, "fuzzer"),
        lambda: unlock.add_release(text, IN_WINDOW),
    ):
        with contextlib.suppress(PaperpackError):
            enter()


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    """A manifest or release record nested 60,000 deep raises its typed error, not a crash."""
    with pytest.raises(ManifestInvalid, match="not valid UTF-8 JSON"):
        parse_manifest(b"[" * 60_000)
    with pytest.raises(ReleaseRejected, match="not valid JSON"):
        parse_record("[" * 60_000)
