"""QTI 2.1/2.2 import: the shared real-world fixtures and our own small edge cases.

The shared fixtures ship without their images, so happy-path tests copy an item into
`tmp_path` beside a stand-in PNG; the missing-image tests use the fixture where it lies.
"""

from __future__ import annotations

import itertools
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperpack.cli import main
from paperpack.errors import PaperInvalid, PaperpackError
from paperpack.html import html_problems
from paperpack.model import Paper
from paperpack.paperfile import dump_paper, load_paper, paper_problems
from paperpack.qti import import_qti, load_qti, load_qti_with_warnings
from paperpack.qti.source import MAX_XML_BYTES
from paperpack.scoring import score_item

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


def test_assessment_test_without_its_items_is_reported(qti_fixtures: Path) -> None:
    """RTEST-12 without its items is refused, naming the test and its absent items."""
    (problem,) = problems_of(qti_fixtures / TEST_FILE)
    assert "assessmentTest RTEST-12: refers to items not found here" in problem
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


# --- the imported paper is a valid native paper ------------------------------------------------


def test_imported_fixtures_validate_and_round_trip_through_paperfile(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """The imported fixtures pass native validation, and dump_paper + load_paper give them back."""
    source = tmp_path / "in"
    for name in (SHUFFLE_FIXED, MULTIPLE, OPENOLAT, TEXT_ENTRY, ESSAY):
        copy_item(qti_fixtures / name, source)
    paper = load_qti(source)
    assert paper_problems(paper) == []
    out = tmp_path / "out" / "paper.yaml"
    out.parent.mkdir()
    dump_paper(paper, out)
    assert load_paper(out) == paper
    assert load_paper(source) == paper  # load_paper hands QTI to the importer


# --- the scoring rule against QTI's own map_response ---------------------------------------------

OPTION_IDS = ("A", "B", "C", "D", "E")


def mapped_item_xml(
    options: int,
    key: list[str],
    values: dict[str, int],
    default: int,
    lower: int | None,
    upper: int | None,
) -> str:
    bounds = "".join(
        f' {name}="{value}"'
        for name, value in (("lowerBound", lower), ("upperBound", upper))
        if value is not None
    )
    entries = "".join(f'<mapEntry mapKey="{k}" mappedValue="{v}"/>' for k, v in values.items())
    correct = "".join(f"<value>{k}</value>" for k in key)
    choices = "".join(
        f'<simpleChoice identifier="{o}">{o}</simpleChoice>' for o in OPTION_IDS[:options]
    )
    return (
        '<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" identifier="gen" '
        'title="generated" adaptive="false" timeDependent="false">'
        '<responseDeclaration identifier="RESPONSE" cardinality="multiple" baseType="identifier">'
        f'<correctResponse>{correct}</correctResponse><mapping defaultValue="{default}"{bounds}>'
        f"{entries}</mapping></responseDeclaration>"
        '<outcomeDeclaration identifier="SCORE" cardinality="single" baseType="float"/>'
        '<itemBody><choiceInteraction responseIdentifier="RESPONSE" shuffle="true" maxChoices="0">'
        f"<prompt>Pick.</prompt>{choices}</choiceInteraction></itemBody>"
        '<responseProcessing template="http://www.imsglobal.org/question/qti_v2p1/rptemplates/'
        'map_response"/></assessmentItem>'
    )


def qti_map_response(
    chosen: tuple[str, ...],
    values: dict[str, int],
    default: int,
    lower: int | None,
    upper: int | None,
) -> float:
    """QTI's map_response template: 0 for no answer, else the mapped sum within the bounds."""
    if not chosen:
        return 0.0
    total = float(sum(values.get(o, default) for o in set(chosen)))
    if lower is not None:
        total = max(total, lower)
    if upper is not None:
        total = min(total, upper)
    return total


Case = tuple[int, list[str], dict[str, int], int, int | None, int | None]


@st.composite
def any_mappings(draw: st.DrawFn) -> Case:
    """Any mapping at all: mostly ones our rule cannot express."""
    options = draw(st.integers(2, 5))
    ids = list(OPTION_IDS[:options])
    key = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=options, unique=True))
    mapped = draw(st.lists(st.sampled_from(ids), unique=True))
    values = {o: draw(st.integers(-3, 3)) for o in mapped}
    default = draw(st.integers(-3, 1))
    correct_sum = sum(values.get(k, default) for k in key)
    lower = draw(st.sampled_from([None, -1, 0, 1]))
    upper = draw(st.sampled_from([None, correct_sum, correct_sum + 1, 1]))
    return options, key, values, default, lower, upper


