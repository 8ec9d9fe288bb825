"""Format versions of packages and release records: the current one (package 3: domain-tagged
signatures, HPKE key wraps, the signed practice flag and seating; record 2) is written, and
the previous ones (package 2 without them; 1: bare signatures, the old X25519 wrap) are still
read; an artifact of one version in the other's clothes is refused.

The format 1 package here is made by today's packer with the three format 1 choices put
back (format_version 1, the version 1 wrap, a bare signature), so it exercises exactly what
changed; the frozen vectors under tests/vectors/formats/ hold packages made by the old code.
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path
from typing import Any

import pytest

from paperpack import pack as pack_module
from paperpack.authority import Authority
from paperpack.canonical import canonical_json
from paperpack.crypto import sign, unwrap, wrap
from paperpack.errors import ManifestInvalid, ReleaseRejected, SignatureInvalid
from paperpack.manifest import parse_manifest, signature_text
from paperpack.package import open_package
from paperpack.release import issue_release, release_context
from paperpack.unlock import Unlock, UnlockedPaper
from tests.paperpack.sealing_fixtures import IN_WINDOW, Packed, pack_for


def _sign_manifest_v1(raw: dict[str, Any], authority: Authority) -> tuple[bytes, str]:
    data = canonical_json(raw)
    return data, signature_text(authority.signing_key.sign(data))  # format 1: no domain tag


@pytest.fixture(scope="module")
def packed_v1(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """A session packed as format 1 (the format before domain tags and HPKE)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pack_module, "FORMAT_VERSION", 1)
        patch.setattr(pack_module, "wrap", functools.partial(wrap, version=1))
        patch.setattr(pack_module, "sign_manifest", _sign_manifest_v1)
        return pack_for(tmp_path_factory.mktemp("v1"), venue_ids=("V1",))


