"""Art. 21(3): "practice" is the centre's signed word, not the importer's choice. A package
packed with `--practice` says so inside the signed manifest (format 3), with the session
file's inspection checklist; flipping the flag in a real package breaks its signature."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from paperpack.canonical import canonical_json
from paperpack.cli import main as paperpack_main
from paperpack.crypto import sign
from paperpack.errors import ManifestInvalid, SessionInvalid, SignatureInvalid
from paperpack.manifest import signature_text
from paperpack.package import open_package
from paperpack.session import session_from_dict
from tests.paperpack.sealing_fixtures import Packed, pack_for, session_data

CHECKLIST = ["Every PC shows the login page", "The backup disk is mounted"]


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    return pack_for(
        tmp_path_factory.mktemp("practice"), venue_ids=("V1",), practice=True,
        inspection=CHECKLIST, rules={"inspection_required": 1},
    )  # fmt: skip


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Packed:
    return pack_for(tmp_path_factory.mktemp("real"), venue_ids=("V1",))


def test_art_21_3_practice_and_checklist_are_signed_in_the_manifest(practice: Packed) -> None:
    opened = open_package(practice.package("V1"), practice.authority.signing_public)
    assert opened.manifest.practice is True
    assert opened.manifest.inspection == CHECKLIST
    assert opened.manifest.rules == {"inspection_required": 1}


def test_art_21_3_an_unsigned_practice_flag_is_refused(real: Packed, tmp_path: Path) -> None:
    """A real package whose manifest is edited to say practice no longer verifies."""
    package = tmp_path / "package"
    shutil.copytree(real.package("V1"), package)
    raw = json.loads((package / "manifest.json").read_bytes())
    assert raw["practice"] is False
    raw["practice"] = True
    (package / "manifest.json").write_bytes(canonical_json(raw))
    with pytest.raises(SignatureInvalid):
        open_package(package, real.authority.signing_public)


def test_a_format_3_manifest_without_the_practice_flag_is_refused(
    real: Packed, tmp_path: Path
) -> None:
    package = tmp_path / "package"
    shutil.copytree(real.package("V1"), package)
    raw = json.loads((package / "manifest.json").read_bytes())
    del raw["practice"]
    data = canonical_json(raw)
    (package / "manifest.json").write_bytes(data)
    (package / "manifest.sig").write_text(
        signature_text(sign(real.authority.signing_key, "manifest", data))
    )
    with pytest.raises(ManifestInvalid, match="practice is missing"):
        open_package(package, real.authority.signing_public)


def test_the_session_file_checks_the_checklist_and_the_rule() -> None:
    with pytest.raises(SessionInvalid) as caught:
        session_from_dict(session_data([], inspection=["ok", ""], rules={"inspection_required": 2}))
    text = "\n".join(caught.value.problems)
    assert "inspection[1]" in text
    assert "rules.inspection_required" in text


def test_paperpack_pack_practice_prints_it(
    practice: Packed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert paperpack_main(["inspect", str(practice.package("V1"))]) == 0
    assert "practice:  yes (dry run)" in capsys.readouterr().out
