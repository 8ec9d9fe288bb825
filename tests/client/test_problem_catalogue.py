"""Every refusal the venue's pages can show has words in both catalogues.

The candidate page and the staff console render a problem+json refusal from the catalogue
(`problem.<slug>`, or `problem.<slug>.<reason>` when the problem names a reason), in the page's
language; the English `detail` is for scripts. This test reads the code, not a list: it walks
the imports from `server.venue.app` (every module the venue's routes can run), collects each
slug a refusal is built with (`Problem(status, slug)`, `DomainError` kinds, `RuleViolation`,
`SeatsError`, `ApprovalRejected`, the middleware's own), and fails naming any slug, or share
reason, that either catalogue lacks, and any slug it cannot work out from the code.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from client import I18N_DIR
from paperpack.sharecards import ShareRejected
from tests.conftest import REPO_ROOT

LANGUAGES = ("zh-CN", "en")
SLUG = re.compile(r"^[a-z]+(?:-[a-z]+)*$")
ROOT_MODULE = "server.venue.app"
# Where a slug comes from another package's error (its constructor's first argument).
EXTRA_MODULES = ("paperpack.approval", "paperpack.variants", "paperpack.sharecards")
# Constructors whose slug is the first argument.
FIRST_ARG = {
    "DomainError", "Malformed", "Unauthenticated", "Forbidden", "NotFound", "Conflict",
    "TooLarge", "Invalid", "RateLimited", "Unreachable", "RuleViolation", "ApprovalRejected",
}  # fmt: skip
# Constructors whose slug is the second argument (after the status or the message).
SECOND_ARG = {"Problem": None, "problem_response": None, "SeatsError": "seats-refused"}


def module_path(name: str) -> Path | None:
    base = REPO_ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported(tree: ast.AST, name: str) -> Iterator[str]:
    """Modules of this project a module imports (anywhere in it)."""
    package = name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def reachable_modules() -> dict[str, ast.Module]:
    """Every `server` module the venue app imports, directly or not, and EXTRA_MODULES."""
    seen: dict[str, ast.Module] = {}
    todo = [ROOT_MODULE, *EXTRA_MODULES]
    while todo:
        name = todo.pop()
        path = module_path(name)
        if name in seen or path is None:
            continue
        seen[name] = ast.parse(path.read_text(encoding="utf-8"))
        todo += [m for m in imported(seen[name], name) if m.startswith("server.")]
    return seen


def call_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def slug_argument(node: ast.Call) -> tuple[ast.expr | None, str | None]:
    """The slug expression of a refusal's construction (or its default), if it is one."""
    name = call_name(node)
    for keyword in node.keywords:
        if keyword.arg == "slug":
            return keyword.value, None
    if name in FIRST_ARG:
        return (node.args[0] if node.args else None), None
    if name in SECOND_ARG:
        return (node.args[1] if len(node.args) > 1 else None), SECOND_ARG[name]
    return None, None


@dataclass
class Found:
    slugs: set[str] = field(default_factory=set)
    reasons: set[str] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)


def constants(node: ast.AST) -> set[str]:
    return {
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and SLUG.match(n.value)
    }


def returned_slugs(tree: ast.Module, function: str) -> set[str]:
    """The first element of every tuple a module-level function returns."""
    slugs: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple):
                    slugs |= constants(ret.value.elts[0])
    return slugs


def resolve_name(tree: ast.Module, scope: ast.AST, name: str) -> set[str] | None:
    """Slugs a local variable can hold: from `x = "a"`, `x = {...}.get(k, "b")` or
    `x, params = helper(...)` with a module-level helper returning (slug, ...)."""
    slugs: set[str] = set()
    for node in ast.walk(scope):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            first = names[0]
            if not (isinstance(first, ast.Name) and first.id == name):
                continue
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
                slugs |= returned_slugs(tree, value.func.id)
            else:
                slugs |= constants(value)
    return slugs or None


