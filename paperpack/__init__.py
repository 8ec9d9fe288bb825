"""paperpack: the central side. Papers (native format and QTI import), validation,
per-candidate variants, scoring rules, and sealing of per-venue packages.

paperpack never imports `server` or aiohttp.
"""

__version__ = "0.1.0"
