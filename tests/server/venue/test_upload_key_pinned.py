"""Issue 14, point 3: the venue learns the centre's upload key with the package, before the
exam: the signed manifest carries it and the import pins it, so the outbox needs no manual
`--central-key`; a package naming another centre's key is refused."""

from __future__ import annotations

from paperpack.manifest import parse_manifest
from tests.server.conftest import VenueKit


async def test_the_import_pins_the_centres_upload_key_from_the_manifest(
    venue_kit: VenueKit,
) -> None:
    kit = venue_kit
    pinned = kit.directory / "keys" / "authority-upload.pub"
    pinned.unlink(missing_ok=True)
    await kit.import_package()
    expected = (kit.template.authority_dir / "upload.pub").read_text().strip()
    assert pinned.read_text().strip() == expected
    manifest = parse_manifest((kit.template.package_dir / "manifest.json").read_bytes())
    assert manifest.upload_key == expected


async def test_a_package_naming_another_centres_upload_key_is_refused(
    venue_kit: VenueKit,
) -> None:
    kit = venue_kit
    pinned = kit.directory / "keys" / "authority-upload.pub"
    pinned.write_text("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
    resp = await kit.client.post(
        "/api/v1/staff/packages",
        json={"path": str(kit.template.package_dir)},
        headers=await kit.as_staff("admin"),
    )
    assert resp.status in (409, 422), await resp.text()
    assert "another centre upload key" in (await resp.json())["detail"]