def unknown_token_roles(trees: dict[str, ast.Module]) -> set[str]:
    """The roles `paperpack.variants.UnknownToken` is raised with (its first argument)."""
    return {
        node.args[0].value
        for node in ast.walk(trees["paperpack.variants"])
        if isinstance(node, ast.Call)
        and call_name(node) == "UnknownToken"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def calls_with_scope(tree: ast.Module) -> Iterator[tuple[ast.Call, ast.AST]]:
    """Every call of a module with its innermost enclosing function (or the module)."""

    def visit(node: ast.AST, scope: ast.AST) -> Iterator[tuple[ast.Call, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else scope
            if isinstance(child, ast.Call):
                yield child, scope
            yield from visit(child, inner)

    yield from visit(tree, tree)


def collect_reasons(node: ast.Call, found: Found) -> None:
    """Share reasons: `reason=` arguments and `"reason": ...` entries of dicts."""
    for keyword in node.keywords:
        if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant):
            found.reasons.add(keyword.value.value)
    for dict_node in (n for n in ast.iter_child_nodes(node) if isinstance(n, ast.Dict)):
        for key, value in zip(dict_node.keys, dict_node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "reason":
                found.reasons |= constants(value)


def collect() -> Found:
    trees = reachable_modules()
    found = Found()
    unknown_token = "f'unknown-{exc.role}'"  # live.py: the role of paperpack's UnknownToken
    roles = unknown_token_roles(trees)
    for module, tree in trees.items():
        for dict_node in (n for n in ast.walk(tree) if isinstance(n, ast.Dict)):
            for key, value in zip(dict_node.keys, dict_node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "reason":
                    found.reasons |= constants(value)
        for node, scope in calls_with_scope(tree):
            collect_reasons(node, found)
            expr, default = slug_argument(node)
            if default:
                found.slugs.add(default)
            if expr is None:
                continue
            where = f"{module}:{node.lineno}"
            if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
                found.slugs.add(expr.value)
            elif isinstance(expr, ast.Attribute) and expr.attr == "slug":
                continue  # re-raising a typed error: its constructor is collected
            elif isinstance(expr, ast.JoinedStr) and ast.unparse(expr) == unknown_token:
                found.slugs |= {f"unknown-{role}" for role in roles}
            elif isinstance(expr, ast.Name) and scope is not tree:
                resolved = resolve_name(tree, scope, expr.id)
                if resolved is None:
                    found.unresolved.append(f"{where}: {expr.id}")
                else:
                    found.slugs |= resolved
            else:
                found.unresolved.append(f"{where}: {ast.unparse(expr)}")
    # A share refused without a reason named in the code takes the constructor's default.
    found.reasons.add(inspect.signature(ShareRejected).parameters["reason"].default)
    return found


@pytest.fixture(scope="module")
def found() -> Found:
    return collect()


def catalogue(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def test_the_walk_finds_the_refusals_the_pages_show(found: Found) -> None:
    """The walk sees refusals of every origin: rules, login, ceremony, edge, middleware,
    seats, tokens of the paper, approvals and share reasons (so it cannot pass on nothing)."""
    assert {
        "entry-closed", "exam-ended", "login-failed", "share-rejected", "share-duplicate",
        "same-person", "malformed-json", "not-found", "internal-error", "seat-taken",
        "seats-refused", "unknown-item", "delay-approval-expired", "csrf-failed", "time-up",
    } <= found.slugs  # fmt: skip
    assert {"another-set", "mismatch", "mistyped-group", "malformed"} <= found.reasons
    assert not found.unresolved, found.unresolved


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_problem_slug_the_pages_can_show_is_in_the_catalogue(found: Found, lang: str) -> None:
    """Each slug a venue route can answer with has `problem.<slug>` in this language."""
    strings = catalogue(lang)
    missing = sorted(s for s in found.slugs if f"problem.{s}" not in strings)
    assert not missing, f"{lang}.json lacks: " + ", ".join(f"problem.{s}" for s in missing)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_share_refusal_reason_is_in_the_catalogue(found: Found, lang: str) -> None:
    """Each reason a share can be refused for has `problem.share-rejected.<reason>`."""
    strings = catalogue(lang)
    missing = sorted(r for r in found.reasons if f"problem.share-rejected.{r}" not in strings)
    assert not missing, f"{lang}.json lacks reasons: {missing}"


def test_problem_strings_name_only_parameters_the_problem_carries() -> None:
    """A `problem.*` string's placeholders are the same in both languages (a translation
    cannot ask for a value the other language's string, and so the server, never gives)."""
    zh, en = catalogue("zh-CN"), catalogue("en")
    placeholder = re.compile(r"\{(\w+)\}")
    for key in (k for k in en if k.startswith("problem.")):
        assert set(placeholder.findall(zh[key])) == set(placeholder.findall(en[key])), key
