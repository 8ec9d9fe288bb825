"""The human-typable code format: bytes as checked groups of Crockford base32.

This module owns the format used for supervisors' share cards and for the time-release code
read out over the phone (docs/share-cards.md has the full description):

- Alphabet: Crockford base32 `0123456789ABCDEFGHJKMNPQRSTVWXYZ` (no I, L, O, U). On input,
  lower case is accepted, O reads as 0, I and L read as 1, and spaces and hyphens are ignored.
- The data bytes become 5-bit symbols (big-endian, the last one padded with zero bits); two
  whole-code check symbols follow: the first 10 bits of SHA-256("paperpack typable v1" || data).
- The symbols are cut into groups of 4; each group is followed by one check character
  c = sum_i alpha^(i+1) * d_i in GF(32) (x^5 + x^2 + 1, alpha = x), so that
  c + sum_i alpha^(i+1) * d_i = 0 with distinct non-zero weights 1, alpha, ..., alpha^4.
  A single substitution changes the sum by w * e != 0; swapping two different characters at
  positions with weights w1 != w2 changes it by (w1 + w2)(a + b) != 0. So every single
  mistyped character and every swap inside a group is caught by that group's check, and a
  swap across a group boundary is a substitution in two groups. The whole-code check catches
  groups typed out of order, missed or repeated (all but 1 in 1,024 of them).

Errors never repeat the characters typed: a code may be a key share.
"""

from __future__ import annotations

import hashlib
import re

from paperpack.errors import PaperpackError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUP_DATA = 4  # data symbols per group; each group then gets one check character
GROUP_SIZE = GROUP_DATA + 1
WHOLE_CHECK_SYMBOLS = 2  # 10 bits of SHA-256 over the data
MAX_TEXT_CHARS = 10_000  # typed text longer than this is refused before any work is done
MAX_CODE_CHARS = 2_000  # code characters (about 1,000 bytes of data) at most
_WHOLE_CHECK_DOMAIN = b"paperpack typable v1"
_GF32_POLYNOMIAL = 0b100101  # x^5 + x^2 + 1, primitive, so alpha = x has order 31

_VALUES = {char: value for value, char in enumerate(ALPHABET)}
_VALUES.update({"O": 0, "I": 1, "L": 1})
_SEPARATORS = re.compile(r"[\s\-]+")


class Mistyped(PaperpackError):
    """A typed code does not check; `group` is the 1-based group at fault, if one is known."""

    def __init__(
        self, message: str, *, group: int | None = None, groups: int | None = None
    ) -> None:
        self.group = group
        self.groups = groups
        super().__init__(message)


def _gf32_mul(a: int, b: int) -> int:
    """Multiply in GF(32) modulo x^5 + x^2 + 1 (shift and add)."""
    product = 0
    for _ in range(5):
        product ^= a * (b & 1)
        carry = a >> 4
        a = ((a << 1) & 0x1F) ^ (0b00101 * carry)
        b >>= 1
    return product


def _alpha_powers() -> tuple[int, ...]:
    powers, value = [], 1
    for _ in range(GROUP_SIZE):
        powers.append(value)
        value = _gf32_mul(value, 2)
    return tuple(powers)


WEIGHTS = _alpha_powers()  # WEIGHTS[i + 1] multiplies data symbol i; the check has weight 1


def group_check(symbols: list[int] | tuple[int, ...]) -> int:
    """The check symbol for up to GROUP_DATA data symbols."""
    check = 0
    for i, symbol in enumerate(symbols):
        check ^= _gf32_mul(WEIGHTS[i + 1], symbol)
    return check


def weighted_check(symbols: list[int] | tuple[int, ...]) -> int:
    """The check symbol of up to 30 data symbols, weights alpha^1, alpha^2, ... (distinct and
    not 1, the check's own weight): it catches every single substitution and every swap of two
    different symbols. `group_check` is this for the codes' groups of four."""
    if len(symbols) > 30:
        raise ValueError("at most 30 symbols share one check (alpha has order 31)")
    check, weight = 0, 1
    for symbol in symbols:
        weight = _gf32_mul(weight, 2)
        check ^= _gf32_mul(weight, symbol)
    return check


def _to_symbols(data: bytes) -> list[int]:
    """Bytes to 5-bit symbols, big-endian, the last padded with zero bits."""
    count = (len(data) * 8 + 4) // 5
    value = int.from_bytes(data, "big") << (count * 5 - len(data) * 8)
    return [(value >> (5 * (count - 1 - i))) & 0x1F for i in range(count)]


def _whole_check(data: bytes) -> list[int]:
    digest = hashlib.sha256(_WHOLE_CHECK_DOMAIN + data).digest()
    bits = int.from_bytes(digest[:2], "big") >> (16 - 5 * WHOLE_CHECK_SYMBOLS)
    return [(bits >> 5) & 0x1F, bits & 0x1F]


