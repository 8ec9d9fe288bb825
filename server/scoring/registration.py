"""The centre's registration data for results: ticket -> name and ID number.

The venue export carries no names or ID numbers (the centre holds the registration data), so
`cbt central score --roster FILE.csv` takes them from the registration CSV (UTF-8, BOM or not;
columns `ticket, name, id_number`), checks every row, and keeps a copy in the session's
results directory (`registration.json`, mode 0600) for later runs. The centre's registration
data wins over any name a package carries; approved personal changes apply after it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from server.scoring.engine import CandidateScore
from server.scoring.material import ScoringError
from server.scoring.results import load_json, save_private_json

REGISTRATION_FILE = "registration.json"
COLUMNS = ("ticket", "name", "id_number")


class RegistrationInvalid(ScoringError):
    """The registration CSV has problems; `problems` lists each with its row and column."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the registration file, nothing used:\n"
            + "\n".join(problems)
        )


def parse_registration(data: bytes) -> dict[str, dict[str, str]]:
    """ticket -> {name, id_number}, or RegistrationInvalid naming every bad row and column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RegistrationInvalid(["the file is not UTF-8: save it as CSV UTF-8"]) from None
    reader = csv.DictReader(io.StringIO(text))
    missing = set(COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise RegistrationInvalid([f"row 1: missing column(s) {', '.join(sorted(missing))}"])
    out: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        values = {k: (row.get(k) or "").strip() for k in COLUMNS}
        for column in COLUMNS:
            if not values[column]:
                problems.append(f"row {line}, column {column}: empty")
        if values["ticket"] in out:
            problems.append(f"row {line}, column ticket: {values['ticket']} appears twice")
        elif values["ticket"]:
            out[values["ticket"]] = {"name": values["name"], "id_number": values["id_number"]}
    if problems:
        raise RegistrationInvalid(problems)
    return out


def save_registration(results_dir: Path, people: Mapping[str, Mapping[str, str]]) -> str:
    """Keep the registration data for later runs (0600); returns its SHA-256 for the audit."""
    return save_private_json(results_dir / REGISTRATION_FILE, people)


def load_registration(results_dir: Path) -> dict[str, dict[str, str]]:
    return dict(load_json(results_dir / REGISTRATION_FILE) or {})


def apply_registration(
    scores: Iterable[CandidateScore], people: Mapping[str, Mapping[str, str]]
) -> None:
    """Names and ID numbers from the centre's registration data."""
    for score in scores:
        person = people.get(score.ticket)
        if person is not None:
            score.name, score.id_number = person["name"], person["id_number"]
