"""`paperpack prove`: the variant proof of art. 24 for a paper and a roster (or N candidates).

The arguments are declared in paperpack.commands.prove_args.
"""

from __future__ import annotations

import argparse
import csv
import secrets
from pathlib import Path

from paperpack.errors import PaperpackError
from paperpack.paperfile import load_paper
from paperpack.prove import ProofReport, prove_paper


def read_roster(path: Path) -> tuple[list[str], dict[str, str]]:
    """Tickets (in file order) and, where the roster has a 'form' column, ticket -> form."""
    tickets: list[str] = []
    forms: dict[str, str] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if "ticket" not in (reader.fieldnames or ()):
                raise PaperpackError(f"roster {path} needs a header row with a 'ticket' column")
            for row in reader:
                ticket = (row.get("ticket") or "").strip()
                if not ticket:
                    raise PaperpackError(
                        f"roster {path} line {reader.line_num}: empty ticket; "
                        "fill it in or drop the row"
                    )
                tickets.append(ticket)
                form = (row.get("form") or "").strip()
                if form:
                    forms[ticket] = form
    except OSError as exc:
        raise PaperpackError(f"cannot read roster {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PaperpackError(f"roster {path} is not a UTF-8 CSV file: {exc}") from None
    return tickets, forms


def _secret(text: str | None) -> bytes:
    if text is None:
        return secrets.token_bytes(32)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise PaperpackError(
            "--secret-hex is not hexadecimal: give an even number of 0-9a-f"
        ) from None


def run_prove(args: argparse.Namespace) -> int:
    paper = load_paper(args.paper)
    if args.roster is not None:
        tickets, forms = read_roster(args.roster)
    else:
        width = max(6, len(str(args.candidates)))
        tickets = [f"{n:0{width}d}" for n in range(1, args.candidates + 1)]
        forms = (
            {t: paper.forms[n % len(paper.forms)] for n, t in enumerate(tickets)}
            if paper.forms
            else {}
        )
    report = prove_paper(paper, tickets, args.session_id, _secret(args.secret_hex), forms)
    print(summary(report, secret_given=args.secret_hex is not None))
    return 0


def summary(report: ProofReport, *, secret_given: bool) -> str:
    """The proof's result as a few aligned lines."""
    types = ", ".join(f"{n} {t}" for t, n in sorted(report.items_by_type.items()))
    essays = report.items_by_type.get("essay", 0)
    lines = [
        f"paper            {report.paper_id}: {sum(report.items_by_type.values())} items ({types})",
        f"objective points {report.objective_points:g}"
        + (f" ({essays} essays excluded: marked by people)" if essays else ""),
        f"candidates       {report.candidates}",
        f"full marks       {report.full_marks} of {report.candidates} "
        "(the key answered in display order)",
        f"planted checks   {report.planted_sheets} sheets, "
        f"{report.planted_items} planted answers scored as expected",
        f"render checks    {report.render_checks} rendered papers without ids or keys",
        f"item tokens      {report.item_tokens} distinct (none shared between candidates)",
        f"time             {report.seconds:.2f} s",
        f"variant digest   {report.digest}"
        + ("" if secret_given else " (random secret: give --secret-hex to reproduce)"),
        "proof: OK",
    ]
    return "\n".join(lines)