def groups_for(length: int) -> int:
    """How many groups the code of `length` bytes has."""
    symbols = (length * 8 + 4) // 5 + WHOLE_CHECK_SYMBOLS
    return (symbols + GROUP_DATA - 1) // GROUP_DATA


def encode_groups(data: bytes, *, separator: str = "-") -> str:
    """Encode bytes as checked groups, e.g. `4H7Q2-...`; any non-empty `data` is allowed."""
    if not data:
        raise PaperpackError("nothing to encode: a typable code carries at least one byte")
    symbols = _to_symbols(bytes(data)) + _whole_check(bytes(data))
    groups = []
    for start in range(0, len(symbols), GROUP_DATA):
        chunk = symbols[start : start + GROUP_DATA]
        groups.append("".join(ALPHABET[s] for s in [*chunk, group_check(chunk)]))
    return separator.join(groups)


def _normalise(text: str) -> tuple[str, list[int]]:
    """Map typed text to canonical characters; return them and the lengths of typed chunks."""
    if not isinstance(text, str):
        raise Mistyped("a code must be text")
    chunks = [chunk for chunk in _SEPARATORS.split(text.upper()) if chunk]
    joined = "".join(chunks)
    for position, char in enumerate(joined):
        if char not in _VALUES:
            groups = (len(joined) + GROUP_SIZE - 1) // GROUP_SIZE
            group = position // GROUP_SIZE + 1
            raise Mistyped(
                f"group {group} of {groups} contains a character that cannot be in a code "
                "(codes use 0-9 and A-Z without I, L, O, U): type that group again",
                group=group,
                groups=groups,
            )
    return "".join(ALPHABET[_VALUES[c]] for c in joined), [len(c) for c in chunks]


def _check_chunk_lengths(chunk_lengths: list[int], groups: int) -> None:
    """Where the typist separated groups, each separated chunk must hold whole groups."""
    position = 0
    for index, length in enumerate(chunk_lengths):
        last = index == len(chunk_lengths) - 1
        if not last and length % GROUP_SIZE:
            group = (position + length) // GROUP_SIZE + 1
            raise Mistyped(
                f"group {group} of {groups} has {length % GROUP_SIZE} characters, not "
                f"{GROUP_SIZE}: a character is missing or extra",
                group=group,
                groups=groups,
            )
        position += length


def _check_groups(canonical: str, groups: int) -> list[int]:
    """Verify each group's check character; return the data symbols in order."""
    symbols: list[int] = []
    for index in range(groups):
        group = canonical[index * GROUP_SIZE : (index + 1) * GROUP_SIZE]
        values = [_VALUES[c] for c in group]
        if values[-1] != group_check(values[:-1]):
            raise Mistyped(
                f"group {index + 1} of {groups} does not check: a character is mistyped, "
                "missing or swapped; type that group again",
                group=index + 1,
                groups=groups,
            )
        symbols.extend(values[:-1])
    return symbols


def _symbols_to_bytes(symbols: list[int], groups: int) -> bytes:
    length = len(symbols) * 5 // 8
    if length == 0 or (length * 8 + 4) // 5 != len(symbols):
        raise Mistyped(
            f"the code has {groups} groups, which no code has: a group is missing or extra",
            groups=groups,
        )
    value = 0
    for symbol in symbols:
        value = value << 5 | symbol
    padding = len(symbols) * 5 - length * 8
    if value & ((1 << padding) - 1):
        raise Mistyped(
            "the code does not check as a whole: groups may be out of order, missing or "
            "repeated; type it again",
            groups=groups,
        )
    return (value >> padding).to_bytes(length, "big")


def decode_groups(text: str) -> bytes:
    """Decode a typed code; raise Mistyped naming the group at fault when it does not check."""
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        raise Mistyped(f"the text is longer than {MAX_TEXT_CHARS} characters: it is not a code")
    canonical, chunk_lengths = _normalise(text)
    if not canonical:
        raise Mistyped("the code is empty: type the code from the card")
    if len(canonical) > MAX_CODE_CHARS:
        raise Mistyped(f"the code is longer than {MAX_CODE_CHARS} characters: it is not a code")
    groups = (len(canonical) + GROUP_SIZE - 1) // GROUP_SIZE
    _check_chunk_lengths(chunk_lengths, groups)
    if len(canonical) % GROUP_SIZE == 1:
        raise Mistyped(
            f"group {groups} of {groups} has only 1 character: a character is missing or extra",
            group=groups,
            groups=groups,
        )
    symbols = _check_groups(canonical, groups)
    if len(symbols) <= WHOLE_CHECK_SYMBOLS:
        raise Mistyped("the code is too short: a group is missing", groups=groups)
    data = _symbols_to_bytes(symbols[:-WHOLE_CHECK_SYMBOLS], groups)
    if symbols[-WHOLE_CHECK_SYMBOLS:] != _whole_check(data):
        raise Mistyped(
            "the code does not check as a whole: groups may be out of order, missing or "
            "repeated; type it again",
            groups=groups,
        )
    return data
