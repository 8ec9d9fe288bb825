"""Fixtures for the paperpack tests: the bad-paper kit and a writer for small papers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

BAD_PAPERS = Path(__file__).resolve().parent / "bad_papers"


def bad_paper_files() -> list[Path]:
    """Every file of the bad-paper kit (one error class each)."""
    return sorted(p for p in BAD_PAPERS.iterdir() if p.suffix in {".yaml", ".json"})


def expected_problems(path: Path) -> list[str]:
    """What a bad paper must report: its `# expect:` lines, or NAME.expect beside a JSON file."""
    if path.suffix == ".json":
        return path.with_suffix(".expect").read_text(encoding="utf-8").splitlines()
    prefix = "# expect: "
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line[len(prefix) :] for line in lines if line.startswith(prefix)]


def minimal_paper() -> dict[str, Any]:
    """A small valid paper as plain data; tests change one thing in it."""
    return {
        "paper_id": "mini-1",
        "subject_code": "01",
        "subject_name": "Test subject",
        "title": "A small paper",
        "duration_minutes": 60,
        "sections": [
            {
                "id": "s1",
                "title": "Section one",
                "points": 1,
                "items": [
                    {
                        "id": "q1",
                        "type": "single_choice",
                        "stem": "<p>Pick one</p>",
                        "options": [{"id": "A", "html": "first"}, {"id": "B", "html": "second"}],
                        "key": "A",
                    }
                ],
            }
        ],
    }


@pytest.fixture
def write_paper(tmp_path: Path) -> Callable[..., Path]:
    """Write plain paper data as YAML into tmp_path and return the file's path."""

    def write(data: dict[str, Any], name: str = "paper.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path

    return write