@st.composite
def exam_like_mappings(draw: st.DrawFn) -> Case:
    """Per-answer mappings as authoring tools write them: near (or at) our partial rule."""
    options = draw(st.integers(3, 5))
    ids = list(OPTION_IDS[:options])
    key = draw(st.lists(st.sampled_from(ids), min_size=2, max_size=options - 1, unique=True))
    values = {k: draw(st.integers(1, 3)) for k in key}
    correct_sum = sum(values.values())
    default = draw(st.sampled_from([-correct_sum, -correct_sum - 1, -1, 0]))
    for wrong in draw(st.lists(st.sampled_from([o for o in ids if o not in key]), unique=True)):
        values[wrong] = draw(st.sampled_from([-correct_sum, -1, 0]))
    lower = draw(st.sampled_from([0, 0, None]))
    upper = draw(st.sampled_from([correct_sum, correct_sum, None]))
    return options, key, values, default, lower, upper


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=st.one_of(any_mappings(), exam_like_mappings()))
def test_partial_credit_matches_qti_unless_warned(
    tmp_path_factory: pytest.TempPathFactory, case: Case
) -> None:
    """Without a warning, our score equals QTI map_response for every possible selection;
    a partly right answer never earns more here than in QTI."""
    options, key, values, default, lower, upper = case
    path = tmp_path_factory.mktemp("gen") / "item.xml"
    path.write_text(mapped_item_xml(options, key, values, default, lower, upper), encoding="utf-8")
    paper, warnings = load_qti_with_warnings(path)
    item = only_item(paper)
    subsets = [
        tuple(o for o, bit in zip(OPTION_IDS[:options], bits, strict=True) if bit)
        for bits in itertools.product((0, 1), repeat=options)
    ]
    assert score_item(item, tuple(key)) == item.points
    if item.scoring == "partial":
        assert qti_map_response(tuple(key), values, default, lower, upper) == item.points
        for chosen in subsets:
            if chosen and set(chosen) < set(key):
                assert score_item(item, chosen) <= qti_map_response(
                    chosen, values, default, lower, upper
                )
    else:
        assert warnings, "an all-or-nothing import of a mapping always says why"
    if not warnings:
        for chosen in subsets:
            ours = score_item(item, chosen)
            assert ours == qti_map_response(chosen, values, default, lower, upper), chosen


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad_identifiers.xml", "item identifier '_item.1' cannot be kept as an id"),
        ("bad_choice_identifier.xml", "simpleChoice identifier 'Größe' cannot be kept as an id"),
    ],
)
def test_identifiers_outside_our_id_rule_are_reported_not_renamed(name: str, expected: str) -> None:
    """A QTI identifier our ids cannot hold is an error telling the author to rename it."""
    (problem,) = problems_of(EXTRA / name)
    assert expected in problem and "rename it" in problem


def test_absurdly_nested_xml_is_refused_cleanly(tmp_path: Path) -> None:
    """Thousands of nested elements are refused as malformed, not a RecursionError."""
    depth = 5000
    body = "<span>" * depth + "x" + "</span>" * depth
    path = tmp_path / "deep.xml"
    path.write_text(
        '<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" identifier="deep">'
        f"<itemBody><p>{body}</p></itemBody></assessmentItem>",
        encoding="utf-8",
    )
    (problem,) = problems_of(path)
    assert "deep.xml" in problem and "nested more than" in problem


