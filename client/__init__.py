"""client: templates, string catalogues and static files for the browser.

No Python logic lives here beyond the paths the venue server serves them from.
"""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
I18N_DIR = Path(__file__).parent / "i18n"
