"""The import rules between the parts (ARCHITECTURE.md, "The seams"), checked on the source.

Every import in every module of `paperpack`, `server` and `client` is found by walking the
module's syntax tree: top-level imports, imports inside functions and classes, imports under
`if TYPE_CHECKING:`, relative imports, `from server import central` (which imports the module
`server.central`), and `importlib.import_module("...")` / `__import__("...")` with a constant
name. Each is checked against the rules below; a failure names the file, the line, the rule
and the import.

The rules:

- `paperpack` never imports `server`, `client` or aiohttp: it is the sealing library both
  sides and the operator's CLI use.
- `server.protocol` holds the formats the venue and the centre both speak; it imports neither
  side, nor the composition root, nor aiohttp; from `server` it uses only `server.errors` and
  `server.clock`.
- `server.venue` (the test-centre server) never imports the centre: `server.central`, nor the
  centre's scoring, `server.scoring`.
- `server.central` and `server.scoring` (the centre and its scoring) never import
  `server.venue`.
- The shared modules directly in `server/` (settings, store, problems, audit, ...) import
  neither side, so importing one of them never drags in the other side.
- `server.commands`, `server.demo` and `server.cli` are the composition root: they build
  both servers (`cbt demo` runs a venue and a centre in one process) and may import anything;
  nothing else imports them.
- `client` holds templates and static files (and a module exposing their paths): it imports
  neither `server` nor `paperpack`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKED_PACKAGES = ("paperpack", "server", "client")
ROOT = ("server.commands", "server.demo", "server.cli")  # the composition root
SIDES = ("server.venue", "server.central", "server.scoring")


@dataclass(frozen=True)
class Rule:
    """Modules under `applies_to` (and not under `unless`) must not import `forbidden`
    (except what is under `allowed`)."""

    name: str
    applies_to: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()

    def covers(self, module: str) -> bool:
        return _under(module, self.applies_to) and not _under(module, self.unless)

    def refuses(self, imported: str) -> bool:
        return _under(imported, self.forbidden) and not _under(imported, self.allowed)


RULES = (
    Rule("paperpack never imports server, client or aiohttp",
         ("paperpack",), ("server", "client", "aiohttp")),
    Rule("server.protocol imports neither side nor aiohttp; from server only errors and clock",
         ("server.protocol",), ("server", "aiohttp"),
         allowed=("server.protocol", "server.errors", "server.clock")),
    Rule("server.venue never imports the centre (server.central, server.scoring)",
         ("server.venue",), ("server.central", "server.scoring", *ROOT)),
    Rule("server.central never imports server.venue",
         ("server.central",), ("server.venue", *ROOT)),
    Rule("server.scoring (the centre's) never imports server.venue",
         ("server.scoring",), ("server.venue", *ROOT)),
    Rule("the shared modules in server/ import neither side",
         ("server",), (*SIDES, *ROOT), unless=(*SIDES, *ROOT, "server.protocol")),
    Rule("client imports neither server nor paperpack",
         ("client",), ("server", "paperpack")),
)  # fmt: skip


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # the dotted name imported
    names: tuple[str, ...] = ()  # `from module import names`: each may be a module too

    def refused_by(self, rule: Rule) -> list[str]:
        """What this import brings in that `rule` forbids: the module itself, or else the
        forbidden ones among its names (`from server import venue` imports server.venue)."""
        if rule.refuses(self.module):
            return [self.module]
        return [n for n in (f"{self.module}.{name}" for name in self.names) if rule.refuses(n)]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> Iterator[Import]:
    """Every import in `source` (the module `module`), wherever in the file it is."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield Import(node.lineno, base, tuple(a.name for a in node.names if a.name != "*"))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield Import(node.lineno, first.value)


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def violations(root: Path, packages: tuple[str, ...] = CHECKED_PACKAGES) -> list[str]:
    """One line per forbidden import under `root`: file:line: rule: what it imports."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            rules = [rule for rule in RULES if rule.covers(module)]
            if not rules:
                continue
            source = path.read_text(encoding="utf-8")
            for imported in imports_of(source, module, path.name == "__init__.py"):
                for rule in rules:
                    refused = imported.refused_by(rule)
                    if refused:
                        where = f"{path.relative_to(root)}:{imported.line}"
                        found.append(f"{where}: {rule.name}: imports {', '.join(refused)}")
    return found


def test_no_module_breaks_an_import_rule() -> None:
    """No module of paperpack, server or client imports what its part's rule forbids."""
    found = violations(REPO_ROOT)
    assert not found, "forbidden imports:\n" + "\n".join(found)


