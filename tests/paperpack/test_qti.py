"""QTI 2.1/2.2 import: the shared real-world fixtures and our own small edge cases.

The shared fixtures ship without their images, so happy-path tests copy an item into
`tmp_path` beside a stand-in PNG; the missing-image tests use the fixture where it lies.
"""

from __future__ import annotations

import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from paperpack.errors import PaperInvalid, PaperpackError
from paperpack.html import html_problems
from paperpack.model import Paper
from paperpack.qti import import_qti, load_qti, load_qti_with_warnings
from paperpack.qti.source import MAX_XML_BYTES

EXTRA = Path(__file__).parent / "qti_extra"
SINGLE = "qti21_choice_single_img.xml"
SHUFFLE_FIXED = "qti21_choice_single_shuffle_fixed_img.xml"
MULTIPLE = "qti21_choice_multiple_mapping.xml"
OPENOLAT = "qti21_choice_multiple_openolat_partial_credit.xml"
TEXT_ENTRY = "qti21_text_entry_mapping.xml"
ESSAY = "qti21_extended_text_essay.xml"
TEST_FILE = "qti21_assessment_test_rtest12_golden_shuffle.xml"
MANIFEST = "imscp_openolat_single_item_imsmanifest.xml"
MANIFEST_ITEM = "sca9b540c9684ba58f489f02e8b5c590.xml"


def png(width: int = 1, height: int = 1) -> bytes:
    """A tiny valid PNG: the stand-in for the images the fixtures do not ship."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


STAND_IN = png()


def with_images(folder: Path) -> Path:
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    (images / "sign.png").write_bytes(STAND_IN)
    (images / "postcard.png").write_bytes(STAND_IN)
    return folder


def copy_item(source: Path, folder: Path, name: str | None = None) -> Path:
    """Copy one item file into `folder` beside stand-in images; return the copy."""
    with_images(folder)
    target = folder / (name or source.name)
    shutil.copyfile(source, target)
    return target


def only_item(paper: Paper):  # type: ignore[no-untyped-def]
    items = paper.items()
    assert len(items) == 1
    return items[0]


def problems_of(path: Path) -> list[str]:
    with pytest.raises(PaperInvalid) as caught:
        load_qti(path)
    return caught.value.problems


def assert_clean_html(paper: Paper) -> None:
    for item in paper.items():
        for fragment in (item.stem, *(o.html for o in item.options)):
            assert html_problems(fragment) == [], fragment


# --- the shared fixtures ---------------------------------------------------------------------


def test_single_choice_imports_with_key_options_and_image(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """The plain single-choice item becomes a single_choice with its key, options and image."""
    paper = load_qti(copy_item(qti_fixtures / SINGLE, tmp_path))
    item = only_item(paper)
    assert item.item_id == "choice"
    assert item.type == "single_choice"
    assert [o.option_id for o in item.options] == ["ChoiceA", "ChoiceB", "ChoiceC"]
    assert not any(o.fixed for o in item.options)
    assert item.shuffle_options is False
    assert item.key == ("ChoiceA",)
    assert item.points == 1.0
    assert item.options[0].html == "You must stay with your luggage at all times."
    assert 'src="asset:sign.png"' in item.stem
    assert "What does it say?" in item.stem
    assert paper.asset("sign.png").data == STAND_IN
    assert paper.asset("sign.png").media_type == "image/png"
    assert paper.title == "Unattended Luggage"
    assert paper.duration_minutes == 60
    assert_clean_html(paper)


def test_shuffle_and_fixed_choice_are_kept(qti_fixtures: Path, tmp_path: Path) -> None:
    """shuffle="true" sets shuffle_options and only the fixed="true" choice is fixed."""
    item = only_item(load_qti(copy_item(qti_fixtures / SHUFFLE_FIXED, tmp_path)))
    assert item.type == "single_choice"
    assert item.shuffle_options is True
    assert [(o.option_id, o.fixed) for o in item.options] == [
        ("ChoiceA", False),
        ("ChoiceB", False),
        ("ChoiceC", False),
        ("ChoiceD", True),
    ]
    assert item.key == ("ChoiceA",)
    assert item.scoring == "all_or_nothing"


def test_missing_image_names_the_item_and_the_file(qti_fixtures: Path) -> None:
    """Without images/sign.png beside it, the item is refused naming the item and the file."""
    problems = problems_of(qti_fixtures / SHUFFLE_FIXED)
    assert len(problems) == 1
    assert "item choice" in problems[0]
    assert "images/sign.png" in problems[0]
    assert "not found" in problems[0]


def test_multiple_choice_mapping_becomes_partial_credit(qti_fixtures: Path, tmp_path: Path) -> None:
    """The water mapping (H=1, O=1, upperBound 2) is partial credit: 2 points, 1 for a subset."""
    paper, warnings = load_qti_with_warnings(copy_item(qti_fixtures / MULTIPLE, tmp_path))
    item = only_item(paper)
    assert item.item_id == "choiceMultiple"
    assert item.type == "multiple_choice"
    assert [o.option_id for o in item.options] == ["H", "He", "C", "O", "N", "Cl"]
    assert not any(o.fixed for o in item.options)
    assert item.shuffle_options is True
    assert item.key == ("H", "O")
    assert (item.scoring, item.points, item.partial_points) == ("partial", 2.0, 1.0)
    # Cl costs only 1 mark in QTI, so H+O+Cl still earns 1 there: lossy, and said so.
    assert any("Cl" in w and "negative marks" in w for w in warnings)


def test_openolat_item_is_all_or_nothing_for_its_maxscore(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """OpenOLAT's per-answer item (values sum 2, MAXSCORE 1) imports as all-or-nothing for 1."""
    paper, warnings = load_qti_with_warnings(copy_item(qti_fixtures / OPENOLAT, tmp_path))
    item = only_item(paper)
    assert item.item_id == "mcbe900fffcb49f08698b349e7b832e0"
    assert item.type == "multiple_choice"
    assert len(item.options) == 4
    assert item.shuffle_options is True
    assert set(item.key) == {"mc80677ac3f4449ebc689cf60c230a3d", "mc7e5667abeb415fa05a8c7d8fd3d6bb"}
    assert (item.scoring, item.points) == ("all_or_nothing", 1.0)
    assert item.options[0].html == "<p>Correct answer</p>"
    assert any("cannot be expressed as partial credit" in w for w in warnings)
    assert any("modalFeedback dropped" in w for w in warnings)


