"""client: templates, string catalogues and static files for the browser.

No Python logic lives here beyond the paths the servers serve them from and the one
template environment both servers render with.
"""

from functools import cache
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
# The icon both servers answer /favicon.ico with (made from favicon.svg beside it: 16, 32
# and 48 px PNGs in one ICO), so no browser logs a 404 for it.
FAVICON = STATIC_DIR / "common" / "favicon.ico"
I18N_DIR = Path(__file__).parent / "i18n"


@cache
def templates() -> jinja2.Environment:
    """The pages' jinja2 environment: HTML autoescaped, an undefined name an error."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
