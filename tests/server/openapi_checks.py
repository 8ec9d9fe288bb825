"""Checks shared by both servers' OpenAPI tests: the routes an app registers, and what its
document lists."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
from aiohttp import web
from aiohttp.test_utils import TestClient


def route_operations(app: web.Application) -> set[tuple[str, str]]:
    """(path, method) of every API route (and the venue's /ping) the app registers.

    aiohttp adds a HEAD beside every GET with the GET's handler; those are left out, while a
    HEAD route with a handler of its own (the central upload's offset) counts."""
    gets = {
        (r.resource.canonical, r.handler)
        for r in app.router.routes()
        if r.method == "GET" and r.resource is not None
    }
    return {
        (r.resource.canonical, r.method.lower())
        for r in app.router.routes()
        if r.resource is not None
        and (r.resource.canonical.startswith("/api/") or r.resource.canonical == "/ping")
        and not (r.method == "HEAD" and (r.resource.canonical, r.handler) in gets)
    }


def documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in doc["paths"].items() for method in ops}


def document_paths(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each operation of the document by (concrete path, method), with the path parameters
    the tests use (ticket T0001..T0003, room R1, session S1) filled in."""
    values = {"{room_id}": "R1", "{session_id}": "S1"}
    found = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            concrete = path
            for name, value in values.items():
                concrete = concrete.replace(name, value)
            if "{ticket}" in concrete:
                for n in (1, 2, 3):
                    found[(concrete.replace("{ticket}", f"T000{n}"), method)] = op
            else:
                found[(concrete, method)] = op
    return found


def schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema with its references resolvable (the whole document as root)."""
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


# Problem slugs that mean "the body does not have the documented shape": a body the schema
# allows must never get one, and a body it forbids must.
SHAPE_SLUGS = frozenset(
    {
        "malformed-json",
        "invalid-field",
        "invalid-body",
        "invalid-answer",
        "bad-upload",
        "bad-release-request",
        "bad-heartbeat",
    }
)
# Limits that a handler checks as a rule of the exam rather than as the body's shape.
RULE_SLUGS = frozenset({"bad-delay"})
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


@dataclass(frozen=True)
class BodyCase:
    """One request body to send to an operation, and what the handler must make of it."""

    label: str
    body: Any
    refused: bool  # True: a 4xx shape refusal is expected; False: no shape refusal allowed


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def json_operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, body schema) of every operation with a JSON request body."""
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                yield path, method, resolve(doc, content["application/json"]["schema"])


def types_of(doc: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    schema = resolve(doc, schema)
    if "oneOf" in schema:
        return set().union(*(types_of(doc, s) for s in schema["oneOf"]))
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def wrong_value(types: set[str]) -> Any:
    """A JSON value of none of `types`."""
    for value in ("text", 12345, 1.5, True, ["x"], {"x": 1}):
        if not any(
            isinstance(value, JSON_TYPES[t]) and not (isinstance(value, bool) and t != "boolean")
            for t in types
        ):
            return value
    raise AssertionError(f"no JSON value is outside {types}")


def limit_breaches(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Values just outside each documented limit of a property."""
    if "maxLength" in schema:
        yield "longer than maxLength", "x" * (schema["maxLength"] + 1)
    if schema.get("minLength", 0) > 0:
        yield "shorter than minLength", ""
    if schema.get("pattern") == "\\S":
        yield "blank", "   "
    elif "pattern" in schema:
        yield "not matching the pattern", "not matching ~"
    if "maximum" in schema:
        yield "above maximum", schema["maximum"] + 1
    if "minimum" in schema:
        yield "below minimum", schema["minimum"] - 1
    if "enum" in schema:
        yield "outside the enum", "not-one-of-these"


def body_cases(doc: dict[str, Any], schema: dict[str, Any]) -> Iterator[BodyCase]:
    """The schema's examples (to be let through), then one body per broken rule."""
    examples = schema.get("examples", [])
    assert examples, f"the schema needs an example: {schema}"
    for example in examples:
        jsonschema.validate(example, {**schema, "components": doc["components"]})
        yield BodyCase(f"example {example}", example, refused=False)
    example = max(examples, key=len)
    yield BodyCase("not an object", ["x"], refused=True)
    for name in schema.get("required", []):
        yield BodyCase(f"without {name}", {k: v for k, v in example.items() if k != name}, True)
    for name, spec in schema.get("properties", {}).items():
        spec = resolve(doc, spec)
        bad = wrong_value(types_of(doc, spec))
        yield BodyCase(f"{name} = {bad!r}", {**example, name: bad}, refused=True)
        for label, value in limit_breaches(spec):
            yield BodyCase(f"{name} {label}", {**example, name: value}, refused=True)
        extra = spec.get("additionalProperties")
        if isinstance(extra, dict):
            inner = wrong_value(types_of(doc, extra))
            yield BodyCase(f"{name} with a {inner!r} value", {**example, name: {"k": inner}}, True)


async def check_bodies(
    client: TestClient[Any, Any],
    doc: dict[str, Any],
    headers_for: Callable[[str], Awaitable[dict[str, str]]],
    path_values: dict[str, str],
    sign: Callable[[str, str, bytes], dict[str, str]] | None = None,
) -> int:
    """Send every documented JSON body (examples, and each broken rule) to its handler:
    examples get no shape refusal and no 5xx; broken bodies get a 4xx problem saying so (not
    one about the state, which would hide a limit the handler does not check). `sign`
    (method, path, body bytes) adds headers that depend on the body (a venue's signature).
    Returns how many requests were sent."""
    sent, wrong = 0, []
    for path, method, schema in json_operations(doc):
        url = path.format(**path_values)
        for case in body_cases(doc, schema):
            body = json.dumps(case.body).encode()
            headers = {"Content-Type": "application/json", **await headers_for(path)}
            if sign is not None:
                headers.update(sign(method.upper(), url, body))
            resp = await client.request(method, url, data=body, headers=headers)
            sent += 1
            problem = await resp.json() if resp.content_type == "application/problem+json" else {}
            slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
            if case.refused:
                ok = 400 <= resp.status < 500 and slug in SHAPE_SLUGS | RULE_SLUGS
            else:
                ok = resp.status < 500 and slug not in SHAPE_SLUGS
            if not ok:
                wrong.append(f"{method.upper()} {path} {case.label}: {resp.status} {slug}")
    assert wrong == [], "\n".join(wrong)
    return sent
