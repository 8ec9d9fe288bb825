"""Shamir secret sharing over GF(2^8), written here so it can be read and tested by hand.

This module owns the field arithmetic (the AES field, polynomial x^8+x^4+x^3+x+1 = 0x11B,
log/exp tables built at import from the generator 3), `split` (a secret into n shares of
which any k rebuild it) and `combine` (Lagrange interpolation at x = 0). Every byte of the
secret gets its own polynomial with fresh, uniform random coefficients, so any k-1 shares
are independent of the secret. Share x-coordinates are 1..n in order: share x is holder x.

The random source of `split` is injectable only so known-answer tests can be deterministic;
production code never passes it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from paperpack.errors import PaperpackError

FIELD_POLYNOMIAL = 0x11B  # x^8 + x^4 + x^3 + x + 1, the AES (Rijndael) field
GENERATOR = 3  # x + 1 generates the multiplicative group of this field
MAX_SHARES = 255  # x runs over the non-zero field elements


class ShamirError(PaperpackError):
    """Bad parameters or shares given to `split` or `combine`."""


def _xtime_mul(a: int, b: int) -> int:
    """Multiply in GF(2^8) by shift-and-add; used only to build the tables."""
    product = 0
    for _ in range(8):
        product ^= a * (b & 1)
        carry = a >> 7
        a = ((a << 1) & 0xFF) ^ (0x1B * carry)
        b >>= 1
    return product


def _build_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """EXP[i] = 3^i for i in 0..509 (doubled so log sums need no reduction); LOG its inverse."""
    exp = [0] * 510
    log = [0] * 256
    value = 1
    for i in range(255):
        exp[i] = value
        log[value] = i
        value = _xtime_mul(value, GENERATOR)
    for i in range(255, 510):
        exp[i] = exp[i - 255]
    # LOG[0] is undefined in the field; 0 keeps lookups in range and `mul` masks the result.
    return tuple(exp), tuple(log)


EXP, LOG = _build_tables()


def add(a: int, b: int) -> int:
    """Add (and subtract) in GF(2^8): exclusive or."""
    return a ^ b


def mul(a: int, b: int) -> int:
    """Multiply in GF(2^8) through the tables, with the same lookups whatever the operands."""
    product = EXP[LOG[a] + LOG[b]]
    # Mask rather than branch, so a zero operand takes the same path as any other.
    return product * (a != 0) * (b != 0)


def inverse(a: int) -> int:
    """The multiplicative inverse of a non-zero field element."""
    if not 0 < a < 256:
        raise ShamirError(f"{a} has no inverse in GF(256): only 1..255 do")
    return EXP[255 - LOG[a]]


def div(a: int, b: int) -> int:
    """Divide in GF(2^8); b must be non-zero."""
    return mul(a, inverse(b))


def evaluate(coefficients: Sequence[int], x: int) -> int:
    """Evaluate c0 + c1*x + c2*x^2 + ... at x by Horner's rule."""
    result = 0
    for coefficient in reversed(coefficients):
        result = mul(result, x) ^ coefficient
    return result


@dataclass(frozen=True)
class Share:
    """One holder's share: x (1..255, the holder number) and one byte per secret byte."""

    x: int
    data: bytes

    def __post_init__(self) -> None:
        if isinstance(self.x, bool) or not isinstance(self.x, int) or not 1 <= self.x <= 255:
            raise ShamirError(f"share x-coordinate {self.x!r} is invalid: it must be 1..255")
        if not isinstance(self.data, bytes):
            raise ShamirError(f"share {self.x} data must be bytes, not {type(self.data).__name__}")
        if not self.data:
            raise ShamirError(f"share {self.x} has no data: it must carry one byte per secret byte")

    def __repr__(self) -> str:
        # Never show share bytes in logs or tracebacks.
        return f"Share(x={self.x}, data=<{len(self.data)} bytes>)"


def _check_split_parameters(secret: bytes, k: int, n: int) -> None:
    if not isinstance(secret, bytes | bytearray) or not secret:
        raise ShamirError("the secret to split is empty: give at least one byte")
    if k < 2:
        raise ShamirError(f"threshold k = {k} is too small: at least 2 shares must be needed")
    if k > n:
        raise ShamirError(f"threshold k = {k} exceeds the number of shares n = {n}: lower k")
    if n > MAX_SHARES:
        raise ShamirError(f"n = {n} shares is too many: GF(256) allows at most {MAX_SHARES}")


def split(
    secret: bytes,
    k: int,
    n: int,
    *,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> list[Share]:
    """Split `secret` into `n` shares (x = 1..n) of which any `k` rebuild it.

    The coefficients come from one call `random_bytes((k - 1) * len(secret))`; the coefficient
    of degree j (1..k-1) for secret byte i is byte `(j - 1) * len(secret) + i` of that stream.
    """
    _check_split_parameters(secret, k, n)
    length = len(secret)
    stream = random_bytes((k - 1) * length)
    if len(stream) != (k - 1) * length:
        raise ShamirError("the random source returned the wrong number of bytes")
    polynomials = [
        [secret[i], *(stream[(j - 1) * length + i] for j in range(1, k))] for i in range(length)
    ]
    return [Share(x, bytes(evaluate(poly, x) for poly in polynomials)) for x in range(1, n + 1)]


def _check_shares(shares: Sequence[Share]) -> None:
    if len(shares) < 2:
        raise ShamirError(f"{len(shares)} share(s) given: at least 2 are needed to combine")
    seen: set[int] = set()
    for share in shares:
        if not 1 <= share.x <= 255:
            raise ShamirError(f"share x-coordinate {share.x} is invalid: it must be 1..255")
        if share.x in seen:
            raise ShamirError(f"share {share.x} is given twice: each holder's share counts once")
        seen.add(share.x)
    lengths = {len(share.data) for share in shares}
    if len(lengths) != 1:
        raise ShamirError(
            f"shares have unequal lengths {sorted(lengths)}: they come from different secrets"
        )


def lagrange_at_zero(xs: Sequence[int]) -> list[int]:
    """The Lagrange basis values l_i(0) = prod_{j != i} x_j / (x_j - x_i) for distinct xs."""
    basis = []
    for i, xi in enumerate(xs):
        numerator, denominator = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                numerator = mul(numerator, xj)
                denominator = mul(denominator, xj ^ xi)
        basis.append(div(numerator, denominator))
    return basis


def combine(shares: Sequence[Share]) -> bytes:
    """Rebuild the secret from distinct shares by Lagrange interpolation at x = 0.

    With fewer than the threshold, the result is a wrong secret, not an error: the caller
    detects that with the key-commitment tag (Shamir itself cannot know k).
    """
    _check_shares(shares)
    basis = lagrange_at_zero([share.x for share in shares])
    secret = bytearray(len(shares[0].data))
    for share, weight in zip(shares, basis, strict=True):
        for i, y in enumerate(share.data):
            secret[i] ^= mul(y, weight)
    result = bytes(secret)
    secret[:] = bytes(len(secret))  # do not leave a second copy of the secret behind
    return result
