"""The display check at the unlock (art. 24): before any candidate sees the paper, each item is
rendered once on the server and every file it shows (`asset:NAME` in its stem, options or its
section's instructions) is present in the paper and holds what its media type says.

`check_display(paper, variant)` raises `DisplayFailed` naming the first item that fails and
why; the ceremony then stops the opening (nothing is marked unlocked, no candidate is served).
"""

from __future__ import annotations

from typing import Any

from paperpack.html import asset_references
from paperpack.model import Paper
from paperpack.papercheck import content_matches
from paperpack.variants import Variant, render_variant
from server.errors import Conflict


class DisplayFailed(Conflict):
    """An item of the paper cannot be shown as it should; the opening stops."""


def _html_of(item: dict[str, Any]) -> list[str]:
    texts = [item.get("stem") or ""]
    texts += [option.get("html") or "" for option in item.get("options") or []]
    return texts


def check_display(paper: Paper, variant: Variant) -> int:
    """Render the paper once (as `variant` shows it) and check each item's files; returns the
    number of items checked, or raises DisplayFailed naming the item."""
    assets = {asset.name: asset for asset in paper.assets}
    try:
        rendered = render_variant(paper, variant)
    except Exception as exc:  # any failure to render stops the opening, whatever it is
        raise DisplayFailed(
            "display-check-failed",
            f"the paper cannot be rendered ({type(exc).__name__}: {exc}): the opening is "
            "stopped; call the centre",
        ) from None
    order = [vi.item_id for vs in variant.sections for vi in vs.items]
    checked = 0
    for section in rendered["sections"]:
        for item in section["items"]:
            item_id = order[checked]
            checked += 1
            names: set[str] = set(asset_references(section.get("instructions") or ""))
            for html in _html_of(item):
                names |= asset_references(html)
            for name in sorted(names):
                problem = None
                if name not in assets:
                    problem = f"its file {name!r} is missing from the paper"
                elif not content_matches(assets[name].media_type, assets[name].data):
                    problem = f"its file {name!r} is not a valid {assets[name].media_type} file"
                if problem:
                    raise DisplayFailed(
                        "display-check-failed",
                        f"item {item_id} cannot be shown: {problem}. The opening is stopped "
                        "before any candidate sees the paper (art. 24); call the centre",
                        item=item_id,
                        asset=name,
                    )
    return checked
