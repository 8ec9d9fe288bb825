"""Issue 16, F7: JSON nested about 1,500 deep on the centre's login, upload and release routes
is a 400 problem+json (it was a 500)."""

from __future__ import annotations

import hashlib

from tests.server.central.conftest import Central, new_venue


async def test_f7_json_nested_1500_deep_is_400(central: Central) -> None:
    venue = new_venue("V001")
    await central.register(venue)
    json_type = {"Content-Type": "application/json"}
    deep = b"[" * 1500 + b"]" * 1500
    for path, slug in (
        ("/api/v1/uploads", "bad-upload"),  # signed by the venue: past the F1 check
        ("/api/v1/staff/login", "malformed-json"),
        ("/api/v1/release", "bad-release-request"),
    ):
        signed = central.signed(venue, "POST", path, hashlib.sha256(deep).hexdigest())
        resp = await central.client.post(path, data=deep, headers={**json_type, **signed})
        assert resp.status == 400, (path, await resp.text())
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["type"].endswith("/" + slug)
