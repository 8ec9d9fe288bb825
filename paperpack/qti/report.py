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

    # dicts used as ordered sets: a package of thousands of items stays linear
    _errors: dict[str, None] = field(default_factory=dict)
    _warnings: dict[str, None] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        return list(self._errors)

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    def error(self, message: str) -> None:
        self._errors.setdefault(message)

    def warn(self, message: str) -> None:
        self._warnings.setdefault(message)

    def raise_errors(self) -> None:
        """Raise one PaperInvalid listing every error, if there is any."""
        if self._errors:
            raise PaperInvalid(list(self._errors))
