"""The README and the guides say what really works.

- The README's two set-up commands are there exactly (CI's `.ci/run` calls the test command).
- Every `cbt ...` and `paperpack ...` command in a shell or unit-file block of the README and
  the guides parses with the real command line: subcommands, options, required arguments.
- docs/api.md is what `python docs/gen_api.py` writes from the OpenAPI document today.
- Every document the README links to exists; every screenshot it shows exists once the
  browser tests have produced docs/screenshots/.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from paperpack.cli import PAPERPACK_COMMANDS, build_parser
from server.cli import CBT_COMMANDS
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
GUIDES = ["README.md", "docs/operator-guide.md", "docs/venue-runbook.md", "docs/deployment.md"]
INSTALL_AND_DEMO = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && "
    "cbt demo --auto-unlock"
)
TEST_COMMAND = "python -m pytest"
SCREENSHOTS = {"login", "exam", "submit", "receipt", "ceremony", "monitor"}
PARSERS = {
    "cbt": lambda: build_parser("cbt", "", CBT_COMMANDS),
    "paperpack": lambda: build_parser("paperpack", "", PAPERPACK_COMMANDS),
}


def code_blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    return [
        body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S) if lang in languages
    ]


def commands_in(path: str) -> list[tuple[str, list[str]]]:
    """(program, arguments) of every cbt/paperpack call in the file's sh and ini blocks."""
    text = (REPO_ROOT / path).read_text(encoding="utf-8")
    found = []
    for block in code_blocks(text, ("sh",)):
        for line in block.replace("\\\n", " ").splitlines():
            for segment in re.split(r"&&|\|\||;|\|", line):
                found.extend(_program_call(shlex.split(segment, comments=True)))
    for block in code_blocks(text, ("ini",)):
        for line in block.splitlines():
            if line.startswith("ExecStart="):
                words = shlex.split(line.removeprefix("ExecStart=").replace("%i", "8701"))
                found.extend(_program_call(words))
    return found


def _program_call(words: list[str]) -> list[tuple[str, list[str]]]:
    while words and (words[0] == "sudo" or "=" in words[0]):
        words = words[3:] if words[:2] == ["sudo", "-u"] else words[1:]
    if words and Path(words[0]).name in PARSERS:
        return [(Path(words[0]).name, words[1:])]
    return []


ALL_COMMANDS = [(path, prog, args) for path in GUIDES for prog, args in commands_in(path)]


def test_the_two_set_up_commands_are_written_exactly() -> None:
    """A newcomer copies two lines: install + demo, and the tests."""
    text = README.read_text(encoding="utf-8")
    blocks = [b.strip() for b in code_blocks(text, ("sh",))]
    assert INSTALL_AND_DEMO in blocks
    assert TEST_COMMAND in blocks


def test_the_guides_show_commands() -> None:
    """Each guide has commands to check (the extraction itself works)."""
    assert {path for path, _, _ in ALL_COMMANDS} == set(GUIDES)
    assert len(ALL_COMMANDS) > 40


@pytest.mark.parametrize(
    ("path", "prog", "args"),
    ALL_COMMANDS,
    ids=[f"{p}:{g} {' '.join(a)}" for p, g, a in ALL_COMMANDS],
)
def test_every_documented_command_parses(path: str, prog: str, args: list[str]) -> None:
    """The command exists with these options and arguments (argparse exits 2 otherwise)."""
    parser = PARSERS[prog]()
    try:
        parsed = parser.parse_args(args)
    except SystemExit as exc:
        assert exc.code == 0, f"{path}: `{prog} {' '.join(args)}` does not parse"
        return
    assert isinstance(parsed, argparse.Namespace) and hasattr(parsed, "func")


def test_api_reference_is_up_to_date() -> None:
    """docs/api.md equals what docs/gen_api.py renders now."""
    spec = importlib.util.spec_from_file_location("gen_api", REPO_ROOT / "docs" / "gen_api.py")
    assert spec is not None and spec.loader is not None
    gen_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_api)
    current = (REPO_ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert current == gen_api.render(), "docs/api.md is stale: run `python docs/gen_api.py`"


def test_every_linked_document_exists() -> None:
    """Documents named in the README (`docs/...`, `examples/...`) are in the repository."""
    text = README.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:docs|examples)/[\w./-]+\.(?:md|yaml|csv|py))`", text))
    assert named, "the README names its guides"
    missing = sorted(n for n in named if not (REPO_ROOT / n).is_file())
    assert not missing


def test_the_readme_shows_the_real_pages() -> None:
    """The six screenshots are referenced; once the browser tests made them, they all exist."""
    text = README.read_text(encoding="utf-8")
    shown = set(re.findall(r"\]\(docs/screenshots/(\w+)\.png\)", text))
    assert shown == SCREENSHOTS
    folder = REPO_ROOT / "docs" / "screenshots"
    if not folder.is_dir():
        pytest.skip("docs/screenshots/ is made by the browser tests (tests/client)")
    assert not sorted(n for n in shown if not (folder / f"{n}.png").is_file())
