"""The icon: a real ICO file, served at /favicon.ico (browsers ask for it by themselves) and
as SVG under /static, so no page of the venue logs a 404 for it."""

from __future__ import annotations

import struct

from client import FAVICON, STATIC_DIR
from tests.server.conftest import VenueKit


def icon_images(data: bytes) -> dict[int, bytes]:
    """Size in pixels -> image bytes of each entry of an ICO file (PNG entries)."""
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1), "not an ICO file"
    images = {}
    for n in range(count):
        width, height, _, _, planes, bits, size, offset = struct.unpack_from(
            "<BBBBHHII", data, 6 + 16 * n
        )
        assert width == height and planes == 1 and bits == 32
        images[width or 256] = data[offset : offset + size]
    return images


def test_the_icon_file_holds_16_32_and_48_pixel_pngs() -> None:
    """Each entry of favicon.ico is a PNG whose own header says the entry's size."""
    images = icon_images(FAVICON.read_bytes())
    assert sorted(images) == [16, 32, 48]
    for size, png in images.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert struct.unpack_from(">II", png, 16) == (size, size)  # IHDR width, height


async def test_the_venue_serves_the_icon_without_a_login(venue_kit: VenueKit) -> None:
    """/favicon.ico and the linked SVG answer 200 with the files' bytes and image types."""
    for path, file in (
        ("/favicon.ico", FAVICON),
        ("/static/common/favicon.svg", STATIC_DIR / "common" / "favicon.svg"),
    ):
        resp = await venue_kit.client.get(path)
        assert resp.status == 200, path
        assert resp.content_type.startswith("image/"), resp.content_type
        assert await resp.read() == file.read_bytes()
