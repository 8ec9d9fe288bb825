"""Scoring split across processes gives every candidate the result the one-process scoring
gives (held, absent, cancelled and scored candidates of both venues of the real packed,
sat and exported session), and keeps the keys sealed before the session's end."""

from __future__ import annotations

from pathlib import Path

import pytest

from paperpack.authority import Authority
from server.central.settings import init_central
from server.central.storage import CentralStorage
from server.scoring.material import KeysNotReleased
from server.scoring.pipeline import score_session
from server.scoring.split import score_session_split
from tests.server.scoring.conftest import AFTER_END, SESSION_ID, START, PackedSession


@pytest.mark.parametrize("workers", [1, 2])
async def test_split_scoring_gives_the_results_of_one_process(
    central_store: CentralStorage,
    authority: Authority,
    packed_session: PackedSession,
    tmp_path: Path,
    workers: int,
) -> None:
    central = tmp_path / "central"
    init_central(central, packed_session.authority_dir)
    whole = await score_session(central_store, authority, SESSION_ID, AFTER_END, tmp_path / "a")
    database = str(tmp_path / "central.db")  # the store central_store opened
    paper, split = await score_session_split(
        central_store, central, database, SESSION_ID, AFTER_END, tmp_path / "b", workers
    )
    assert paper.paper_id == whole.paper.paper_id
    expected = [r.row(public=False) for r in whole.results]
    assert [r.row(public=False) for r in split] == expected
    assert {r.status for r in split} >= {"held", "absent", "cancelled"}  # the plants are there


async def test_split_scoring_refuses_before_the_end(
    central_store: CentralStorage, packed_session: PackedSession, tmp_path: Path
) -> None:
    central = tmp_path / "central"
    init_central(central, packed_session.authority_dir)
    with pytest.raises(KeysNotReleased, match="released to scoring only after the end"):
        await score_session_split(
            central_store, central, str(tmp_path / "central.db"), SESSION_ID, START,
            tmp_path / "b", 2,
        )  # fmt: skip
