"""Shamir secret sharing over GF(2^8): known answers, properties, and refusals."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack import shamir
from paperpack.errors import PaperpackError
from paperpack.shamir import ShamirError, Share, combine, split

KAT = json.loads((Path(__file__).parent.parent / "vectors" / "shamir_kat.json").read_text())


def slow_mul(a: int, b: int) -> int:
    """An independent GF(2^8) multiply: carry-less product, then reduce by 0x11B bit by bit."""
    product = 0
    for bit in range(8):
        if b >> bit & 1:
            product ^= a << bit
    for bit in range(14, 7, -1):
        if product >> bit & 1:
            product ^= 0x11B << (bit - 8)
    return product


def slow_eval(coefficients: list[int], x: int) -> int:
    """Evaluate a polynomial term by term with `slow_mul` (no Horner, no tables)."""
    total, power = 0, 1
    for coefficient in coefficients:
        total ^= slow_mul(coefficient, power)
        power = slow_mul(power, x)
    return total


def shares_of(rows: list[dict[str, Any]]) -> list[Share]:
    return [Share(row["x"], bytes.fromhex(row["data"])) for row in rows]


def fixed(stream_hex: str) -> Any:
    stream = bytes.fromhex(stream_hex)

    def random_bytes(count: int) -> bytes:
        assert count == len(stream)
        return stream

    return random_bytes


@pytest.mark.parametrize("vector", KAT["mul"], ids=lambda v: f"{v['a']}*{v['b']}")
def test_multiplication_matches_published_vectors(vector: dict[str, str]) -> None:
    """Table multiplication gives the published (FIPS 197, Vault) and independent products."""
    a, b, product = (int(vector[key], 16) for key in ("a", "b", "product"))
    assert shamir.mul(a, b) == product
    assert slow_mul(a, b) == product


@pytest.mark.parametrize("vector", KAT["div"], ids=lambda v: f"{v['a']}/{v['b']}")
def test_division_matches_vault_vectors(vector: dict[str, str]) -> None:
    """Division agrees with HashiCorp Vault's documented field tests (same AES field)."""
    a, b, quotient = (int(vector[key], 16) for key in ("a", "b", "quotient"))
    assert shamir.div(a, b) == quotient


@pytest.mark.parametrize("vector", KAT["inverse"], ids=lambda v: v["a"])
def test_inverse_matches_vectors(vector: dict[str, str]) -> None:
    """The inverse of {53} is {ca} (FIPS 197 5.1.1), and each listed inverse multiplies to 1."""
    a, inv = int(vector["a"], 16), int(vector["inverse"], 16)
    assert shamir.inverse(a) == inv
    assert slow_mul(a, inv) == 1


def test_tables_agree_with_slow_multiply_everywhere() -> None:
    """The log/exp tables give the same product as the slow multiply for all 65,536 pairs."""
    for a in range(256):
        for b in range(256):
            assert shamir.mul(a, b) == slow_mul(a, b)


def test_zero_has_no_inverse() -> None:
    """Inverting zero raises ShamirError rather than returning a table artefact."""
    with pytest.raises(ShamirError, match="no inverse"):
        shamir.inverse(0)


@pytest.mark.parametrize("vector", KAT["split"], ids=lambda v: v["name"])
def test_split_matches_known_answers(vector: dict[str, Any]) -> None:
    """With a fixed coefficient stream, split gives exactly the vector's shares."""
    secret = bytes.fromhex(vector["secret"])
    got = split(secret, vector["k"], vector["n"], random_bytes=fixed(vector["coefficients"]))
    assert got == shares_of(vector["shares"])


@pytest.mark.parametrize("vector", KAT["split"], ids=lambda v: v["name"])
def test_split_vectors_agree_with_independent_evaluation(vector: dict[str, Any]) -> None:
    """Each vector share is f_i(x) of the documented polynomial, evaluated without the tables."""
    secret = bytes.fromhex(vector["secret"])
    stream = bytes.fromhex(vector["coefficients"])
    k, length = vector["k"], len(secret)
    for row in vector["shares"]:
        expected = bytes(
            slow_eval([secret[i], *(stream[(j - 1) * length + i] for j in range(1, k))], row["x"])
            for i in range(length)
        )
        assert expected.hex() == row["data"]


@pytest.mark.parametrize("vector", KAT["combine"], ids=lambda v: v["name"])
def test_combine_matches_known_answers(vector: dict[str, Any]) -> None:
    """Combining the vector's shares yields the vector's secret."""
    assert combine(shares_of(vector["shares"])).hex() == vector["secret"]


@pytest.mark.parametrize("vector", KAT["invalid_split"], ids=lambda v: v["why"])
def test_invalid_split_parameters_raise(vector: dict[str, Any]) -> None:
    """Empty secrets, k < 2, k > n and n > 255 are refused with ShamirError."""
    with pytest.raises(ShamirError):
        split(bytes.fromhex(vector["secret"]), vector["k"], vector["n"])