def test_manifest_given_directly_reads_its_package(qti_fixtures: Path, tmp_path: Path) -> None:
    """Pointing at imsmanifest.xml itself imports the package it heads."""
    shutil.copyfile(qti_fixtures / MANIFEST, tmp_path / "imsmanifest.xml")
    copy_item(qti_fixtures / OPENOLAT, tmp_path, MANIFEST_ITEM)
    paper = load_qti(tmp_path / "imsmanifest.xml")
    assert only_item(paper).item_id == "mcbe900fffcb49f08698b349e7b832e0"


def test_unusable_language_tag_is_warned_and_the_text_decides(tmp_path: Path) -> None:
    """An xml:lang that is not a BCP 47 tag does not make an invalid paper: it is named in a
    warning and the Chinese text decides; zh_CN is read as zh-CN."""
    text = (EXTRA / "qti22_choice_zh.xml").read_text(encoding="utf-8")
    path = tmp_path / "item.xml"
    path.write_text(
        text.replace('xml:lang="zh-CN"', 'xml:lang="Chinese (Simplified)"'), encoding="utf-8"
    )
    paper, warnings = load_qti_with_warnings(path)
    assert paper.language == "zh-CN"
    (warning,) = [w for w in warnings if "xml:lang" in w]
    assert warning.startswith("item.xml: item zh_single: xml:lang: 'Chinese (Simplified)' is not")
    path.write_text(text.replace('xml:lang="zh-CN"', 'xml:lang="zh_CN"'), encoding="utf-8")
    paper, warnings = load_qti_with_warnings(path)
    assert paper.language == "zh-CN" and not any("language" in w for w in warnings)


# --- robustness: mangled input gives a paper or a PaperInvalid, nothing else -------------------

SNIPPETS = (
    "<", ">", '"', "</p>", "<p>", "&amp;", "&#0;", "<orderInteraction/>", ' maxChoices="x"',
    ' mappedValue="nan"', ' upperBound="-1"', '<img src="%00.png"/>', '<img src="../x.png"/>',
    '<object type="audio/mpeg" data="a.mp3"/>', ' identifier=""', ' identifier="A"',
    '<simpleChoice identifier="A">A</simpleChoice>', "<value>nope</value>", ' fixed="true"',
    ' cardinality="ordered"', '<textEntryInteraction responseIdentifier="RESPONSE"/>',
    '<!DOCTYPE a [<!ENTITY e "x">]>', "<math xmlns='http://www.w3.org/1998/Math/MathML'/>",
    "<printedVariable identifier='X'/>", " 中文 ", ' expectedLength="abc"',
)  # fmt: skip
MANGLED_SOURCES = (SHUFFLE_FIXED, MULTIPLE, OPENOLAT, TEXT_ENTRY, ESSAY)


