"""Every server setting is in the README's settings table, with its variable and true default.

The table under "## Settings" has one row per field of `server.venue.settings.Settings` and
`server.central.settings.CentralSettings`: server, setting, environment variable, default,
meaning. A field added without a row, a row for a field that is gone, a wrong variable name
or a default that no longer matches the code fails here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from server.central.settings import ENV_PREFIX, CentralSettings
from server.venue.settings import Settings
from tests.conftest import REPO_ROOT

SERVERS: dict[str, tuple[type[Any], str]] = {
    "venue": (Settings, "CBT_"),
    "central": (CentralSettings, ENV_PREFIX),
}
NOT_FROM_ENV = {("central", "directory")}  # the DIR argument of `cbt central ...`


def settings_rows() -> dict[tuple[str, str], list[str]]:
    """(server, setting) -> the row's cells, from the README's settings table."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, str], list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[1].startswith("`"):
            continue
        key = (cells[0], cells[1].strip("`"))
        assert key not in rows, f"{key} is documented twice"
        rows[key] = cells
    return rows


def shown_default(value: Any) -> str:
    """How the table writes a default: as the environment variable would spell it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value == "":
        return '""'
    return str(value)


def all_fields() -> list[tuple[str, dataclasses.Field[Any]]]:
    return [(server, f) for server, (cls, _) in SERVERS.items() for f in dataclasses.fields(cls)]


@pytest.mark.parametrize(("server", "field"), all_fields(), ids=lambda v: getattr(v, "name", v))
def test_every_setting_has_a_row_with_its_variable_and_default(
    server: str, field: dataclasses.Field[Any]
) -> None:
    """The row names the CBT_* variable the code reads and the default the code uses."""
    rows = settings_rows()
    assert (server, field.name) in rows, f"{server} setting {field.name} is not in README.md"
    _, _, variable, default, meaning = rows[(server, field.name)]
    prefix = SERVERS[server][1]
    if (server, field.name) not in NOT_FROM_ENV:
        assert variable == f"`{prefix}{field.name.upper()}`"
    if field.default is not dataclasses.MISSING:
        assert default.startswith(f"`{shown_default(field.default)}`"), (field.name, default)
    assert len(meaning) > 15, f"say what {field.name} means, with its unit"


def test_no_row_documents_a_setting_that_does_not_exist() -> None:
    """Rows for removed or misspelt settings fail too."""
    known = {(server, f.name) for server, f in all_fields()}
    assert set(settings_rows()) <= known