def test_text_entry_key_is_york_case_sensitive(qti_fixtures: Path, tmp_path: Path) -> None:
    """The text entry becomes one case-sensitive blank accepting York; york's 0.5 is warned."""
    paper, warnings = load_qti_with_warnings(copy_item(qti_fixtures / TEXT_ENTRY, tmp_path))
    item = only_item(paper)
    assert item.type == "fill_blank"
    assert item.points == 1.0
    (blank,) = item.blanks
    assert blank.blank_id == "RESPONSE"
    assert blank.accepted == ("York",)
    assert blank.normalisation.case_sensitive is True
    assert "sun of ____;" in item.stem
    assert any("'york'" in w and "0.5" in w for w in warnings)
    assert_clean_html(paper)


def test_essay_imports_with_generous_length_and_postcard_image(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """The postcard item is an essay, max_length 5 x 200, its <object> image embedded."""
    paper, warnings = load_qti_with_warnings(copy_item(qti_fixtures / ESSAY, tmp_path))
    item = only_item(paper)
    assert item.item_id == "extendedText"
    assert item.type == "essay"
    assert item.max_length == 1000
    assert item.points == 1.0
    assert 'src="asset:postcard.png"' in item.stem
    assert 'alt="Here is a postcard of my town.' in item.stem
    assert "Write Sam a postcard." in item.stem
    assert paper.asset("postcard.png").data == STAND_IN
    assert any("no MAXSCORE" in w for w in warnings)
    assert_clean_html(paper)


def test_assessment_test_is_reported(qti_fixtures: Path) -> None:
    """RTEST-12 is refused as an assessmentTest, naming it and its absent items."""
    (problem,) = problems_of(qti_fixtures / TEST_FILE)
    assert "assessmentTest RTEST-12 is not supported" in problem
    assert TEST_FILE in problem
    assert "item034.xml" in problem


def test_manifest_with_missing_item_is_reported(qti_fixtures: Path, tmp_path: Path) -> None:
    """A package whose manifest lists an absent item names the resource and the file."""
    shutil.copyfile(qti_fixtures / MANIFEST, tmp_path / "imsmanifest.xml")
    (problem,) = problems_of(tmp_path)
    assert "item2e6d877f4ba39838122dc88baba1" in problem
    assert MANIFEST_ITEM in problem
    assert "missing" in problem


def test_zip_package_with_renamed_fixture_item_imports(qti_fixtures: Path, tmp_path: Path) -> None:
    """A zip of the OpenOLAT manifest plus a fixture item under the listed name imports."""
    package = tmp_path / "openolat.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(qti_fixtures / MANIFEST, "imsmanifest.xml")
        archive.write(qti_fixtures / SHUFFLE_FIXED, MANIFEST_ITEM)
        archive.writestr("images/sign.png", STAND_IN)
        archive.writestr("unlisted.xml", "<not-an-item/>")  # the manifest decides: ignored
    paper = load_qti(package)
    item = only_item(paper)
    assert (item.item_id, item.type, item.key) == ("choice", "single_choice", ("ChoiceA",))
    assert paper.paper_id == "openolat"
    assert paper.asset("sign.png").data == STAND_IN


def test_zip_missing_manifest_item_is_reported(qti_fixtures: Path, tmp_path: Path) -> None:
    """The manifest alone, zipped, reports its missing item."""
    package = tmp_path / "bare.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(qti_fixtures / MANIFEST, "imsmanifest.xml")
    (problem,) = problems_of(package)
    assert MANIFEST_ITEM in problem and "missing" in problem


def test_duplicate_identifiers_name_both_files(qti_fixtures: Path, tmp_path: Path) -> None:
    """Both choice fixtures say identifier="choice": refused naming both, never renamed."""
    copy_item(qti_fixtures / SINGLE, tmp_path)
    copy_item(qti_fixtures / SHUFFLE_FIXED, tmp_path)
    (problem,) = problems_of(tmp_path)
    assert SINGLE in problem and SHUFFLE_FIXED in problem
    assert "item choice" in problem and "rename one" in problem


def test_fixture_folder_reports_every_problem_at_once(qti_fixtures: Path) -> None:
    """Importing the whole fixture folder lists the test, the manifest name, the duplicate
    and the missing images together."""
    problems = "\n".join(problems_of(qti_fixtures))
    for expected in (
        "RTEST-12",
        "must be named imsmanifest.xml",
        "rename one",
        "images/sign.png",
        "images/postcard.png",
    ):
        assert expected in problems


def test_folder_of_supported_fixtures_imports_in_file_order(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """A folder of the five distinct supported items imports them all, sorted by file name."""
    for name in (SHUFFLE_FIXED, MULTIPLE, OPENOLAT, TEXT_ENTRY, ESSAY):
        copy_item(qti_fixtures / name, tmp_path)
    paper = load_qti(tmp_path, paper_id="P1", subject_code="S1", duration_minutes=90)
    assert [i.type for i in paper.items()] == [
        "multiple_choice", "multiple_choice", "single_choice", "essay", "fill_blank",
    ]  # fmt: skip
    assert (paper.paper_id, paper.subject_code, paper.duration_minutes) == ("P1", "S1", 90)
    assert {a.name for a in paper.assets} == {"sign.png", "postcard.png"}
    assert paper.total_points == 2.0 + 1.0 + 1.0 + 1.0 + 1.0
    assert_clean_html(paper)


# --- our own edge cases ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "interaction", "item_id"),
    [
        ("order_interaction.xml", "orderInteraction", "order1"),
        ("inline_choice.xml", "inlineChoiceInteraction", "inline1"),
        ("hotspot_interaction.xml", "hotspotInteraction", "hotspot1"),
    ],
)
def test_unsupported_interaction_is_named(name: str, interaction: str, item_id: str) -> None:
    """An unsupported interaction is reported by name and item id, not dropped."""
    (problem,) = problems_of(EXTRA / name)
    assert f"item {item_id}: {interaction} is not supported" in problem


def test_two_questions_in_one_item_are_refused() -> None:
    """A choice and an essay in one item are refused with advice to split it."""
    (problem,) = problems_of(EXTRA / "two_questions.xml")
    assert "item twoInOne" in problem and "split it" in problem


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_hostile_xml_is_refused_cleanly(name: str) -> None:
    """Entity declarations (billion laughs, XXE) are refused by defusedxml as PaperInvalid."""
    (problem,) = problems_of(EXTRA / name)
    assert name in problem and "refused" in problem


def test_images_outside_the_package_or_remote_are_refused() -> None:
    """An image path escaping the package and a remote image URL are both refused."""
    problems = problems_of(EXTRA / "escaping_image.xml")
    assert len(problems) == 2
    assert "leads outside the package" in problems[0]
    assert "not a path inside the package" in problems[1]


def test_qti22_chinese_choice_with_maxscore(tmp_path: Path) -> None:
    """A QTI 2.2 item takes MAXSCORE as points, its language, and maps headings and links."""
    paper = load_qti(EXTRA / "qti22_choice_zh.xml")
    item = only_item(paper)
    assert (item.type, item.points, item.key) == ("single_choice", 2.0, ("B",))
    assert [o.fixed for o in item.options] == [False, False, True]
    assert paper.language == "zh-CN" and paper.title == "单项选择"
    assert "<strong>第一题</strong>" in item.stem
    assert "example.org" not in item.stem and "参考" in item.stem
    assert_clean_html(paper)


def test_several_blanks_are_numbered_and_case_insensitive_when_mapped_so() -> None:
    """Two text entries give two numbered blanks; caseSensitive="false" is honoured."""
    paper, warnings = load_qti_with_warnings(EXTRA / "qti22_two_blanks.xml")
    item = only_item(paper)
    assert [b.blank_id for b in item.blanks] == ["CAPITAL_FR", "CAPITAL_CN"]
    assert item.blanks[0].accepted == ("Paris",)
    assert item.blanks[1].accepted == ("北京", "Beijing")
    assert all(not b.normalisation.case_sensitive for b in item.blanks)
    assert "____(1)" in item.stem and "____(2)" in item.stem
    assert item.points == 2.0
    assert any("custom" in w for w in warnings)


def test_zip_member_over_the_size_bound_is_refused(tmp_path: Path) -> None:
    """A manifest that inflates beyond the XML bound is refused, not parsed (zip bomb)."""
    package = tmp_path / "bomb.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", b"<manifest>" + b" " * (MAX_XML_BYTES + 1))
    (problem,) = problems_of(package)
    assert "imsmanifest.xml" in problem and "too large" in problem