@st.composite
def mangled(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(SNIPPETS)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
    return text


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mangled_items_import_or_fail_with_paper_invalid(
    qti_fixtures: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Any mangled item either imports as a paper that passes native validation or is refused
    with the project's own error; no other exception escapes."""
    name = data.draw(st.sampled_from(MANGLED_SOURCES))
    text = data.draw(mangled((qti_fixtures / name).read_text(encoding="utf-8")))
    folder = with_images(tmp_path_factory.mktemp("mangled"))
    path = folder / "item.xml"
    path.write_text(text, encoding="utf-8")
    try:
        paper = load_qti(path)
    except PaperpackError:
        return
    assert paper_problems(paper) == []


def test_image_type_comes_from_its_bytes(qti_fixtures: Path, tmp_path: Path) -> None:
    """A JPEG saved as sign.png is embedded as image/jpeg; a text file posing as PNG is refused."""
    item = copy_item(qti_fixtures / SINGLE, tmp_path)
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
    (tmp_path / "images" / "sign.png").write_bytes(jpeg)
    paper = load_qti(item)
    assert (paper.asset("sign.png").media_type, paper.asset("sign.png").data) == (
        "image/jpeg",
        jpeg,
    )
    assert paper_problems(paper) == []
    (tmp_path / "images" / "sign.png").write_text("not a picture", encoding="utf-8")
    (problem,) = problems_of(item)
    assert (
        "item choice" in problem and "'images/sign.png' is not a PNG, JPEG, GIF or WebP" in problem
    )


def test_manifest_order_and_item_relative_images_in_subfolders(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """Items come in manifest order, and an item's image resolves beside the item file."""
    resources = "".join(
        f'<resource identifier="r{n}" type="{kind}" href="{href}"/>'
        for n, (kind, href) in enumerate(
            [
                ("imsqti_item_xmlv2p2", "items/zz_essay.xml"),
                ("webcontent", "items/images/postcard.png"),
                ("imsqti_item_xmlv2p1", "items/aa_choice.xml"),
            ]
        )
    )
    manifest = (
        '<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1">'
        f"<resources>{resources}</resources></manifest>"
    )
    package = tmp_path / "nested.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("imsmanifest.xml", manifest)
        archive.write(qti_fixtures / ESSAY, "items/zz_essay.xml")
        archive.write(qti_fixtures / SINGLE, "items/aa_choice.xml")
        archive.writestr("items/images/postcard.png", STAND_IN)
        archive.writestr("items/images/sign.png", png(2, 2))
    paper = load_qti(package)
    assert [i.item_id for i in paper.items()] == ["extendedText", "choice"]
    assert paper.asset("sign.png").data == png(2, 2)
    assert paper_problems(paper) == []


# --- nothing is removed or changed without a word (issue 17, part 7) ---------------------------


def test_event_handler_on_a_supplied_image_is_an_error_naming_it(tmp_path: Path) -> None:
    """<img onerror=...> is refused naming the handler, the item and the field, also once
    the image is there (it used to vanish silently and the paper was "valid")."""
    item = tmp_path / "img_onerror.xml"
    shutil.copyfile(EXTRA / "img_onerror.xml", item)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "risk.png").write_bytes(STAND_IN)
    (problem,) = problems_of(item)
    assert problem.startswith("img_onerror.xml: item onerror1: stem: ")
    assert "event handler onerror= on <img>" in problem and "remove the attribute" in problem


def test_event_handler_is_reported_beside_the_missing_image() -> None:
    """Without the image both problems are listed, each once."""
    problems = problems_of(EXTRA / "img_onerror.xml")
    assert len(problems) == 2
    assert sum("onerror=" in p for p in problems) == 1
    assert sum("images/risk.png" in p and "not found" in p for p in problems) == 1


def test_javascript_link_is_an_error() -> None:
    """A javascript: href is refused as unsafe, as the native format refuses it."""
    (problem,) = problems_of(EXTRA / "styled_markup.xml")
    assert "item styled1: stem: unsafe HTML: javascript: URL in <a href>" in problem


def test_dropped_attributes_and_changed_elements_are_warned_once_each(tmp_path: Path) -> None:
    """Every dropped attribute and changed element is one warning naming the item, the fields
    and the elements; ids are dropped without a word."""
    text = (EXTRA / "styled_markup.xml").read_text(encoding="utf-8")
    path = tmp_path / "styled.xml"
    path.write_text(text.replace(' href="javascript:steal()"', ""), encoding="utf-8")
    paper, warnings = load_qti_with_warnings(path)
    assert_clean_html(paper)
    prefix = "styled.xml: item styled1: "
    assert all(w.startswith(prefix) for w in warnings), warnings
    (classes,) = [w for w in warnings if "class=" in w]
    assert classes.startswith(prefix + "stem, option A, option B: class= dropped from <p>, ")
    assert "<table>" in classes and "<span>" in classes
    for expected in (
        "stem: colspan= dropped from <td>",
        "stem: style= dropped from <td>",
        "stem: <colgroup> (column widths and styles) dropped",
        "stem: <hr> (a horizontal rule) dropped",
        "stem: rubricBlock for view 'scorer' dropped",
        "stem: <a> shown as plain text",
    ):
        assert sum(expected in w for w in warnings) == 1, expected
    assert len(warnings) == 7
    assert not any("id=" in w for w in warnings)


def test_headings_and_links_of_the_chinese_item_are_warned() -> None:
    """The QTI 2.2 item's heading and its link to example.org are each reported once."""
    _, warnings = load_qti_with_warnings(EXTRA / "qti22_choice_zh.xml")
    assert sum("<h3> shown as a bold paragraph" in w for w in warnings) == 1
    (link,) = [w for w in warnings if "link target dropped" in w]
    assert "item zh_single: stem:" in link and "https://example.org/" in link


def test_blockquote_of_the_real_text_entry_item_is_warned(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """The Richard III quotation's <blockquote> becomes a plain block, and says so."""
    _, warnings = load_qti_with_warnings(copy_item(qti_fixtures / TEXT_ENTRY, tmp_path))
    (changed,) = [w for w in warnings if "<blockquote>" in w]
    assert changed.startswith(f"{TEXT_ENTRY}: item textEntry: stem: <blockquote> shown as")


def test_image_size_that_is_not_pixels_is_warned(qti_fixtures: Path, tmp_path: Path) -> None:
    """width="50%" cannot be kept (whole pixels only): dropped with a warning."""
    item = copy_item(qti_fixtures / SINGLE, tmp_path)
    text = item.read_text(encoding="utf-8")
    item.write_text(text.replace("<img ", '<img width="50%" height="120" '), encoding="utf-8")
    paper, warnings = load_qti_with_warnings(item)
    assert 'height="120"' in only_item(paper).stem and "width" not in only_item(paper).stem
    (warning,) = [w for w in warnings if "width=" in w]
    assert "item choice: stem: width= that is not a whole number of pixels" in warning
    assert "<img width='50%'>" in warning


def test_expected_length_becomes_a_generous_limit_with_both_figures_named() -> None:
    """expectedLength="400" (a hint, "about 400") gives max_length 2000 = 5 x 400, and the
    warning names the item, the field and both numbers."""
    paper, warnings = load_qti_with_warnings(EXTRA / "zh_essay_length.xml")
    assert only_item(paper).max_length == 2000
    (warning,) = [w for w in warnings if "max_length" in w]
    assert warning.startswith("zh_essay_length.xml: item essay400: max_length: ")
    assert "expectedLength 400" in warning and "2000" in warning and "0 = no limit" in warning


def test_essay_attributes_that_cannot_be_kept_are_warned_once_each() -> None:
    """A model answer, match_correct, format=xhtml, placeholderText, patternMask and
    minStrings each give one warning naming the item."""
    paper, warnings = load_qti_with_warnings(EXTRA / "essay_extras.xml")
    assert (only_item(paper).points, only_item(paper).max_length) == (10.0, 0)
    assert all(w.startswith("essay_extras.xml: item essayExtras: ") for w in warnings)
    for construct in (
        "correctResponse (a model answer) dropped",
        "responseProcessing (match_correct) dropped",
        "format='xhtml'",
        "placeholderText='Type here' dropped",
        "patternMask='^.{0,500}$' dropped",
        "minStrings:",
    ):
        assert sum(construct in w for w in warnings) == 1, construct
    assert len(warnings) == 6


def zh_folder(folder: Path) -> Path:
    """Two Chinese items without xml:lang: the essay and the choice with its tag removed."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(EXTRA / "zh_essay_length.xml", folder / "a_essay.xml")
    text = (EXTRA / "qti22_choice_zh.xml").read_text(encoding="utf-8")
    (folder / "b_choice.xml").write_text(text.replace(' xml:lang="zh-CN"', ""), encoding="utf-8")
    return folder


def test_chinese_items_without_xml_lang_are_zh_cn(tmp_path: Path) -> None:
    """Without xml:lang the text decides: Chinese items give zh-CN, English ones en."""
    assert load_qti(zh_folder(tmp_path / "zh")).language == "zh-CN"
    assert load_qti(EXTRA / "qti22_two_blanks.xml").language == "en"


def test_items_declaring_different_languages_are_warned(tmp_path: Path) -> None:
    """Items tagged zh-CN twice and en once make a zh-CN paper, with a warning counting them."""
    folder = zh_folder(tmp_path / "mixed")
    text = (EXTRA / "qti22_choice_zh.xml").read_text(encoding="utf-8")
    (folder / "c.xml").write_text(text.replace('"zh_single"', '"zh2"'), encoding="utf-8")
    english = text.replace('"zh_single"', '"en1"').replace('xml:lang="zh-CN"', 'xml:lang="en"')
    (folder / "d.xml").write_text(english, encoding="utf-8")
    (folder / "b_choice.xml").write_text(text, encoding="utf-8")
    paper, warnings = load_qti_with_warnings(folder)
    assert paper.language == "zh-CN"
    (warning,) = [w for w in warnings if "language" in w]
    assert warning.startswith("mixed: paper: language: the items declare zh-CN (2), en (1)")


def manifest_zip(path: Path, organization: str, lom: str, identifier: str) -> Path:
    """A content package of the two Chinese items, with the given manifest metadata."""
    resources = "".join(
        f'<resource identifier="r{n}" type="imsqti_item_xmlv2p1" href="{href}"/>'
        for n, href in enumerate(["a_essay.xml", "b_choice.xml"])
    )
    manifest = (
        f'<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" '
        f'xmlns:imsmd="http://www.imsglobal.org/xsd/imsmd_v1p2"{identifier}>'
        f"<metadata><schema>QTIv2.1 Package</schema>{lom}</metadata>"
        f"{organization}<resources>{resources}</resources></manifest>"
    )
    items = zh_folder(path.parent / "items")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("imsmanifest.xml", manifest)
        for item in items.iterdir():
            archive.write(item, item.name)
    return path


def test_manifest_title_and_identifier_become_the_papers(tmp_path: Path) -> None:
    """The default organization's title and the manifest identifier name the paper."""
    organization = (
        '<organizations default="org1"><organization identifier="org0"><title>Other</title>'
        '</organization><organization identifier="org1"><title> 项目管理 练习 </title>'
        "</organization></organizations>"
    )
    package = manifest_zip(tmp_path / "qti.zip", organization, "", ' identifier="PM-2026/01"')
    paper, warnings = load_qti_with_warnings(package)
    assert (paper.title, paper.subject_name, paper.paper_id) == (
        "项目管理 练习", "项目管理 练习", "PM-2026-01",
    )  # fmt: skip
    assert paper.language == "zh-CN"
    assert not any("title" in w for w in warnings)


def test_manifest_lom_title_is_used_without_an_organization(tmp_path: Path) -> None:
    """Without organizations, the manifest's own LOM general/title names the paper."""
    lom = (
        "<imsmd:lom><imsmd:general><imsmd:title>"
        '<imsmd:langstring xml:lang="zh-CN">风险管理专项</imsmd:langstring>'
        "</imsmd:title></imsmd:general></imsmd:lom>"
    )
    paper = load_qti(manifest_zip(tmp_path / "qti.zip", "", lom, ""))
    assert (paper.title, paper.paper_id) == ("风险管理专项", "qti")


def test_folder_without_a_title_is_named_with_a_warning(tmp_path: Path) -> None:
    """Loose items give no package title: the folder name is used and the warning says how
    to give one; --title (metadata) silences it."""
    folder = zh_folder(tmp_path / "qti")
    paper, warnings = load_qti_with_warnings(folder)
    assert paper.title == "qti"
    (warning,) = [w for w in warnings if "title" in w]
    assert warning.startswith("qti: paper: title: ") and "--title" in warning
    paper, warnings = load_qti_with_warnings(folder, title="练习")
    assert paper.title == "练习" and not any("title" in w for w in warnings)


def test_cli_prints_each_warning_once_and_writes_a_final_newline(
    qti_fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate and convert of a set with the real essay and the Chinese essay print every
    warning once (the essay's too), and the YAML written ends with one newline."""
    source = zh_folder(tmp_path / "qti")
    copy_item(qti_fixtures / ESSAY, source)
    copy_item(qti_fixtures / TEXT_ENTRY, source)
    for argv in (
        ["validate", str(source)],
        ["convert", str(source), "--out", str(tmp_path / "out" / "paper.yaml")],
    ):
        assert main(argv) == 0
        lines = capsys.readouterr().err.splitlines()
        assert all(line.startswith("warning: ") for line in lines)
        assert len(lines) == len(set(lines)), lines
        for item in ("essay400", "extendedText"):
            assert sum(f"item {item}: points: no MAXSCORE" in line for line in lines) == 1
            assert sum(f"item {item}: max_length:" in line for line in lines) == 1
    text = (tmp_path / "out" / "paper.yaml").read_text(encoding="utf-8")
    assert text.endswith("\n") and not text.endswith("\n\n")


# --- an assessmentTest beside its items ----------------------------------------------------------

RTEST_ITEMS = ("item034", "item160", "item063", "item434", "item065", "item365", "item347",
               "item653", "item656")  # fmt: skip


def choice_item_xml(identifier: str) -> str:
    return (
        '<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" '
        f'identifier="{identifier}" title="{identifier}" adaptive="false" timeDependent="false">'
        '<responseDeclaration identifier="RESPONSE" cardinality="single" baseType="identifier">'
        "<correctResponse><value>A</value></correctResponse></responseDeclaration>"
        '<itemBody><choiceInteraction responseIdentifier="RESPONSE" maxChoices="1">'
        f"<prompt>Question {identifier}</prompt>"
        '<simpleChoice identifier="A">yes</simpleChoice>'
        '<simpleChoice identifier="B">no</simpleChoice></choiceInteraction></itemBody>'
        '<responseProcessing template="http://www.imsglobal.org/question/qti_v2p1/rptemplates/'
        'match_correct"/></assessmentItem>'
    )


def rtest_folder(qti_fixtures: Path, folder: Path, max_time: str = "") -> Path:
    """RTEST-12 beside stand-in items under the names it refers to."""
    folder.mkdir(parents=True)
    text = (qti_fixtures / TEST_FILE).read_text(encoding="utf-8")
    if max_time:
        text = text.replace(
            "    <testPart", f'    <timeLimits maxTime="{max_time}"/>\n    <testPart'
        )
    (folder / TEST_FILE).write_text(text, encoding="utf-8")
    for identifier in RTEST_ITEMS:
        (folder / f"{identifier}.xml").write_text(choice_item_xml(identifier), encoding="utf-8")
    return folder


def test_assessment_test_names_and_orders_the_paper(qti_fixtures: Path, tmp_path: Path) -> None:
    """With its items beside it, RTEST-12 gives the paper its title, id, item order and its
    time limit; what the paper cannot keep is warned once each, naming the test."""
    folder = rtest_folder(qti_fixtures, tmp_path / "qti", max_time="5400")
    (folder / "stray.xml").write_text(choice_item_xml("stray"), encoding="utf-8")
    paper, warnings = load_qti_with_warnings(folder)
    assert (paper.title, paper.paper_id) == ("Golden (required) Items and Sections", "RTEST-12")
    assert paper.duration_minutes == 90
    assert [i.item_id for i in paper.items()] == list(RTEST_ITEMS)
    where = f"{TEST_FILE}: assessmentTest RTEST-12: "
    test_warnings = [w for w in warnings if w.startswith(where)]
    assert len(test_warnings) == len(warnings) == 5, warnings
    for construct in (
        "sections: sectionA, sectionB, sectionB1 became one section",
        "selection dropped",
        'ordering shuffle="true" dropped',
        "rubricBlock dropped",
        "items: stray.xml not part of the test, so not imported",
    ):
        assert sum(construct in w for w in test_warnings) == 1, construct


def test_assessment_test_in_a_content_package(qti_fixtures: Path, tmp_path: Path) -> None:
    """A zip whose manifest lists only the test imports the items the test refers to."""
    package = tmp_path / "exam.zip"
    manifest = (
        '<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" identifier="MANIFEST-1">'
        '<resources><resource identifier="t" type="imsqti_test_xmlv2p1" href="tests/rtest.xml"/>'
        "</resources></manifest>"
    )
    text = (qti_fixtures / TEST_FILE).read_text(encoding="utf-8")
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("imsmanifest.xml", manifest)
        archive.writestr("tests/rtest.xml", text.replace('href="', 'href="../items/'))
        for identifier in RTEST_ITEMS:
            archive.writestr(f"items/{identifier}.xml", choice_item_xml(identifier))
    paper = load_qti(package)
    assert paper.paper_id == "RTEST-12" and len(paper.items()) == len(RTEST_ITEMS)


def test_two_assessment_tests_are_refused_with_every_other_problem(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """Two tests in one folder are an error; the items are still read and checked."""
    folder = rtest_folder(qti_fixtures, tmp_path / "two")
    shutil.copyfile(folder / TEST_FILE, folder / "copy.xml")
    (folder / "item034.xml").write_text("<broken", encoding="utf-8")
    problems = problems_of(folder)
    assert any("holds 2 assessmentTests" in p and "copy.xml" in p for p in problems)
    assert any(p.startswith("item034.xml: not well-formed XML") for p in problems)


def test_implausible_test_time_limit_is_warned(qti_fixtures: Path, tmp_path: Path) -> None:
    """maxTime of 1 minute is not an exam length: the default is kept, with a warning."""
    paper, warnings = load_qti_with_warnings(
        rtest_folder(qti_fixtures, tmp_path / "t", max_time="60")
    )
    assert paper.duration_minutes == 60
    assert sum("duration_minutes: timeLimits maxTime='60'" in w for w in warnings) == 1


def test_attributes_of_qti_elements_and_stylesheets_are_warned(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """On the real OpenOLAT item: a class on the interaction and on a simpleChoice, and the
    item's stylesheet, are each one warning; the attributes QTI's converter reads are not."""
    item = copy_item(qti_fixtures / OPENOLAT, tmp_path)
    text = item.read_text(encoding="utf-8")
    text = (
        text.replace('maxChoices="0"', 'maxChoices="0" class="qti-labels-upper-alpha"')
        .replace(
            '<simpleChoice identifier="mc1b7b8257e2419b880936ea11bff1f1"',
            '<simpleChoice class="wrong" identifier="mc1b7b8257e2419b880936ea11bff1f1"',
        )
        .replace("  <itemBody>", '  <stylesheet href="olat.css" type="text/css"/>\n  <itemBody>')
    )
    item.write_text(text, encoding="utf-8")
    _, warnings = load_qti_with_warnings(item)
    (classes,) = [w for w in warnings if "class=" in w]
    assert "stem, option mc1b7b8257e2419b880936ea11bff1f1: class= dropped from" in classes
    assert "<choiceInteraction>, <simpleChoice>" in classes
    assert sum("stylesheet 'olat.css' dropped" in w for w in warnings) == 1
    assert not any(name in w for w in warnings for name in ("shuffle=", "orientation="))


def test_a_blank_mapping_default_that_gives_marks_is_warned(
    qti_fixtures: Path, tmp_path: Path
) -> None:
    """defaultValue 0.25 gives any answer marks in QTI; here only accepted answers score."""
    item = copy_item(qti_fixtures / TEXT_ENTRY, tmp_path)
    text = item.read_text(encoding="utf-8")
    item.write_text(text.replace('defaultValue="0"', 'defaultValue="0.25"'), encoding="utf-8")
    _, warnings = load_qti_with_warnings(item)
    (warning,) = [w for w in warnings if "defaultValue" in w]
    assert "item textEntry: response RESPONSE: accepted: the mapping's defaultValue 0.25" in warning
