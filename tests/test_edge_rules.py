"""The HTTP edge stays at the edge: domain code raises typed errors, never HTTP ones.

STYLE.md: "A function that takes a database raises a typed error with a slug; one middleware
turns it into problem+json. Nothing below a handler imports aiohttp's exceptions." Read from
the source (an AST walk over `server/`), that is two rules:

- `Problem` (the edge's own HTTP error) is named only inside a function that takes a
  `web.Request` (a handler, or the edge's parsing and authentication of a request), or in the
  edge modules themselves. A function below the handlers raises a `server.errors` kind.
- aiohttp's HTTP exceptions (`web.HTTPNotFound`, `aiohttp.web_exceptions`, ...) are named
  only by the middlewares.

The import rules between `server.venue`, `server.central` and `paperpack` are a separate
test (tests/test_import_rules.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import server
from server import errors, problems

SERVER = Path(server.__file__).parent
# The middlewares and the request parsing: the edge itself.
EDGE_MODULES = {"problems.py", "http.py", "requestlog.py"}


def _takes_request(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    return any(
        a.annotation is not None and ast.unparse(a.annotation) in {"web.Request", "Request"}
        for a in arguments
    )


def _is_aiohttp_exception(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr.startswith("HTTP") and ast.unparse(node.value) in {"web", "aiohttp.web"}
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if module.startswith("aiohttp.web_exceptions"):
            return True
        return module in {"aiohttp", "aiohttp.web"} and any(
            a.name.startswith("HTTP") for a in node.names
        )
    if isinstance(node, ast.Import):
        return any(a.name.startswith("aiohttp.web_exceptions") for a in node.names)
    return False


def edge_breaches(source: str, name: str) -> Iterator[str]:
    """Each place in `source` (the module `name`) where HTTP errors appear below the edge."""
    tree = ast.parse(source)
    annotations: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            annotations.update(id(n) for n in ast.walk(node.annotation))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            annotations.update(id(n) for n in ast.walk(node.returns))

    def visit(node: ast.AST, in_request_scope: bool) -> Iterator[str]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_request_scope = in_request_scope or _takes_request(node)
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if _is_aiohttp_exception(node):
            yield f"{where}: names aiohttp's HTTP exceptions ({ast.unparse(node)[:60]})"
        if (
            isinstance(node, ast.Name)
            and node.id == "Problem"
            and id(node) not in annotations
            and not in_request_scope
        ):
            yield f"{where}: uses Problem outside a request handler; raise a server.errors kind"
        for child in ast.iter_child_nodes(node):
            yield from visit(child, in_request_scope)

    yield from visit(tree, False)


def test_no_http_errors_below_the_handlers() -> None:
    """No function below the handlers raises `Problem`, and only the middlewares name
    aiohttp's HTTP exceptions."""
    breaches = []
    for path in sorted(SERVER.rglob("*.py")):
        relative = path.relative_to(SERVER)
        if str(relative) in EDGE_MODULES:
            continue
        breaches += edge_breaches(path.read_text(encoding="utf-8"), f"server/{relative}")
    assert breaches == [], "\n".join(breaches)


def test_the_rule_catches_a_domain_function_raising_problem() -> None:
    """The walk finds `Problem` raised or suppressed in a function that takes a database,
    and aiohttp's exceptions anywhere, while a handler may still raise `Problem`."""
    bad = """
from aiohttp import web
from aiohttp.web_exceptions import HTTPConflict
from server.problems import Problem

def grant_time(db, ticket):
    raise Problem(409, "not-logged-in", "no")

def close(db):
    with contextlib.suppress(Problem):
        pass

def gone(db):
    raise web.HTTPGone()

async def handler(request: web.Request) -> web.Response:
    raise Problem(400, "bad", "bad")
"""
    found = list(edge_breaches(bad, "bad.py"))
    assert [line.split(":")[1] for line in found] == ["3", "7", "10", "14"], found


def test_every_kind_of_domain_error_has_one_status_at_the_edge() -> None:
    """Each kind in `server.errors` maps to one HTTP status in `server.problems`, and a
    subclass of a kind (a specific refusal) is answered with its kind's status."""
    kinds = {
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, errors.DomainError)
        and value is not errors.DomainError
    }
    assert kinds == set(problems.STATUS_OF)
    assert len(set(problems.STATUS_OF.values())) == len(kinds)

    class SeatGone(errors.Conflict):
        pass

    assert problems.status_of(SeatGone("seat-gone", "the seat is gone")) == 409
