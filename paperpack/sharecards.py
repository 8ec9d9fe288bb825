"""Supervisors' share cards: the set identifier, share commitments, the printed card, and
the checks a venue runs on each share as it is entered.

A *set* is the n shares of one venue's package. Its identifier (8 typable characters) is
derived from the session, the venue and a binding value of the package, so shares of two sets
cannot be mixed. Each share's commitment (SHA-256 over a domain-separated encoding with a
per-package salt) sits in the signed manifest, so a wrong share is rejected when it is
typed, naming its holder. The card's code (see `paperpack.typable`) embeds the format
version, the set id, the holder number (= the Shamir x-coordinate) and the share bytes, so
typing the code alone is enough. Formats and the security argument: docs/share-cards.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from paperpack.errors import PaperpackError
from paperpack.shamir import Share
from paperpack.typable import ALPHABET, Mistyped, decode_groups, encode_groups

__all__ = [
    "CARD_FORMAT_VERSION",
    "DuplicateShare",
    "Mistyped",
    "ParsedShare",
    "ShareError",
    "ShareMalformed",
    "ShareRejected",
    "card_code",
    "check_share",
    "commitments_for",
    "ensure_distinct",
    "format_card",
    "parse_card",
    "set_identifier",
    "share_commitment",
]

CARD_FORMAT_VERSION = 1  # first byte of every card code's payload
SET_ID_LENGTH = 8  # characters of Crockford base32 = 40 bits
MIN_SALT_BYTES = 16
MAX_CARD_CHARS = 20_000  # a card is about 1,500 characters; longer input is not a card
_SET_DOMAIN = b"paperpack share set v1\x00"
_COMMITMENT_DOMAIN = b"paperpack share commitment v1\x00"
_BEGIN = "----- BEGIN SHARE CODE / 份额代码开始 -----"
_END = "----- END SHARE CODE / 份额代码结束 -----"
_GROUPS_PER_LINE = 4


class ShareError(PaperpackError):
    """Something is wrong with a supervisor's share or with how a card is requested."""


class ShareMalformed(ShareError):
    """The code checks as typed but does not hold a share in a format this program reads."""


class ShareRejected(ShareError):
    """A well-formed share that does not belong to this package; `holder` names the card and
    `reason` says why: "another-set" (`card_set` is the set the card names), "not-a-holder"
    or "mismatch" (the share bytes are not this holder's)."""

    def __init__(
        self, message: str, *, holder: int, reason: str = "mismatch", card_set: str = ""
    ) -> None:
        self.holder = holder
        self.reason = reason
        self.card_set = card_set
        super().__init__(message)


class DuplicateShare(ShareError):
    """The same holder's share was entered twice; each holder counts once."""

    def __init__(self, message: str, *, holder: int) -> None:
        self.holder = holder
        super().__init__(message)


@dataclass(frozen=True)
class ParsedShare:
    """A share read back from a card: its set, holder number (= x) and share bytes."""

    set_id: str
    x: int
    holder: int
    data: bytes

    @property
    def share(self) -> Share:
        """The Shamir share, ready for `paperpack.shamir.combine`."""
        return Share(self.x, self.data)

    def __repr__(self) -> str:
        # Never show share bytes in logs or tracebacks.
        size = len(self.data)
        return f"ParsedShare(set_id={self.set_id!r}, holder={self.holder}, data=<{size} bytes>)"


def _length_prefixed(*parts: bytes) -> bytes:
    """Concatenate with a 4-byte big-endian length before each part, so fields cannot slide."""
    return b"".join(struct.pack(">I", len(part)) + part for part in parts)


def _base32(data: bytes, characters: int) -> str:
    value = int.from_bytes(data, "big")
    return "".join(
        ALPHABET[(value >> (5 * (characters - 1 - i))) & 0x1F] for i in range(characters)
    )


def _check_set_id(set_id: str) -> None:
    if len(set_id) != SET_ID_LENGTH or any(c not in ALPHABET for c in set_id):
        raise ShareError(
            f"set id {set_id!r} is invalid: it must be {SET_ID_LENGTH} characters of "
            f"{ALPHABET}, as made by set_identifier"
        )


