"""Draws examples/assets/evm-chart.png: the earned-value bar chart the sample paper asks about.

Three bars, PV = 100, EV = 80, AC = 90 (thousand yuan), labelled with a tiny pixel font and
written as a genuine PNG with zlib and struct only. Run: python examples/assets/make_evm_chart.py
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

WIDTH, HEIGHT, SCALE = 320, 220, 3
WHITE, BLACK, GREY = (255, 255, 255), (40, 40, 40), (215, 215, 215)
BARS = (("PV", 100, (70, 110, 190)), ("EV", 80, (60, 160, 90)), ("AC", 90, (200, 90, 60)))
# 3x5 glyphs, one string of 15 cells per character, row by row.
GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", "P": "110101110100100", "V": "101101101101010",
    "E": "111100110100111", "A": "010101111101101", "C": "011100100100011",
}  # fmt: skip


def draw() -> list[list[tuple[int, int, int]]]:
    """The chart as rows of RGB pixels."""
    img = [[WHITE] * WIDTH for _ in range(HEIGHT)]
    base, top = 180, 40  # y of the value 0 and of the value 120
    for value in range(0, 121, 20):
        y = base - (base - top) * value // 120
        fill(img, 50, y, WIDTH - 10, y + 1, GREY if value else BLACK)
        text(img, 46 - 4 * SCALE * len(str(value)), y - 7, str(value))
    fill(img, 50, top, 52, base + 1, BLACK)
    for n, (label, value, colour) in enumerate(BARS):
        x = 80 + n * 80
        y = base - (base - top) * value // 120
        fill(img, x, y, x + 50, base, colour)
        text(img, x + 25 - 6 * len(str(value)), y - 20, str(value))
        text(img, x + 25 - 6 * len(label), base + 8, label)
    return img


def fill(
    img: list[list[tuple[int, int, int]]],
    x0: int,
    y0: int,
    x1: int,
    y1: int,
    rgb: tuple[int, int, int],
) -> None:
    for y in range(y0, y1):
        for x in range(x0, x1):
            img[y][x] = rgb


def text(img: list[list[tuple[int, int, int]]], x: int, y: int, s: str) -> None:
    for n, ch in enumerate(s):
        cells = GLYPHS[ch]
        for cell, bit in enumerate(cells):
            if bit == "1":
                cx = x + n * 4 * SCALE + (cell % 3) * SCALE
                cy = y + (cell // 3) * SCALE
                fill(img, cx, cy, cx + SCALE, cy + SCALE, BLACK)


def png(img: list[list[tuple[int, int, int]]]) -> bytes:
    """Encode RGB rows as a PNG (8-bit truecolour, filter 0 on every row)."""
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in img)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    target = Path(__file__).with_name("evm-chart.png")
    target.write_bytes(png(draw()))
    print(f"wrote {target} ({target.stat().st_size} bytes)")
