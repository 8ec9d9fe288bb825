"""Inline SVG charts for the verification report: score distribution and item difficulty.

Plain strings built here, no JavaScript and no chart library: the report must open offline
in any browser and print as it shows. Every text from data is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

# The charts' words in English: `cbt central score` writes the report so; the console passes
# its catalogue's `t` (keys report.chart.*) for the page's language.
ENGLISH = {
    "report.chart.distribution": "Score distribution",
    "report.chart.band": "{low}-{high}: {count} candidates",
    "report.chart.difficulty": "Item difficulty (share of points earned)",
    "report.chart.item": "{item}: p = {p}, discrimination = {discrimination}",
}


def english(key: str, **params: object) -> str:
    return ENGLISH[key].format(**params)


WIDTH, HEIGHT, MARGIN = 640, 220, 30


def histogram_svg(bins: Sequence[Mapping[str, Any]], t: Callable[..., str] = english) -> str:
    """Bars of candidate counts per band of total points."""
    top = max((int(b["count"]) for b in bins), default=0) or 1
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    bar = inner_w / max(1, len(bins))
    parts = [_open(t("report.chart.distribution"))]
    for k, b in enumerate(bins):
        h = inner_h * int(b["count"]) / top
        x, y = MARGIN + k * bar, HEIGHT - MARGIN - h
        label = t("report.chart.band", low=f"{b['from']:g}", high=f"{b['to']:g}", count=b["count"])
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
            f'fill="#4a7ab5"><title>{escape(label)}</title></rect>'
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - MARGIN + 14}" font-size="10" '
            f'text-anchor="middle">{b["from"]:g}</text>'
        )
    parts.append(_axis())
    parts.append("</svg>")
    return "".join(parts)


def difficulty_svg(items: Sequence[Mapping[str, Any]], t: Callable[..., str] = english) -> str:
    """One bar per item, height = p-value; items flagged for a likely key error in red."""
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    bar = inner_w / max(1, len(items))
    parts = [_open(t("report.chart.difficulty"))]
    for k, item in enumerate(items):
        p = float(item["p_value"] or 0.0)
        h = inner_h * p
        x, y = MARGIN + k * bar, HEIGHT - MARGIN - h
        colour = "#c0392b" if item.get("flag") else "#5b9b5b"
        label = t(
            "report.chart.item",
            item=item["item_id"],
            p=f"{p:.2f}",
            discrimination=item["discrimination"],
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar - 1, 0.5):.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{escape(label)}</title></rect>'
        )
    parts.append(_axis())
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    )


def _axis() -> str:
    y = HEIGHT - MARGIN
    return (
        f'<line x1="{MARGIN}" y1="{y}" x2="{WIDTH - MARGIN}" y2="{y}" stroke="#333"/>'
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{y}" stroke="#333"/>'
    )