def set_identifier(session_id: str, venue_id: str, binding: bytes) -> str:
    """The 8-character id of a venue's share set, from SHA-256 of session, venue and binding.

    `binding` is a value unique to this package known before the manifest is signed (for
    example the package's random salt or the hash of its ciphertext); the signed manifest
    then records the set id, binding it to the manifest too.
    """
    if not session_id or not venue_id or not binding:
        raise ShareError("a set id needs a session id, a venue id and a non-empty binding")
    digest = hashlib.sha256(
        _SET_DOMAIN + _length_prefixed(session_id.encode(), venue_id.encode(), bytes(binding))
    ).digest()
    return _base32(digest[:5], SET_ID_LENGTH)


def share_commitment(set_id: str, x: int, data: bytes, salt: bytes) -> str:
    """SHA-256 (hex) committing to one share of a set; the salt is per package, >= 16 bytes."""
    _check_set_id(set_id)
    if len(salt) < MIN_SALT_BYTES:
        raise ShareError(
            f"the commitment salt has {len(salt)} bytes: use at least {MIN_SALT_BYTES}"
        )
    if not 1 <= x <= 255:
        raise ShareError(f"holder {x} is invalid: holders are numbered 1..255")
    encoded = _COMMITMENT_DOMAIN + _length_prefixed(
        set_id.encode(), bytes([x]), bytes(salt), bytes(data)
    )
    return hashlib.sha256(encoded).hexdigest()


def commitments_for(set_id: str, shares: Iterable[Share], salt: bytes) -> dict[int, str]:
    """The commitment of every share, keyed by holder number, for the manifest."""
    return {share.x: share_commitment(set_id, share.x, share.data, salt) for share in shares}


def card_code(set_id: str, share: Share) -> str:
    """The typable code of one share: version, set id, holder number and share bytes."""
    _check_set_id(set_id)
    value = 0
    for char in set_id:
        value = value << 5 | ALPHABET.index(char)
    payload = bytes([CARD_FORMAT_VERSION]) + value.to_bytes(5, "big") + bytes([share.x])
    return encode_groups(payload + share.data)


def _card_lines(code: str) -> list[str]:
    groups = code.split("-")
    lines = []
    for start in range(0, len(groups), _GROUPS_PER_LINE):
        row = groups[start : start + _GROUPS_PER_LINE]
        lines.append(f"  {start + 1:>3}:  {' '.join(row)}")
    return lines


def format_card(
    *,
    set_id: str,
    holder: int,
    holders_total: int,
    threshold: int,
    share: Share,
    session_id: str,
    venue_id: str,
    venue_name: str = "",
    starts_at: str = "",
) -> str:
    """A printable text card, in Chinese and English, for one supervisor."""
    if share.x != holder:
        raise ShareError(f"holder {holder} was given the share with x = {share.x}: they must match")
    if not 2 <= threshold <= holders_total or not 1 <= holder <= holders_total:
        raise ShareError(
            f"holder {holder} of {holders_total}, any {threshold}: need 1 <= holder <= n "
            "and 2 <= threshold <= n"
        )
    venue = f"{venue_id}  {venue_name}".rstrip()
    lines = [
        "=" * 66,
        "  考试试卷开启份额卡  /  EXAM PAPER UNLOCK SHARE CARD",
        "=" * 66,
        "本卡是开启本考点试卷所需密钥的一份。请密封保管、随身携带，",
        "不得复印、拍照或交给他人。",
        "This card holds one share of the key that opens this venue's exam paper.",
        "Keep it sealed and on you; do not copy, photograph or hand it to anyone.",
        "",
        "开启时：用本人账号登录考点服务器，输入下方代码（不分大小写，空格和连字符可省略）。",
        "At the unlock: log in to the venue server with your own account and type",
        "the code below (case, spaces and hyphens do not matter).",
        "",
        f"持有人编号 / Holder:  {holder} / {holders_total}  "
        f"(任意 {threshold} 人即可开启 / Holder {holder} of {holders_total}, "
        f"any {threshold} open the paper)",
        f"场次 / Session:       {session_id}",
        f"考点 / Venue:         {venue}",
    ]
    if starts_at:
        lines.append(f"开考 / Starts at:     {starts_at}")
    lines += [
        f"份额组 / Set:         {set_id}   (须与考点屏幕显示一致 / must match the venue screen)",
        "",
        _BEGIN,
        *_card_lines(card_code(set_id, share)),
        _END,
        "",
        "每组最后一个字符是校验位。输错时系统会指出第几组有误，只需重新输入该组。",
        "The last character of each group is a check. If you mistype, the system",
        "names the group to type again.",
        "=" * 66,
    ]
    return "\n".join(lines) + "\n"


