"""SQL written once for SQLite and PostgreSQL: statements, the steps made of them, two dialects.

Every central query is one `Statement`: SQL text with named parameters (`:name`) and the shape
of its answer. A store operation is a *step*: a generator that yields statements and receives
their answers, so the logic (what to read, what to check, what to write) is written once and
runs unchanged on both back-ends. `run_step` drives a step against a synchronous executor (the
SQLite store's single writer thread runs a whole step there, one transaction, one hop from the
event loop); `run_step_async` drives it against asyncpg.

A `Dialect` is the little that differs, applied once per statement text and cached:

- SQLite takes `:name` parameters as they are; PostgreSQL wants `$1, $2, ...`, so the names
  become numbers (the same name twice is the same number).
- Row locks (`FOR UPDATE`, `FOR UPDATE OF p`) are PostgreSQL's, where several central processes
  share one database. SQLite drops them: its store runs every transaction as `BEGIN IMMEDIATE`
  on one writer thread, so a transaction already holds the whole database.
- Column types in DDL are tokens (`{int}`, `{serial}`, `{bool}`, `{true}`, `{bytes}`), so a new
  database on either back-end has exactly the columns its 546a924-era predecessor had.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Shape = Literal["all", "one", "value", "run"]  # every row, the first row, its first column, none

Step = Generator["Statement", Any, T]  # yields statements, receives their answers, returns T

_NAME = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_ROW_LOCK = re.compile(r"\s+FOR UPDATE(?: OF \w+)?\s*$")


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement with named parameters and the shape of the answer it wants."""

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)
    shape: Shape = "run"


def fetch_all(sql: str, **params: Any) -> Statement:
    return Statement(sql, params, "all")


def fetch_one(sql: str, **params: Any) -> Statement:
    return Statement(sql, params, "one")


def fetch_value(sql: str, **params: Any) -> Statement:
    return Statement(sql, params, "value")


def execute(sql: str, **params: Any) -> Statement:
    return Statement(sql, params, "run")


@dataclass(frozen=True)
class Dialect:
    """What one back-end needs changed in the shared SQL."""

    name: Literal["sqlite", "postgres"]
    types: Mapping[str, str]  # DDL type tokens -> this back-end's types
    tables_sql: str  # the names of the tables that exist (for migrations)

    def ddl(self, text: str) -> str:
        return text.format_map(self.types)

    def prepare(self, sql: str) -> tuple[str, tuple[str, ...]]:
        """The statement as this back-end runs it, and its parameter names in order
        (empty for SQLite, which takes the names)."""
        return _prepare(self.name, sql)


@lru_cache(maxsize=512)
def _prepare(dialect: str, sql: str) -> tuple[str, tuple[str, ...]]:
    if dialect == "sqlite":
        return _ROW_LOCK.sub("", sql), ()
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return _NAME.sub(number, sql), tuple(names)


SQLITE = Dialect(
    "sqlite",
    {"int": "INTEGER", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "bool": "INTEGER",
     "true": "1", "bytes": "BLOB"},
    "SELECT name FROM sqlite_master WHERE type = 'table'",
)  # fmt: skip
POSTGRES = Dialect(
    "postgres",
    {"int": "BIGINT", "serial": "BIGSERIAL PRIMARY KEY", "bool": "BOOLEAN", "true": "TRUE",
     "bytes": "BYTEA"},
    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
)  # fmt: skip


def run_step(step: Step[T], answer: Callable[[Statement], Any]) -> T:
    """Drive `step` to its end, answering each statement with `answer` (synchronous)."""
    try:
        statement = next(step)
        while True:
            statement = step.send(answer(statement))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]  # the step's declared result


async def run_step_async(step: Step[T], answer: Callable[[Statement], Awaitable[Any]]) -> T:
    """Drive `step` to its end, answering each statement with `await answer(...)`."""
    try:
        statement = next(step)
        while True:
            statement = step.send(await answer(statement))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]  # the step's declared result
