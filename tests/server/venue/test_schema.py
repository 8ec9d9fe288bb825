"""The venue schema documents itself: every column of every table has a comment."""

from __future__ import annotations

import re

from sqlite_utils import Database

from server.store import migrate
from server.venue.schema import migrations, venue_tables


def test_every_column_has_a_comment_with_its_meaning() -> None:
    """Each column's definition line carries a `--` comment (meaning and unit), as stored."""
    db = Database(memory=True)
    migrate(db, migrations)
    tables = venue_tables()
    assert len(tables) >= 25
    undocumented = []
    for table in tables:
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        for column in db[table].columns_dict:
            line = next((ln for ln in sql.splitlines() if re.match(rf"\s*{column}\s", ln)), "")
            comment = line.partition("--")[2].strip()
            if len(comment) < 4:
                undocumented.append(f"{table}.{column}")
    assert undocumented == []
