"""Errors the servers and `cbt` raise on bad input or refused actions.

`CbtError` is what the CLI turns into one line; `Problem` (server.problems) is its HTTP face.
"""

from __future__ import annotations


class CbtError(Exception):
    """Base of the server side's own errors. The message says what is wrong and what to do."""
