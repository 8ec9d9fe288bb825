"""Issue 16, F7: malformed requests to the venue are refused with 401/400/422 problem+json,
never a 500, and change nothing."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import VenueKit
from tests.server.venue.test_api_bad_input import answering, journal_state

JSON_TYPE = {"Content-Type": "application/json"}


async def refused(resp: Any, status: int, slug: str) -> None:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["type"].endswith("/" + slug)


async def test_f7_bearer_token_with_a_non_ascii_digit_is_401(venue_kit: VenueKit) -> None:
    """`Bearer ².x` ("²".isdigit() is true, int() refuses it) was a 500."""
    kit = venue_kit
    c, _ = await answering(kit)
    before = journal_state(kit)
    rest = c.token.partition(".")[2]
    for token in ("².x", f"²³.{rest}", f"١٢٣.{rest}", f"{c.token}\u00e9"):
        headers = {"Authorization": f"Bearer {token}"}
        await refused(await kit.client.get("/api/v1/attempt", headers=headers), 401, "bad-token")
        resp = await kit.client.put(
            "/api/v1/attempt/responses", json={"seq": 2, "responses": {}}, headers=headers
        )
        await refused(resp, 401, "bad-token")
    assert journal_state(kit) == before


async def test_f7_bearer_token_with_a_5000_digit_expiry_is_401(venue_kit: VenueKit) -> None:
    """An expiry of 5,000 digits (past int()'s digit limit) was a 500."""
    kit = venue_kit
    c, _ = await answering(kit)
    before = journal_state(kit)
    rest = c.token.partition(".")[2]
    for expiry in ("9" * 5000, "9" * 13):
        headers = {"Authorization": f"Bearer {expiry}.{rest}"}
        await refused(await kit.client.get("/api/v1/attempt", headers=headers), 401, "bad-token")
    assert journal_state(kit) == before
    # The real token still works.
    assert (await kit.client.get("/api/v1/attempt", headers=c.auth)).status == 200


async def test_f7_seq_at_or_past_2_63_is_422(venue_kit: VenueKit) -> None:
    """`seq` >= 2^63 does not fit SQLite's INTEGER: refused as an invalid field."""
    kit = venue_kit
    c, item = await answering(kit)
    before = journal_state(kit)
    for seq in (2**63, 2**64, 10**40):
        body = {"seq": seq, "responses": {item["id"]: []}}
        resp = await kit.client.put("/api/v1/attempt/responses", json=body, headers=c.auth)
        await refused(resp, 422, "invalid-field")
    assert journal_state(kit) == before


async def test_f7_json_nested_1500_deep_is_400(venue_kit: VenueKit) -> None:
    """JSON nested about 1,500 deep on the logins and the save route was a 500."""
    kit = venue_kit
    c, _ = await answering(kit)
    before = journal_state(kit)
    deep = b"[" * 1500 + b"]" * 1500
    nested_object = b'{"a":' * 1500 + b"1" + b"}" * 1500
    for path in ("/api/v1/candidate/login", "/api/v1/staff/login"):  # 4,096 bytes at most
        resp = await kit.client.post(path, data=deep, headers=JSON_TYPE)
        await refused(resp, 400, "malformed-json")
    for body in (deep, nested_object):
        resp = await kit.client.put(
            "/api/v1/attempt/responses", data=body, headers={**c.auth, **JSON_TYPE}
        )
        await refused(resp, 400, "malformed-json")
    assert journal_state(kit) == before


async def test_f11_json_bodies_with_duplicate_keys_are_refused(venue_kit: VenueKit) -> None:
    """Issue 16, F11 at the venue: a login naming the ticket twice or a save naming seq twice
    is 400 malformed-json naming the key (a last-wins parser took the second)."""
    kit = venue_kit
    c, item = await answering(kit)
    before = journal_state(kit)
    login = b'{"ticket": "T9999", "ticket": "T0001", "id_number": "110101199001010001"}'
    resp = await kit.client.post("/api/v1/candidate/login", data=login, headers=JSON_TYPE)
    await refused(resp, 400, "malformed-json")
    assert "'ticket' appears twice" in (await resp.json())["detail"]
    option = item["options"][1]["id"]
    save = f'{{"seq": 1, "seq": 2, "responses": {{"{item["id"]}": ["{option}"]}}}}'.encode()
    resp = await kit.client.put(
        "/api/v1/attempt/responses", data=save, headers={**c.auth, **JSON_TYPE}
    )
    await refused(resp, 400, "malformed-json")
    assert "'seq' appears twice" in (await resp.json())["detail"]
    assert journal_state(kit) == before