def test_every_package_that_the_rules_name_exists() -> None:
    """The rules name real packages, so a rename cannot make one silently match nothing."""
    for name in ("server.protocol", "server.venue", "server.central", "server.scoring",
                 "server.commands", "server.demo", "paperpack", "client"):  # fmt: skip
        assert (REPO_ROOT / name.replace(".", "/") / "__init__.py").is_file(), name
    assert (REPO_ROOT / "server" / "cli.py").is_file()


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("server/venue/x.py", "from server.central.release import a\n",
         "server/venue/x.py:1: server.venue never imports the centre (server.central, "
         "server.scoring): imports server.central.release"),
        ("server/venue/x.py", "def f():\n    import server.scoring.engine\n",
         "server/venue/x.py:2: server.venue never imports the centre (server.central, "
         "server.scoring): imports server.scoring.engine"),
        ("server/central/x.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
         "    from server.venue import journal\n",
         "server/central/x.py:3: server.central never imports server.venue: imports "
         "server.venue"),
        ("server/central/x.py", "from ..venue import journal\n",
         "server/central/x.py:1: server.central never imports server.venue: imports "
         "server.venue"),
        ("server/scoring/x.py", "from server import venue\n",
         "server/scoring/x.py:1: server.scoring (the centre's) never imports server.venue: "
         "imports server.venue"),
        ("server/protocol/x.py", "from aiohttp import web\n",
         "server/protocol/x.py:1: server.protocol imports neither side nor aiohttp; from "
         "server only errors and clock: imports aiohttp"),
        ("server/protocol/x.py", "from server.problems import Problem\n",
         "server/protocol/x.py:1: server.protocol imports neither side nor aiohttp; from "
         "server only errors and clock: imports server.problems"),
        ("server/x.py", "import importlib\nm = importlib.import_module('server.central.app')\n",
         "server/x.py:2: the shared modules in server/ import neither side: imports "
         "server.central.app"),
        ("paperpack/x.py", "class A:\n    def f(self):\n        from server import errors\n",
         "paperpack/x.py:3: paperpack never imports server, client or aiohttp: imports "
         "server"),
        ("server/venue/x.py", "from server.demo.run import main\n",
         "server/venue/x.py:1: server.venue never imports the centre (server.central, "
         "server.scoring): imports server.demo.run"),
    ],
)  # fmt: skip
def test_the_checker_finds_each_kind_of_forbidden_import(
    tmp_path: Path, path: str, source: str, expected: str
) -> None:
    """Each way of writing a forbidden import is reported with its file, line and rule."""
    target = tmp_path / path
    for parent in reversed(target.relative_to(tmp_path).parents[:-1]):
        (tmp_path / parent).mkdir(exist_ok=True)
        (tmp_path / parent / "__init__.py").touch()
    target.write_text(source)
    assert violations(tmp_path, ("server", "paperpack")) == [expected]


def test_the_checker_allows_what_the_rules_allow(tmp_path: Path) -> None:
    """Both sides may import the protocol, the composition root anything, scoring the centre."""
    allowed = {
        "server/venue/x.py": "from server.protocol.release import sign_release_request\n",
        "server/central/x.py": "from server.protocol import journal_chain\n",
        "server/scoring/x.py": "from server.central.storage import AuditLog\n",
        "server/commands/x.py": "import server.venue.app, server.central.app\n",
        "server/demo/x.py": "from server.central import app\nfrom server.venue import app\n",
        "server/protocol/x.py": "from server.errors import CbtError\nimport paperpack.crypto\n",
        "server/x.py": "from server.protocol.audit_chain import GENESIS\n",
    }
    for path, source in allowed.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(source)
    assert violations(tmp_path, ("server",)) == []
