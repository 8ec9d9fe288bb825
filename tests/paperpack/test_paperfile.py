"""The native paper format: the bad-paper kit, the sample paper, round trips and the CLI."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperpack.cli import main
from paperpack.errors import PaperInvalid, PaperpackError
from paperpack.html import sanitise
from paperpack.model import (
    ITEM_TYPES,
    Asset,
    Blank,
    Item,
    Normalisation,
    Option,
    Paper,
    Section,
    paper_from_dict,
    paper_to_dict,
)
from paperpack.paperfile import (
    check_paper_data,
    dump_paper,
    load_paper,
    paper_problems,
    paper_schema,
)
from tests.paperpack.conftest import bad_paper_files, expected_problems, minimal_paper

BAD = bad_paper_files()


def problems_of(path: Path) -> list[str]:
    """The problems load_paper reports for `path`, without the leading 'FILE: '."""
    with pytest.raises(PaperInvalid) as caught:
        load_paper(path)
    prefix = f"{path}: "
    assert all(line.startswith(prefix) for line in caught.value.problems)
    return [line[len(prefix) :] for line in caught.value.problems]


# --- the bad-paper kit ----------------------------------------------------------------------


def test_the_kit_covers_the_error_classes() -> None:
    """The bad-paper kit holds one file for each error class the issue names, at least."""
    names = {p.stem for p in BAD}
    for needed in (
        "duplicate_item_id", "duplicate_option_id", "duplicate_section_id", "duplicate_blank_id",
        "missing_key", "key_not_among_options", "single_choice_two_keys", "points_zero",
        "missing_asset_file", "missing_asset_reference", "unsafe_script", "unsafe_onclick",
        "unsafe_javascript_url", "unsafe_remote_image", "empty_section", "unknown_item_field",
        "duration_too_short", "duration_too_long", "malformed_yaml",
        "partial_points_not_below_points", "partial_without_partial_points",
        "fill_blank_without_accepted",
    ):  # fmt: skip
        assert needed in names
    assert all(expected_problems(p) for p in BAD)


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_paper_names_location_field_and_problem(path: Path) -> None:
    """Each bad paper fails with exactly its expected problems, naming where and which field."""
    got = problems_of(path)
    expected = expected_problems(path)
    assert len(got) == len(expected), got
    for line in expected:
        assert any(problem.startswith(line) for problem in got), (line, got)


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_validate_cli_lists_every_problem_and_exits_1(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`paperpack validate` on a bad paper exits 1, one problem per stderr line, then the count."""
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    expected = expected_problems(path)
    assert len(lines) == len(expected) + 1
    assert lines[-1] == f"{len(expected)} problem{'s' if len(expected) > 1 else ''} in {path}"
    for line in expected:
        assert any(err.startswith(f"{path}: {line}") for err in lines)
    assert captured.out == ""


def test_every_problem_in_a_paper_is_reported(write_paper: Callable[..., Path]) -> None:
    """Problems in several items and at paper level are all reported in one run."""
    data = minimal_paper()
    data["duration_minutes"] = 2
    items = data["sections"][0]["items"]
    items.append({**items[0], "id": "q2", "key": "Z"})
    items.append({**items[0], "id": "q3", "stem": "<p onclick='x()'>Pick</p>"})
    items.append({**items[0], "id": "q4", "shufle_options": True})
    got = problems_of(write_paper(data))
    assert [line.split(":")[0] for line in got] == ["item q4", "paper", "item q2", "item q3"]
    assert any(line.startswith("item q4: shufle_options: unknown field") for line in got)


def test_unsafe_html_is_refused_not_cleaned(write_paper: Callable[..., Path]) -> None:
    """A stem with a script is refused, so an author never gets a silently changed paper."""
    data = minimal_paper()
    data["sections"][0]["items"][0]["stem"] = "<p>Pick</p><script>alert(1)</script>"
    assert problems_of(write_paper(data)) == [
        "item q1: stem: unsafe HTML: <script> element; scripts never run in exam content"
    ]


