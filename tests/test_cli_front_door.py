"""The two console scripts answer --help, and answer it fast.

- `cbt --help` and `paperpack --help` exit 0 and name the tool (the front door works).
- Asking for the help of any command imports nothing outside the standard library and the
  project's argument modules: no aiohttp, numpy, sqlite-utils, cryptography... (a check on
  the modules loaded, not a timing; docs/performance.md has the times).
- Every command's handler, named by "module:function", exists.
- The argument modules' copies of domain constants (roles, change kinds) equal the originals.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator

from paperpack.cli import PAPERPACK_COMMANDS, Handler, build_parser
from server.cli import CBT_COMMANDS

# What the parser built from the argument modules must never pull in (checked by name, on
# top of the general rule that nothing outside the standard library is imported).
HEAVY = ("aiohttp", "numpy", "sqlite_utils", "cryptography")

# Run in a fresh interpreter: build both parsers, ask every command path for --help, and
# report which modules that imported beyond what the interpreter had at start.
HELP_EVERYWHERE = """
import argparse, contextlib, io, json, sys
started = set(sys.modules)
from paperpack.cli import PAPERPACK_COMMANDS, build_parser, main as paperpack
from server.cli import CBT_COMMANDS, main as cbt

def paths(parser, path=()):
    yield list(path)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from paths(sub, (*path, name))

asked = 0
for main, commands in ((cbt, CBT_COMMANDS), (paperpack, PAPERPACK_COMMANDS)):
    for path in paths(build_parser("x", "", commands)):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                main([*path, "--help"])
            except SystemExit as exc:
                assert exc.code == 0, (path, exc.code)
        assert "usage:" in out.getvalue(), path
        asked += 1
print(json.dumps({"asked": asked, "imported": sorted(set(sys.modules) - started)}))
"""


def test_paperpack_help_answers() -> None:
    """`paperpack --help` exits 0 and names the tool."""
    out = subprocess.run(
        [sys.executable, "-m", "paperpack.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "paperpack" in out.stdout


def test_cbt_help_answers() -> None:
    """`cbt --help` exits 0 and names the tool."""
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "cbt" in out.stdout


def _parsers(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def _commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for prog, modules in (("cbt", CBT_COMMANDS), ("paperpack", PAPERPACK_COMMANDS)):
        yield from _parsers(build_parser(prog, "", modules), prog)


def _third_party(modules: list[str]) -> list[str]:
    return [
        m for m in modules
        if m.partition(".")[0] not in sys.stdlib_module_names | {"server", "paperpack"}
    ]  # fmt: skip


def test_help_imports_only_the_standard_library_and_argument_modules() -> None:
    """No command's --help imports a third-party package or a handler's module."""
    out = subprocess.run(
        [sys.executable, "-c", HELP_EVERYWHERE], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    imported: list[str] = report["imported"]
    assert report["asked"] == sum(1 for _ in _commands())
    assert {"server.cli", "server.commands.venue_args", "paperpack.cli"} <= set(imported)
    assert not [m for m in imported if m.partition(".")[0] in HEAVY]
    assert not _third_party(imported)
    handlers = {
        parser.get_default("func").target.partition(":")[0]
        for _, parser in _commands()
        if parser.get_default("func") is not None
    }
    assert not sorted(handlers & set(imported))


def test_every_command_names_a_handler_that_exists() -> None:
    """Each leaf command runs a Handler whose module and function can be imported; paperpack's
    handlers are in paperpack (paperpack never imports server, not even by name)."""
    leaves = [
        (path, parser)
        for path, parser in _commands()
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    ]
    assert len(leaves) > 30
    for path, parser in leaves:
        func = parser.get_default("func")
        assert isinstance(func, Handler), path
        assert callable(func.resolve()), path
        if path.startswith("paperpack "):
            assert func.target.startswith("paperpack."), (path, func.target)


def test_argument_modules_copy_the_domain_constants_exactly() -> None:
    """Roles, change kinds and defaults offered are the ones the domain code uses."""
    from datetime import timedelta

    from paperpack.approval import DEFAULT_VALIDITY
    from paperpack.commands import sealing_args
    from server.central.storage import STAFF_ROLES as CENTRAL_ROLES
    from server.commands import central_args, venue_args
    from server.scoring.changes import KINDS
    from server.venue.export import AUTHORITY_SIGN_FILE
    from server.venue.staff import ROLES as VENUE_ROLES

    assert venue_args.STAFF_ROLES == VENUE_ROLES
    assert venue_args.AUTHORITY_SIGN_FILE == AUTHORITY_SIGN_FILE
    assert central_args.STAFF_ROLES == CENTRAL_ROLES
    assert central_args.CHANGE_KINDS == KINDS
    assert timedelta(hours=sealing_args.DELAY_APPROVAL_VALID_HOURS) == DEFAULT_VALIDITY
