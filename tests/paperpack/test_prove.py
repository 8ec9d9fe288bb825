"""The variant proof: every candidate's variant scores full marks under the key, or the
first counter-example is reported."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from hypothesis import given, settings

from paperpack.cli import main
from paperpack.model import Blank, Paper, Section
from paperpack.paperfile import dump_paper
from paperpack.prove import ProofFailed, prove_paper
from paperpack.synthetic import synthetic_paper
from paperpack.variants import build_variants, variant_digest
from tests.strategies import papers, secrets

SECRET = bytes(range(32))


def replace_item(paper: Paper, item_id: str, **changes) -> Paper:
    """`paper` with one item changed (the rest untouched)."""
    sections = tuple(
        Section(
            s.section_id,
            s.title,
            tuple(
                dataclasses.replace(i, **changes) if i.item_id == item_id else i for i in s.items
            ),
            s.instructions,
            s.shuffle,
        )
        for s in paper.sections
    )
    return dataclasses.replace(paper, sections=sections)


def test_proof_of_a_synthetic_paper():
    """Every candidate gets full marks, planted answers score as expected, tokens are unique."""
    paper = synthetic_paper(40, seed=7)
    tickets = [f"T{n:03d}" for n in range(30)]
    report = prove_paper(paper, tickets, "S1", SECRET)
    assert report.candidates == report.full_marks == report.planted_sheets == 30
    assert report.planted_items == 30 * 40
    assert report.item_tokens == 30 * 40
    assert report.objective_points == math.fsum(
        i.points for i in paper.items() if i.type != "essay"
    )
    assert report.digest == variant_digest(build_variants(paper, SECRET, "S1", tickets).values())


@settings(max_examples=30, deadline=None)
@given(papers(), secrets())
def test_every_generated_paper_passes_the_proof(paper: Paper, secret: bytes):
    """Papers with every item type, fixed options and scoring rule pass the proof."""
    forms = {"T2": paper.forms[-1]} if paper.forms else {}
    report = prove_paper(paper, ["T1", "T2", "T3"], "S1", secret, forms)
    assert report.full_marks == 3


def test_a_key_that_names_no_option_is_a_counter_example():
    """A key naming an option the item does not have fails, naming the ticket and item."""
    paper = synthetic_paper(20, seed=1)
    target = next(i for i in paper.items() if i.type == "single_choice")
    broken = replace_item(paper, target.item_id, key=("zz",))
    with pytest.raises(
        ProofFailed, match=rf"ticket T0: item {target.item_id} answered with the key"
    ):
        prove_paper(broken, ["T0", "T1"], "S1", SECRET)


def test_a_blank_without_accepted_answers_is_a_counter_example():
    """A fill-in blank nobody can answer right cannot score full marks: the proof says which."""
    paper = synthetic_paper(20, seed=1)
    target = next(i for i in paper.items() if i.type == "fill_blank")
    broken = replace_item(paper, target.item_id, blanks=(Blank("b1", ()),))
    with pytest.raises(ProofFailed, match=rf"item {target.item_id} answered with the key"):
        prove_paper(broken, ["T0"], "S1", SECRET)


def test_duplicate_tickets_are_refused():
    """A roster with a ticket twice is refused before any variant is built."""
    with pytest.raises(ProofFailed, match="'T1' appears twice"):
        prove_paper(synthetic_paper(10), ["T1", "T2", "T1"], "S1", SECRET)


@pytest.fixture
def paper_file(tmp_path: Path) -> Path:
    path = tmp_path / "paper.yaml"
    dump_paper(synthetic_paper(30, seed=3, forms=("A", "B")), path)
    return path


def test_cli_proves_n_candidates_and_prints_the_digest(paper_file: Path, capsys):
    """`paperpack prove PAPER --candidates N` prints the summary and the same digest as the API."""
    code = main(["prove", str(paper_file), "--candidates", "25", "--secret-hex", SECRET.hex()])
    out = capsys.readouterr().out
    assert code == 0
    assert "full marks       25 of 25" in out and "proof: OK" in out
    paper = synthetic_paper(30, seed=3, forms=("A", "B"))
    tickets = [f"{n:06d}" for n in range(1, 26)]
    forms = {t: ("A", "B")[n % 2] for n, t in enumerate(tickets)}
    digest = variant_digest(build_variants(paper, SECRET, "prove", tickets, forms).values())
    assert f"variant digest   {digest}\n" in out


def test_cli_reads_a_roster_with_forms(paper_file: Path, tmp_path: Path, capsys):
    """A roster CSV gives the tickets (and forms); the summary counts them."""
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "ticket,name,form\n2026001,张三,A\n2026002,Li Si,B\n2026003,王五,\n", encoding="utf-8"
    )
    assert main(["prove", str(paper_file), "--roster", str(roster), "--session-id", "S9"]) == 0
    out = capsys.readouterr().out
    assert "candidates       3\n" in out and "random secret" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id,name\n1,x\n", "'ticket' column"),
        (b"", "'ticket' column"),
        (b"ticket\n2026001\n\n,\n", "line 4: empty ticket"),
        (b"ticket\n1\n1\n", "appears twice"),
        (b"ticket,form\n1,Z\n", "form 'Z' is not one of paper"),
        (b"ticket\n1\n\xff\xfe\n", "not a UTF-8 CSV file"),
    ],
)
def test_cli_bad_roster_is_one_error_line(
    paper_file: Path, tmp_path: Path, capsys, content, message
):
    """A bad roster exits 1 with one line saying what is wrong."""
    roster = tmp_path / "roster.csv"
    roster.write_bytes(content)
    assert main(["prove", str(paper_file), "--roster", str(roster)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("paperpack: error: ") and message in err and err.count("\n") == 1


def test_cli_bad_secret_hex_is_refused(paper_file: Path, capsys):
    """--secret-hex that is not hex exits 1; one too short exits 1 saying how long it must be."""
    assert main(["prove", str(paper_file), "--candidates", "2", "--secret-hex", "zz"]) == 1
    assert "not hexadecimal" in capsys.readouterr().err
    assert main(["prove", str(paper_file), "--candidates", "2", "--secret-hex", "00ff"]) == 1
    assert "at least 16" in capsys.readouterr().err


def test_cli_needs_candidates_or_roster(paper_file: Path):
    """Neither --candidates nor --roster (or N < 1) is a usage error, exit 2."""
    with pytest.raises(SystemExit) as missing:
        main(["prove", str(paper_file)])
    assert missing.value.code == 2
    with pytest.raises(SystemExit) as zero:
        main(["prove", str(paper_file), "--candidates", "0"])
    assert zero.value.code == 2