def test_yaml_error_names_its_line(tmp_path: Path) -> None:
    """Malformed YAML is reported with the line and column where the parser stopped."""
    path = tmp_path / "paper.yaml"
    path.write_text("paper_id: x\nsections:\n  - id: [unclosed\n", encoding="utf-8")
    (problem,) = problems_of(path)
    assert problem.startswith("paper: yaml: malformed YAML at line 4, column 1:")


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A paper path that does not exist is named, with exit 1."""
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == 1
    assert f"{missing}: paper: file: not found" in capsys.readouterr().err


def test_unsupported_extension_is_refused(tmp_path: Path) -> None:
    """A file that is neither YAML, JSON nor QTI is refused with the types that work."""
    path = tmp_path / "paper.txt"
    path.write_text("hello", encoding="utf-8")
    (problem,) = problems_of(path)
    assert "unsupported file type '.txt'" in problem


def test_paper_problems_checks_a_built_paper() -> None:
    """paper_problems finds problems in a Paper built in code (as QTI import does)."""
    item = Item("q1", "single_choice", '<img src="http://x/y.png">', 1.0,
                options=(Option("A", "a"), Option("B", "b")), key=("C",))  # fmt: skip
    paper = Paper("p", "01", "S", "T", "en", 60, (Section("s1", "One", (item,)),))
    got = paper_problems(paper, "built")
    assert any(p.startswith("built: item q1: stem: unsafe HTML: remote URL") for p in got)
    assert any(p.startswith("built: item q1: key: 'C' is not among the options") for p in got)


# --- the sample paper -----------------------------------------------------------------------


def test_sample_paper_validates(sample_paper_path: Path) -> None:
    """The sample paper loads: 12 items, all five types, an image, partial credit, fixed option."""
    paper = load_paper(sample_paper_path)
    assert len(paper.items()) == 12
    assert {item.type for item in paper.items()} == set(ITEM_TYPES)
    assert paper.total_points == 100 and paper.pass_mark == 60
    assert paper.asset("evm-chart.png").data.startswith(b"\x89PNG\r\n\x1a\n")
    assert {i.scoring for i in paper.items() if i.type == "multiple_choice"} == {
        "partial",
        "all_or_nothing",
    }
    assert any(o.fixed for o in paper.item("q03").options)
    assert len(paper.item("q09").blanks) == 2
    assert paper.item("q07").key == ("true",) and paper.item("q08").key == ("false",)


def test_validate_cli_prints_a_summary(
    sample_paper_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`paperpack validate` on the sample exits 0 with items by type and total points."""
    assert main(["validate", str(sample_paper_path)]) == 0
    out = capsys.readouterr().out
    assert "2026H2-ITPM-01" in out
    assert (
        "items     12: single_choice 4, multiple_choice 2, true_false 2, fill_blank 2, essay 2"
        in out
    )
    assert "points    total 100, pass mark 60" in out
    assert "duration 150 min" in out


def test_loaded_html_is_sanitised(sample_paper_path: Path) -> None:
    """Every HTML fragment of a loaded paper is already in sanitised form."""
    paper = load_paper(sample_paper_path)
    for item in paper.items():
        assert sanitise(item.stem) == item.stem
        assert all(sanitise(o.html) == o.html for o in item.options)


def test_integer_ids_become_text(write_paper: Callable[..., Path]) -> None:
    """Ids written as YAML numbers are read as text, so keys still match."""
    data = minimal_paper()
    item = data["sections"][0]["items"][0]
    item.update(id=7, options=[{"id": 1, "html": "one"}, {"id": 2, "html": "two"}], key=[2])
    paper = load_paper(write_paper(data))
    assert paper.item("7").key == ("2",)


def test_metadata_overrides_apply(write_paper: Callable[..., Path]) -> None:
    """Metadata given to load_paper replaces the file's, and is validated like it."""
    path = write_paper(minimal_paper())
    assert load_paper(path, title="New title", duration_minutes=90).title == "New title"
    with pytest.raises(PaperInvalid, match="duration_minutes: 1 minutes"):
        load_paper(path, duration_minutes=1)


# --- round trips ----------------------------------------------------------------------------


def test_sample_round_trips_through_yaml_and_json(sample_paper_path: Path, tmp_path: Path) -> None:
    """dump_paper then load_paper gives the same Paper, in YAML and in JSON."""
    paper = load_paper(sample_paper_path)
    for name in ("out.yaml", "out.json"):
        dump_paper(paper, tmp_path / name)
        assert load_paper(tmp_path / name) == paper
    assert (tmp_path / "assets" / "evm-chart.png").read_bytes() == paper.asset("evm-chart.png").data


def test_embedded_assets_are_accepted(sample_paper_path: Path, tmp_path: Path) -> None:
    """The paper_to_dict form with base64-embedded assets loads as the same paper."""
    paper = load_paper(sample_paper_path)
    path = tmp_path / "embedded.json"
    path.write_text(json.dumps(paper_to_dict(paper), ensure_ascii=False), encoding="utf-8")
    assert load_paper(path) == paper


