"""The problems and warnings one QTI import collects.

An import walks every file before it gives up, so the user sees *every* problem at once:
errors (the paper cannot be built) end in one `PaperInvalid`; warnings (the paper was built,
but something the QTI file said could not be carried over exactly) travel with the result.

Each is reported once: a message is kept the first time its `key` is seen (by default the
message itself), so a construct met twice in one item, or by two code paths, gives one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paperpack.errors import PaperInvalid


@dataclass
class Report:
    """Ordered, de-duplicated errors and warnings of one import."""

    # key -> message; dicts keep insertion order, so a package of thousands of items stays
    # linear and the lines come out in the order the files were read
    _errors: dict[object, str] = field(default_factory=dict)
    _warnings: dict[object, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        return list(self._errors.values())

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings.values())

    def error(self, message: str, *, key: object = None) -> None:
        """Record an error once per `key` (default: the message)."""
        self._errors.setdefault(message if key is None else key, message)

    def warn(self, message: str, *, key: object = None) -> None:
        """Record a warning once per `key` (default: the message)."""
        self._warnings.setdefault(message if key is None else key, message)

    def raise_errors(self) -> None:
        """Raise one PaperInvalid listing every error, if there is any."""
        if self._errors:
            raise PaperInvalid(self.errors)
