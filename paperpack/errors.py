"""The project's own error types for the central side.

Every check raises a subclass of `PaperpackError` (never returns False). The CLI catches
exactly these and prints one line `paperpack: error: ...`; anything else is a bug and shows a
traceback only with `--debug`.
"""

from __future__ import annotations


class PaperpackError(Exception):
    """Base of every error paperpack raises on bad input. The message says what to do."""


class PaperInvalid(PaperpackError):
    """A paper failed validation; `problems` lists every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the paper:\n" + "\n".join(self.problems))
