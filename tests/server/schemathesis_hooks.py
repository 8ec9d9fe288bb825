"""schemathesis hooks for tests/server/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

The central upload's PATCH body is `application/offset+octet-stream` (as in tus): raw bytes,
sent the way schemathesis already sends `application/octet-stream`.
"""

from __future__ import annotations

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