@pytest.mark.parametrize("vector", KAT["invalid_combine"], ids=lambda v: v["why"])
def test_invalid_combine_inputs_raise(vector: dict[str, Any]) -> None:
    """Fewer than two shares, duplicate x and unequal lengths are refused with ShamirError."""
    with pytest.raises(ShamirError):
        combine(shares_of(vector["shares"]))


def test_x_zero_is_refused() -> None:
    """A share at x = 0 would be the secret itself, so it cannot even be constructed."""
    with pytest.raises(ShamirError, match=r"1\.\.255"):
        Share(0, b"\x01")
    with pytest.raises(ShamirError, match=r"1\.\.255"):
        Share(256, b"\x01")


def test_x_zero_is_refused_by_combine_even_if_smuggled_in() -> None:
    """combine re-checks x, so a share forced to x = 0 behind the dataclass is still refused."""
    bad = Share(1, b"\x01")
    object.__setattr__(bad, "x", 0)
    with pytest.raises(ShamirError, match=r"1\.\.255"):
        combine([bad, Share(2, b"\x02")])


def test_errors_are_paperpack_errors() -> None:
    """ShamirError is one of the project's own errors, so the CLI prints it on one line."""
    assert issubclass(ShamirError, PaperpackError)


def test_share_repr_hides_data() -> None:
    """A share's repr names x and the length, never the bytes, so logs cannot leak it."""
    share = Share(3, bytes.fromhex("deadbeef"))
    assert "dead" not in repr(share) and "x=3" in repr(share)


def test_short_random_source_is_refused() -> None:
    """A random source that returns too few bytes is an error, not a silently weak split."""
    with pytest.raises(ShamirError, match="wrong number"):
        split(b"ab", 2, 3, random_bytes=lambda n: b"\x00")


def test_every_3_subset_of_5_rebuilds() -> None:
    """Exhaustively, every 3 of 5 shares (in every order) rebuild a 32-byte secret."""
    secret = bytes(range(32))
    shares = split(secret, 3, 5)
    for subset in itertools.permutations(shares, 3):
        assert combine(subset) == secret


def test_fresh_coefficients_each_split() -> None:
    """Two splits of the same secret give different shares (fresh randomness each time)."""
    assert split(b"same secret", 2, 2) != split(b"same secret", 2, 2)


@settings(max_examples=100, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=40),
    data=st.data(),
)
def test_any_k_of_n_rebuild_the_secret(secret: bytes, data: st.DataObject) -> None:
    """For random k <= n, any k shares (in any order) rebuild the secret, and so do more than k."""
    n = data.draw(st.integers(2, 12), label="n")
    k = data.draw(st.integers(2, n), label="k")
    shares = split(secret, k, n)
    chosen = data.draw(st.permutations(shares), label="order")
    count = data.draw(st.integers(k, n), label="count")
    assert combine(chosen[:count]) == secret


# The two secrecy tests below run the real `split` on a secret of 256 equal bytes, with a
# coefficient stream that gives byte i the coefficient i: one call then covers every
# coefficient value for one candidate secret.


@settings(max_examples=20, deadline=None)
@given(secret=st.integers(0, 255), x=st.integers(1, 255))
def test_one_share_of_2_fits_every_secret_equally(secret: int, x: int) -> None:
    """For k = 2, as the coefficient runs over all 256 values, one share takes every value once.

    So whatever share a holder sees, each candidate secret is explained by exactly one
    coefficient: the share is independent of the secret (perfect secrecy of k-1 shares).
    """
    shares = split(bytes([secret]) * 256, 2, max(x, 2), random_bytes=lambda _n: bytes(range(256)))
    assert len(set(shares[x - 1].data)) == 256


@settings(max_examples=3, deadline=None)
@given(
    secret=st.integers(0, 255),
    xs=st.lists(st.integers(1, 6), min_size=2, max_size=2, unique=True),
)
def test_two_shares_of_3_fit_every_secret_equally(secret: int, xs: list[int]) -> None:
    """For k = 3, two shares take each pair of values once over all 65,536 coefficient pairs."""
    seen = set()
    for c2 in range(256):
        stream = bytes(range(256)) + bytes([c2]) * 256
        shares = split(bytes([secret]) * 256, 3, max(*xs, 3), random_bytes=lambda _n, s=stream: s)
        seen.update(zip(shares[xs[0] - 1].data, shares[xs[1] - 1].data, strict=True))
    assert len(seen) == 65536


@settings(max_examples=100, deadline=None)
@given(k=st.integers(-3, 300), n=st.integers(-3, 300), secret=st.binary(max_size=3))
def test_invalid_parameters_raise_shamir_error(k: int, n: int, secret: bytes) -> None:
    """Any (secret, k, n) outside 2 <= k <= n <= 255 with a non-empty secret raises ShamirError."""
    valid = bool(secret) and 2 <= k <= n <= 255
    if valid:
        assert len(split(secret, k, n)) == n
    else:
        with pytest.raises(ShamirError):
            split(secret, k, n)