def test_dump_names_asset_files_by_media_type(tmp_path: Path) -> None:
    """An asset whose name lacks the right extension is written with one, and reads back."""
    png = (Path(__file__).parents[2] / "examples" / "assets" / "evm-chart.png").read_bytes()
    item = Item("q1", "essay", '<p>Describe <img src="asset:chart"></p>', 5.0)
    paper = Paper("p", "01", "S", "T", "en", 60, (Section("s1", "One", (item,)),),
                  assets=(Asset("chart", "image/png", png),))  # fmt: skip
    dump_paper(paper, tmp_path / "p.yaml")
    assert (tmp_path / "assets" / "chart.png").read_bytes() == png
    assert load_paper(tmp_path / "p.yaml") == paper


def test_dump_does_not_overwrite_a_different_asset(sample_paper_path: Path, tmp_path: Path) -> None:
    """dump_paper refuses to replace an existing, different file in assets/."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "evm-chart.png").write_bytes(b"another paper's picture")
    with pytest.raises(PaperpackError, match="already exists with different content"):
        dump_paper(load_paper(sample_paper_path), tmp_path / "out.yaml")


ID = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,6}", fullmatch=True)
TEXT = st.text(alphabet="ab 中文\n<>&\"'ＡＢ１", min_size=1, max_size=20)
HTML = TEXT.map(sanitise).filter(lambda h: h.strip() != "")
POINTS = st.sampled_from([0.5, 1.0, 2.0, 3.5, 10.0])


@st.composite
def items(draw: st.DrawFn, item_id: str) -> Item:
    kind = draw(st.sampled_from(ITEM_TYPES))
    points = draw(POINTS)
    stem = draw(HTML)
    if kind == "true_false":
        options = (Option("true", draw(HTML), True), Option("false", draw(HTML), True))
        key = (draw(st.sampled_from(["true", "false"])),)
        return Item(item_id, kind, stem, points, options, key, shuffle_options=False)
    if kind in ("single_choice", "multiple_choice"):
        ids = draw(st.lists(ID, min_size=2, max_size=5, unique=True))
        options = tuple(Option(i, draw(HTML), draw(st.booleans())) for i in ids)
        size = 1 if kind == "single_choice" else draw(st.integers(1, len(ids)))
        key = tuple(draw(st.permutations(ids))[:size])
        partial = kind == "multiple_choice" and size >= 2 and draw(st.booleans())
        return Item(item_id, kind, stem, points, options, key, draw(st.booleans()),
                    "partial" if partial else "all_or_nothing",
                    points / 2 if partial else 0.0)  # fmt: skip
    if kind == "fill_blank":
        ids = draw(st.lists(ID, min_size=1, max_size=3, unique=True))
        blanks = tuple(
            Blank(i, tuple(draw(st.lists(TEXT.filter(str.strip), min_size=1, max_size=3))),
                  Normalisation(*draw(st.tuples(*[st.booleans()] * 4))))
            for i in ids
        )  # fmt: skip
        return Item(item_id, kind, stem, points, blanks=blanks)
    return Item(item_id, kind, stem, points, max_length=draw(st.integers(0, 5000)))


@st.composite
def papers(draw: st.DrawFn) -> Paper:
    item_ids = iter(draw(st.lists(ID, min_size=4, max_size=4, unique=True)))
    sections = []
    for n in range(draw(st.integers(1, 2))):
        count = draw(st.integers(1, 2))
        section_items = tuple(draw(items(next(item_ids))) for _ in range(count))
        sections.append(
            Section(f"s{n}", draw(TEXT), section_items, draw(HTML), draw(st.booleans()))
        )
    total = sum(i.points for s in sections for i in s.items)
    return Paper(draw(ID), draw(TEXT.filter(str.strip)), draw(TEXT.filter(str.strip)),
                 draw(TEXT.filter(str.strip)), draw(st.sampled_from(["zh-CN", "en"])),
                 draw(st.integers(5, 600)), tuple(sections),
                 kind=draw(st.sampled_from(["standard", "audio_video"])),
                 forms=tuple(draw(st.lists(st.sampled_from("ABC"), unique=True, max_size=3))),
                 pass_mark=draw(st.none() | st.just(total / 2)))  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(paper=papers())
def test_any_valid_paper_round_trips(paper: Paper, tmp_path: Path) -> None:
    """For generated valid papers, load_paper(dump_paper(paper)) == paper."""
    path = tmp_path / "generated.yaml"
    dump_paper(paper, path)
    assert load_paper(path) == paper


# --- convert ----------------------------------------------------------------------------------


def test_convert_writes_a_paper_that_validates(
    qti_fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`paperpack convert` turns a QTI item into native YAML that loads with the given metadata."""
    source = qti_fixtures / "qti21_choice_multiple_openolat_partial_credit.xml"
    out = tmp_path / "out" / "paper.yaml"
    argv = ["convert", str(source), "--out", str(out), "--paper-id", "P-1", "--duration", "45"]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    paper = load_paper(out)
    assert (paper.paper_id, paper.duration_minutes) == ("P-1", 45)
    assert [item.type for item in paper.items()] == ["multiple_choice"]
    assert main(["validate", str(out)]) == 0


