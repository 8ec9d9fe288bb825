"""The verification report (art. 35(5)) finds what was planted in the session and leaks nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from paperpack.authority import Authority
from server.central.storage import CentralStorage
from server.scoring.pipeline import score_session
from server.scoring.report import (
    NEGATIVE_DISCRIMINATION,
    are_neighbours,
    build_report,
    render_report_html,
)
from tests.server.scoring.conftest import AFTER_END, SESSION_ID, PackedSession


@pytest.fixture
async def report(
    central_store: CentralStorage, authority: Authority, tmp_path: Path
) -> dict[str, Any]:
    scored = await score_session(central_store, authority, SESSION_ID, AFTER_END, tmp_path)
    return build_report(scored, AFTER_END)


async def test_planted_wrong_key_is_the_only_flagged_item(
    report: dict[str, Any], packed_session: PackedSession
) -> None:
    """The item packed with a wrong key has negative discrimination and is the one flagged."""
    flagged = [i for i in report["items"] if i["flag"]]
    assert [i["item_id"] for i in flagged] == [packed_session.plants.wrong_key_item]
    assert flagged[0]["discrimination"] < -0.2
    others = [i["discrimination"] for i in report["items"] if not i["flag"]]
    assert min(d for d in others if d is not None) > 0.1


async def test_planted_variant_mismatch_is_held_in_the_report(
    report: dict[str, Any], packed_session: PackedSession
) -> None:
    """The candidate whose recorded variant is not the recomputed one is listed as held."""
    held = report["held"]
    assert [h["ticket"] for h in held] == [packed_session.plants.mismatch_ticket]
    assert "variant mismatch" in held[0]["flags"][0]
    v2 = next(v for v in report["venues"] if v["venue_id"] == "V002")
    assert v2["held"] == 1 and v2["cancelled"] == 1


async def test_planted_copiers_are_found_and_seated_together(
    report: dict[str, Any], packed_session: PackedSession
) -> None:
    """Exactly the planted copier pairs are flagged, each marked as seating neighbours."""
    pairs = {(p["first"], p["second"]): p for p in report["similar_pairs"]}
    assert set(pairs) == set(packed_session.plants.copiers)
    assert all(p["neighbours"] for p in pairs.values())


async def test_venue_counts_and_hashes_reconcile(report: dict[str, Any]) -> None:
    """Expected, present, absent and submitted add up; venue and centre hashes agree."""
    for venue in report["venues"]:
        assert venue["expected"] == 60
        assert venue["present"] + venue["absent"] == venue["expected"]
        assert venue["submitted"] == venue["present"] == 59
        assert venue["hashes_match"] and venue["hash_venue"] == venue["hash_centre"]
        assert venue["answers_venue"] > 0
    assert report["summary"] == {
        "scored": 0, "pending": 116, "absent": 2, "cancelled": 1, "held": 1,
    }  # fmt: skip


async def test_report_leaks_no_personal_data_and_renders_charts(
    report: dict[str, Any], packed_session: PackedSession
) -> None:
    """JSON and HTML carry tickets only (no names, no ID numbers) and inline SVG, no script."""
    html = render_report_html(report)
    text = json.dumps(report, ensure_ascii=False) + html
    for name, id_number in packed_session.people.values():
        assert name not in text and id_number not in text
    assert html.count("<svg") == 2 and "<script" not in html
    assert packed_session.plants.wrong_key_item in html
    assert "negative discrimination: check the key" in html


def test_neighbours_touch_in_the_same_room() -> None:
    """Seats touching in row or column (diagonals too) in one room are neighbours; others not."""
    seat = ("V1", "R1", 2, 2)
    assert are_neighbours(seat, ("V1", "R1", 3, 3))
    assert are_neighbours(seat, ("V1", "R1", 2, 1))
    assert not are_neighbours(seat, ("V1", "R1", 2, 4))
    assert not are_neighbours(seat, ("V1", "R2", 2, 2))
    assert not are_neighbours(seat, None)


async def test_central_console_serves_the_report(
    aiohttp_client: Any, central_store: CentralStorage, authority: Authority, tmp_path: Path
) -> None:
    """After scoring, GET /results/{session}/report serves the HTML and the JSON; before, 404."""
    from server.central import keys
    from server.central.app import create_app
    from server.central.settings import CentralSettings
    from server.scoring.pipeline import results_dir
    from server.scoring.results import write_atomic
    from server.staffauth import hash_password

    settings = CentralSettings(directory=tmp_path, log_requests=False)
    client = await aiohttp_client(create_app(settings, authority=authority))
    password = "operator-pass-1"  # the console needs a staff login (server.central.staff)
    await client.app[keys.STORAGE].add_staff(
        "op", "Operator", "operator", hash_password(password), "cli:test", "2026-01-01T00:00Z"
    )
    login = await client.post("/api/v1/staff/login", json={"login": "op", "password": password})
    assert login.status == 200
    resp = await client.get(f"/results/{SESSION_ID}/report")
    assert resp.status == 404
    assert (await resp.json())["type"].endswith("no-report")
    scored = await score_session(central_store, authority, SESSION_ID, AFTER_END, tmp_path)
    report = build_report(scored, AFTER_END)
    write_atomic(results_dir(tmp_path, SESSION_ID) / "report.json", json.dumps(report).encode())
    resp = await client.get(f"/results/{SESSION_ID}/report")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert "<svg" in page
    # The console's bar: back to the status page, who is signed in, sign out (with the token).
    assert 'href="/status"' in page and "Operator" in page and 'action="/logout"' in page
    assert f'value="{login.cookies["cbt_central_csrf"].value}"' in page
    resp = await client.get(f"/api/v1/results/{SESSION_ID}/report")
    assert (await resp.json())["held"] == report["held"]
    assert (await client.get("/results/..%2Fetc/report")).status in (400, 404)


async def test_the_report_page_speaks_the_console_language(report: dict[str, Any]) -> None:
    """In Chinese the report's words come from the catalogue and its time is local, not a raw
    UTC stamp; in English (the default, as `cbt central score` writes it) the words stay."""
    chinese = render_report_html(report, "zh-CN", "Asia/Shanghai")
    assert '<html lang="zh-CN">' in chinese and "核查报告（第 35 条第 5 款）" in chinese
    for english in ("Score distribution", "Anomalies", "Similar answers", "not published"):
        assert english not in chinese
    assert report["generated_at"] not in chinese and "年" in chinese
    assert "区分度为负：请核对答案" in chinese  # the planted wrong key's item flag
    english = render_report_html(report)
    assert "Verification report (art. 35(5))" in english and "Score distribution" in english


def test_the_charts_english_words_are_the_catalogues() -> None:
    """The words `cbt central score` writes into the charts are the English catalogue's, so the
    console's English page and the written report say the same."""
    import json

    from client import I18N_DIR
    from server.scoring.charts import ENGLISH

    english = json.loads((I18N_DIR / "en.json").read_text(encoding="utf-8"))
    assert {key: english[key] for key in ENGLISH} == ENGLISH
    assert english["report.flag.negative_discrimination"] == NEGATIVE_DISCRIMINATION