@pytest.fixture(scope="module")
def packed_v2(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """A session packed as today (package format 3, release record format 2)."""
    return pack_for(tmp_path_factory.mktemp("v2"), venue_ids=("V1",))


@pytest.fixture(scope="module")
def packed_format_2(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """A session packed as package format 2 (before `seating`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pack_module, "FORMAT_VERSION", 2)
        return pack_for(tmp_path_factory.mktemp("f2"), venue_ids=("V1",))


def record_v1(packed: Packed) -> dict[str, Any]:
    """The release record as format 1 wrote it: version 1 wrap, signature over bare JSON."""
    record = dict(issue_release(packed.authority, packed.session.session_id, "V1").record)
    del record["signature"]
    central = packed.authority.central_dir(packed.session.session_id, "V1")
    sealed = (central / "secrets.sealed").read_bytes()
    context = pack_module.central_context("secrets", packed.session.session_id, "V1")
    opened = unwrap(packed.authority.wrapping_key, sealed, context=context, legacy=True)
    secrets = json.loads(bytes(opened))
    s_time = base64.b64decode(secrets["release_secret"])
    context = release_context("S-2026-27", "V1", record["package_id"])
    venue_public = packed.venue_keys["V1"].public_key()
    wrapped = wrap(venue_public, s_time, context=context, version=1)
    record.update(format_version=1, wrapped_secret=base64.b64encode(wrapped).decode("ascii"))
    signature = packed.authority.signing_key.sign(canonical_json(record))
    return {**record, "signature": base64.b64encode(signature).decode("ascii")}


def resign(record: dict[str, Any], signature: bytes) -> dict[str, Any]:
    return {**record, "signature": base64.b64encode(signature).decode("ascii")}


def unlock(packed: Packed, release: str | dict[str, Any]) -> UnlockedPaper:
    opened = open_package(packed.package("V1"), packed.authority.signing_public)
    session = Unlock(opened, packed.venue_keys["V1"], IN_WINDOW)
    for holder in (1, 2, 3):
        session.add_share(packed.card(holder), f"login-{holder}")
    session.add_release(release, IN_WINDOW)
    return session.open(IN_WINDOW)


def test_new_packages_are_format_3_with_a_tagged_signature_and_an_hpke_wrap(
    packed_v2: Packed,
) -> None:
    """pack writes format 3 (format 2 plus the signed practice flag, checklist and seating:
    the centre's seat seed and the paper's forms, art. 20, 21(1)): the signature is over
    cbt-manifest-v2| + the manifest bytes."""
    package = packed_v2.package("V1")
    data = (package / "manifest.json").read_bytes()
    signature = base64.b64decode((package / "manifest.sig").read_bytes())
    assert json.loads(data)["format_version"] == 3
    assert json.loads(data)["practice"] is False
    seating = parse_manifest(data).seating
    assert seating is not None and len(bytes.fromhex(seating["seed"])) == 32
    assert seating["forms"] == list(packed_v2.paper.forms)
    packed_v2.authority.signing_public.verify(signature, b"cbt-manifest-v2|" + data)
    wrapped = base64.b64decode(json.loads(data)["device"]["wrapped"])
    assert wrapped.startswith(b"CBTW\x02")
    record = issue_release(packed_v2.authority, "S-2026-27", "V1").record
    assert record["format_version"] == 2
    assert base64.b64decode(record["wrapped_secret"]).startswith(b"CBTW\x02")
    assert unlock(packed_v2, json.dumps(record)).paper.paper_id == "P-TEST"


def test_a_format_1_package_still_opens_with_its_format_1_record(packed_v1: Packed) -> None:
    """An old package (bare signature, old wrap) verifies, and unlocks with an old record,
    a new record and the phone code alike."""
    manifest = json.loads((packed_v1.package("V1") / "manifest.json").read_bytes())
    assert manifest["format_version"] == 1
    assert base64.b64decode(manifest["device"]["wrapped"]).startswith(b"CBTW\x01")
    old = record_v1(packed_v1)
    assert unlock(packed_v1, json.dumps(old)).paper.paper_id == "P-TEST"
    new = issue_release(packed_v1.authority, "S-2026-27", "V1")
    assert unlock(packed_v1, new.record).paper.paper_id == "P-TEST"
    assert unlock(packed_v1, new.code).paper.paper_id == "P-TEST"


def test_a_format_2_package_still_opens(packed_format_2: Packed) -> None:
    """A package from before format 3 (no seating) verifies and unlocks."""
    data = (packed_format_2.package("V1") / "manifest.json").read_bytes()
    manifest = parse_manifest(data)
    assert manifest.format_version == 2 and manifest.seating is None
    record = issue_release(packed_format_2.authority, "S-2026-27", "V1").record
    assert unlock(packed_format_2, json.dumps(record)).paper.paper_id == "P-TEST"


def test_seating_is_refused_in_a_format_2_manifest(packed_format_2: Packed) -> None:
    """`seating` belongs to format 3: a format 2 manifest carrying it is malformed."""
    raw = json.loads((packed_format_2.package("V1") / "manifest.json").read_bytes())
    raw["seating"] = {"seed": "00" * 32, "forms": [], "shuffled": []}
    with pytest.raises(ManifestInvalid, match="seating is not part of format 2"):
        parse_manifest(canonical_json(raw))


def test_a_format_2_manifest_with_an_untagged_signature_is_refused(
    packed_v2: Packed, tmp_path: Path
) -> None:
    """Re-signing a new manifest the old way (no domain tag) does not pass as format 1."""
    package = tmp_path / "package"
    package.mkdir()
    for file in packed_v2.package("V1").iterdir():
        (package / file.name).write_bytes(file.read_bytes())
    data = (package / "manifest.json").read_bytes()
    bare = packed_v2.authority.signing_key.sign(data)
    (package / "manifest.sig").write_text(signature_text(bare))
    with pytest.raises(SignatureInvalid, match="old-style signature without the cbt-manifest-v2"):
        open_package(package, packed_v2.authority.signing_public)


def test_a_format_1_manifest_with_a_tagged_signature_is_refused(
    packed_v1: Packed, tmp_path: Path
) -> None:
    """Each version has one signature form: a tagged signature over a format 1 manifest fails."""
    package = tmp_path / "package"
    package.mkdir()
    for file in packed_v1.package("V1").iterdir():
        (package / file.name).write_bytes(file.read_bytes())
    data = (package / "manifest.json").read_bytes()
    tagged = sign(packed_v1.authority.signing_key, "manifest", data)
    (package / "manifest.sig").write_text(signature_text(tagged))
    with pytest.raises(SignatureInvalid, match="format 2 signature but says format version 1"):
        open_package(package, packed_v1.authority.signing_public)


def test_a_format_2_record_with_an_untagged_signature_is_refused(packed_v2: Packed) -> None:
    """A new release record signed over its bare JSON is refused, not read as format 1."""
    record = issue_release(packed_v2.authority, "S-2026-27", "V1").record
    body = {k: v for k, v in record.items() if k != "signature"}
    bare = packed_v2.authority.signing_key.sign(canonical_json(body))
    with pytest.raises(SignatureInvalid, match="format 2 signature"):
        unlock(packed_v2, resign(record, bare))


def test_a_format_1_record_with_a_tagged_signature_is_refused(packed_v1: Packed) -> None:
    """An old record's fields under a new-style signature are refused too."""
    record = record_v1(packed_v1)
    body = {k: v for k, v in record.items() if k != "signature"}
    tagged = sign(packed_v1.authority.signing_key, "release-record", canonical_json(body))
    with pytest.raises(SignatureInvalid, match="format 1 signature"):
        unlock(packed_v1, resign(record, tagged))


def test_a_format_2_record_carrying_the_old_wrap_is_refused(packed_v2: Packed) -> None:
    """A new record must carry an HPKE wrap: the old wrap inside it is not opened."""
    record = record_v1(packed_v2)
    record = {k: v for k, v in record.items() if k != "signature"} | {"format_version": 2}
    tagged = sign(packed_v2.authority.signing_key, "release-record", canonical_json(record))
    with pytest.raises(ReleaseRejected, match="does not open with this venue server's key"):
        unlock(packed_v2, resign(record, tagged))