def _code_text(text: str) -> str:
    """The code part of a card (between the markers) or of typed text, without row labels."""
    lines = text.splitlines()
    if _BEGIN in lines and _END in lines:
        begin = lines.index(_BEGIN)
        lines = lines[begin + 1 : lines.index(_END, begin)]
    # Row labels and any "Code:" prefix end with a colon, which no code contains.
    return " ".join(re.split(r"[:：]", line)[-1] for line in lines)


def parse_card(text: str) -> ParsedShare:
    """Read a share from a whole card's text or from the typed code alone."""
    if len(text) > MAX_CARD_CHARS:
        raise ShareMalformed(
            f"the text is longer than a card ({MAX_CARD_CHARS} characters at most)"
        )
    payload = decode_groups(_code_text(text))
    if payload[0] != CARD_FORMAT_VERSION:
        raise ShareMalformed(
            f"this share code has format version {payload[0]}; this program reads version "
            f"{CARD_FORMAT_VERSION}: check that the card belongs to this exam"
        )
    if len(payload) < 8:
        raise ShareMalformed("this code is too short to hold a share: type the code from the card")
    set_id = _base32(payload[1:6], SET_ID_LENGTH)
    x = payload[6]
    if x == 0:
        raise ShareMalformed("this code names holder 0, which no card has: check the card")
    return ParsedShare(set_id=set_id, x=x, holder=x, data=bytes(payload[7:]))


def check_share(
    parsed: ParsedShare,
    *,
    expected_set_id: str,
    commitments: Mapping[int, str] | Mapping[str, str],
    salt: bytes,
) -> None:
    """Raise ShareRejected, naming the holder, unless the share is this package's.

    `commitments` maps holder numbers (int, or str as in the manifest's JSON) to
    `share_commitment` hex digests.
    """
    holder = parsed.holder
    if parsed.set_id != expected_set_id:
        raise ShareRejected(
            f"the share of holder {holder} belongs to another set (another session, venue or "
            f"package): the card says set {parsed.set_id}, this package needs set "
            f"{expected_set_id}; use this session's card for this venue",
            holder=holder,
            reason="another-set",
            card_set=parsed.set_id,
        )
    # The manifest (JSON) keys commitments by "1".."n"; callers may also pass int keys.
    by_holder = {str(key): value for key, value in commitments.items()}
    expected = by_holder.get(str(holder))
    if expected is None:
        holders = ", ".join(sorted(by_holder, key=lambda key: (len(key), key)))
        raise ShareRejected(
            f"holder {holder} is not one of this package's holders ({holders}): check the card",
            holder=holder,
            reason="not-a-holder",
        )
    actual = share_commitment(parsed.set_id, parsed.x, parsed.data, salt)
    if not hmac.compare_digest(actual, expected.lower()):
        raise ShareRejected(
            f"share of holder {holder} does not match this package: check the card and type "
            "it again",
            holder=holder,
        )


def ensure_distinct(shares: Sequence[ParsedShare | Share]) -> None:
    """Raise DuplicateShare if two shares have the same holder number.

    The venue's unlock object tracks this as shares arrive (and also requires distinct
    logins); this helper is for callers holding a batch of shares.
    """
    seen: set[int] = set()
    for share in shares:
        if share.x in seen:
            raise DuplicateShare(
                f"the share of holder {share.x} was entered twice: each holder counts once; "
                "another holder must enter theirs",
                holder=share.x,
            )
        seen.add(share.x)
