"""The problems and warnings one QTI import collects.

An import walks every file before it gives up, so the user sees *every* problem at once:
errors (the paper cannot be built) end in one `PaperInvalid`; warnings (the paper was built,
but something the QTI file said could not be carried over exactly) travel with the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paperpack.errors import PaperInvalid


@dataclass
class Report:
    """Ordered, de-duplicated errors and warnings of one import."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def raise_errors(self) -> None:
        """Raise one PaperInvalid listing every error, if there is any."""
        if self.errors:
            raise PaperInvalid(self.errors)