def test_validate_reads_qti(qti_fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`paperpack validate` hands a QTI file to the importer and summarises the result."""
    assert main(["validate", str(qti_fixtures / "qti21_text_entry_mapping.xml")]) == 0
    assert "items     1: fill_blank 1" in capsys.readouterr().out


def test_convert_of_a_missing_file_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`paperpack convert` names a missing source and writes nothing."""
    out = tmp_path / "paper.yaml"
    assert main(["convert", str(tmp_path / "none.xml"), "--out", str(out)]) == 1
    assert "none.xml: paper: file: not found" in capsys.readouterr().err
    assert not out.exists()


# --- the documentation ----------------------------------------------------------------------

DOC = Path(__file__).parents[2] / "docs" / "paper-format.md"


def schema_field_names(node: object) -> set[str]:
    """Every property name defined anywhere in the schema."""
    names: set[str] = set()
    if isinstance(node, dict):
        names |= set(node.get("properties", {}))
        for value in node.values():
            names |= schema_field_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= schema_field_names(value)
    return names


def test_every_schema_field_is_documented() -> None:
    """docs/paper-format.md explains every field the schema allows."""
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(n for n in schema_field_names(paper_schema()) if f"`{n}`" not in text)
    assert missing == []


def test_documented_example_paper_validates(tmp_path: Path) -> None:
    """The complete example paper in the documentation loads without problems."""
    blocks = DOC.read_text(encoding="utf-8").split("```yaml\n")[1:]
    papers_in_doc = [b.split("```")[0] for b in blocks if b.startswith("paper_id:")]
    assert papers_in_doc
    for n, text in enumerate(papers_in_doc):
        path = tmp_path / f"doc{n}.yaml"
        path.write_text(text, encoding="utf-8")
        assert {item.type for item in load_paper(path).items()} == set(ITEM_TYPES)


# --- robustness -----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 700) | st.floats(-2, 5) | st.sampled_from(
        ["", "A", "q1", "essay", "partial", "<p>x</p>", '<img src="asset:z">', "asset:z"]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "type", "key", "points", "html", "options", "blanks", "accepted",
                         "items", "stem", "scoring", "partial_points", "x"]), inner, max_size=4),
    max_leaves=8,
)  # fmt: skip


def paths_of(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path to a value inside plain data."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            found += paths_of(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += paths_of(v, (*prefix, i))
    return found


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_damage_is_reported_never_a_crash(data: st.DataObject) -> None:
    """Replacing any value of a paper with arbitrary data gives problems, never an exception."""
    raw = minimal_paper()
    raw["sections"][0]["items"].append(
        {
            "id": "q2",
            "type": "fill_blank",
            "stem": "<p>(1)</p>",
            "blanks": [{"id": "b", "accepted": ["x"]}],
        }
    )
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n not a full picture").decode()
    raw["assets"] = {"z": {"media_type": "image/png", "data": png}}
    raw["sections"][0]["items"][0]["stem"] = '<p>Pick <img src="asset:z"></p>'
    path = data.draw(st.sampled_from(paths_of(raw)))
    node = raw
    for step in path[:-1]:
        node = node[step]  # type: ignore[index]
    node[path[-1]] = data.draw(JSON_VALUES)  # type: ignore[index]
    normalised, problems = check_paper_data(raw, "x.yaml", None)
    assert all(p.startswith("x.yaml: ") for p in problems)
    if not problems:
        paper_from_dict(normalised)


def test_validate_prints_qti_import_warnings(
    qti_fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`paperpack validate` of a QTI item with negative marks passes but warns what changed."""
    code = main(["validate", str(qti_fixtures / "qti21_choice_multiple_mapping.xml")])
    assert code == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "negative marks" in err