def test_manifest_href_escaping_the_package_is_refused(tmp_path: Path) -> None:
    """A manifest resource pointing outside the package is refused."""
    package = tmp_path / "escape.zip"
    manifest = (
        '<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"><resources>'
        '<resource identifier="r1" type="imsqti_item_xmlv2p1" href="../outside.xml"/>'
        "</resources></manifest>"
    )
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("imsmanifest.xml", manifest)
    (problem,) = problems_of(package)
    assert "resource r1" in problem and "leads outside the package" in problem


def test_zip_without_manifest_is_refused(tmp_path: Path) -> None:
    """A zip without imsmanifest.xml at its top is not a content package."""
    package = tmp_path / "loose.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(EXTRA / "qti22_choice_zh.xml", "folder/item.xml")
    (problem,) = problems_of(package)
    assert "no imsmanifest.xml" in problem


def test_unknown_metadata_and_missing_path_are_errors(tmp_path: Path) -> None:
    """A metadata typo and a path that does not exist are project errors, not tracebacks."""
    with pytest.raises(PaperpackError, match="unknown QTI import metadata durration"):
        import_qti(EXTRA / "qti22_choice_zh.xml", durration=90)
    with pytest.raises(PaperpackError, match="no such file"):
        import_qti(tmp_path / "absent.xml")
