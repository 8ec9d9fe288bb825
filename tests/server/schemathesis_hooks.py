"""schemathesis hooks for tests/server/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

The central upload's PATCH body is `application/offset+octet-stream` (as in tus): raw bytes,
sent the way schemathesis already sends `application/octet-stream`.

Upload calls are signed by the venue (issue 16, F1): with `CBT_FUZZ_VENUE_KEY` (a venue's
private key file), `CBT_FUZZ_VENUE_ID` and `CBT_FUZZ_SIGNED_AT` (the centre's clock) set,
every call on an existing upload (HEAD, GET, PATCH, finish) is signed as the venue's uploader
signs it, so the fuzzer gets past the signature check (unless schemathesis sends its own,
invalid Authorization to check it is refused); the create is not (its signature
covers the body's bytes, which schemathesis serialises after this hook), so it meets the 401.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import schemathesis

from paperpack import crypto
from server.protocol.upload_auth import EMPTY_SHA256, sign_upload_request

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    key_file = os.environ.get("CBT_FUZZ_VENUE_KEY")
    path = str(case.formatted_path)
    if not key_file or not path.startswith("/api/v1/uploads/"):
        return
    key = crypto.load_private_key(Path(key_file))
    assert isinstance(key, crypto.Ed25519PrivateKey)
    headers = dict(case.headers or {})
    if any(name.lower() == "authorization" for name in headers):
        return  # schemathesis's own (invalid) credentials: checking that they are refused
    method = str(case.method).upper()
    content, offset = EMPTY_SHA256, ""
    if method == "PATCH":
        offset = str(headers.get("Upload-Offset", ""))
        try:
            _, encoded = str(headers.get("Upload-Checksum", "")).split(" ", 1)
            content = base64.b64decode(encoded, validate=True).hex()
        except ValueError:
            pass  # refused for its headers before the signature counts
    headers["Authorization"] = sign_upload_request(
        key, os.environ["CBT_FUZZ_VENUE_ID"], method, path, os.environ["CBT_FUZZ_SIGNED_AT"],
        content, offset,
    )  # fmt: skip
    case.headers = headers
