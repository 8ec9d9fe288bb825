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
        super().__init__(
            f"{len(self.problems)} problem(s) in the paper:\n" + "\n".join(self.problems)
        )


# --- sealed packages (paperpack.pack / package / unlock); see docs/sealing.md ---------------


class SessionInvalid(PaperpackError):
    """A session file failed validation; `problems` lists every problem, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the session file:\n" + "\n".join(self.problems)
        )


class PackageInvalid(PaperpackError):
    """A venue package (or its unlock material) was refused; subclasses say why."""


class ManifestInvalid(PackageInvalid):
    """The manifest is malformed, of an unknown format version, or inconsistent."""


class SignatureInvalid(PackageInvalid):
    """The manifest (or a release record) is not signed by the pinned authority key."""


class ManifestRolledBack(PackageInvalid):
    """The manifest's version is lower than one this venue has already seen."""


class FragmentCorrupt(PackageInvalid):
    """A fragment's header or bytes do not match the signed manifest."""


class TooFewFragments(PackageInvalid):
    """Fewer intact fragments than the number needed to rebuild the payload."""


class WrongVenue(PackageInvalid):
    """A package, fragment or key belongs to another venue."""


class WrongSession(PackageInvalid):
    """A package or fragment belongs to another session."""


class PayloadCorrupt(PackageInvalid):
    """The payload failed authentication or decoding after the key was assembled."""


class DecompressionBomb(PayloadCorrupt):
    """The payload expands beyond its signed size; nothing past the bound is kept."""


class OutsideWindow(PackageInvalid):
    """An unlock step was attempted outside the signed unlock window."""


class ReleaseRejected(PackageInvalid):
    """A time release is malformed, mistyped, or for another venue, session or package."""


class UnlockIncomplete(PackageInvalid):
    """The paper cannot be opened yet: shares or the release are missing."""
