"""The typable code format: round trips, error detection proven exhaustively, and fuzzing."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack.errors import PaperpackError
from paperpack.typable import (
    ALPHABET,
    GROUP_DATA,
    GROUP_SIZE,
    Mistyped,
    decode_groups,
    encode_groups,
    group_check,
    groups_for,
)

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "typable_kat.json").read_text())


def strip(code: str) -> str:
    return code.replace("-", "")


def regroup(chars: str) -> str:
    return "-".join(chars[i : i + GROUP_SIZE] for i in range(0, len(chars), GROUP_SIZE))


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["data"][:16] or "empty")
def test_known_codes_encode_and_decode(vector: dict[str, str]) -> None:
    """Each vector's bytes encode to exactly its code, and the code decodes back."""
    data = bytes.fromhex(vector["data"])
    assert encode_groups(data) == vector["code"]
    assert decode_groups(vector["code"]) == data


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["why"])
def test_known_bad_codes_name_their_group(vector: dict[str, object]) -> None:
    """Each invalid vector raises Mistyped with the documented group (or none, for whole-code)."""
    with pytest.raises(Mistyped) as caught:
        decode_groups(str(vector["code"]))
    assert caught.value.group == vector["group"]


def test_alphabet_is_crockford() -> None:
    """The alphabet is the 32 Crockford symbols: digits and letters without I, L, O, U."""
    assert len(set(ALPHABET)) == 32
    assert not set("ILOU") & set(ALPHABET)


def test_reading_aids_are_accepted() -> None:
    """Lower case, O for 0, I or L for 1, spaces, hyphens and line breaks all decode the same."""
    data = bytes(range(20))
    code = encode_groups(data)
    sloppy = code.lower().replace("0", "o").replace("1", "l").replace("-", " \n ")
    assert decode_groups(sloppy) == data
    assert decode_groups(strip(code).replace("1", "I")) == data


def residual(word: list[int]) -> int:
    """The check relation of a group (data symbols then check): zero exactly when it checks."""
    return word[-1] ^ group_check(word[:-1])


def test_check_detects_every_substitution_and_swap_algebraically() -> None:
    """For every group length, position and pair of symbols, a substitution or a swap changes
    the check relation; since the relation is linear, that covers every group content."""
    rng = random.Random(7)
    for length in range(1, GROUP_DATA + 1):
        context = [rng.randrange(32) for _ in range(length)]
        word = [*context, group_check(context)]
        assert residual(word) == 0
        for i in range(length + 1):
            for value in set(range(32)) - {word[i]}:
                changed = list(word)
                changed[i] = value
                assert residual(changed) != 0
            for j in range(i + 1, length + 1):
                for a in range(32):
                    for b in set(range(32)) - {a}:
                        first = list(word)
                        first[i], first[j] = a, b
                        swapped = list(first)
                        swapped[i], swapped[j] = b, a
                        assert residual(first) != residual(swapped)


@pytest.mark.parametrize("seed", range(6))
def test_every_single_substitution_is_caught_and_named(seed: int) -> None:
    """In random codes, every one of the 31 wrong symbols at every position is caught, and the
    error names the group that holds the position."""
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(1, 45))
    chars = strip(encode_groups(data))
    groups = len(regroup(chars).split("-"))
    for position, original in enumerate(chars):
        for wrong in ALPHABET:
            if wrong == original:
                continue
            typed = chars[:position] + wrong + chars[position + 1 :]
            with pytest.raises(Mistyped) as caught:
                decode_groups(regroup(typed))
            assert caught.value.group == position // GROUP_SIZE + 1
            assert f"group {position // GROUP_SIZE + 1} of {groups} does not check" in str(
                caught.value
            )


@pytest.mark.parametrize("seed", range(20))
def test_every_adjacent_swap_is_caught(seed: int) -> None:
    """Swapping any two adjacent different characters (across group edges too) is caught,
    naming one of the two groups involved."""
    rng = random.Random(100 + seed)
    data = rng.randbytes(rng.randrange(1, 45))
    chars = strip(encode_groups(data))
    for position in range(len(chars) - 1):
        a, b = chars[position], chars[position + 1]
        if a == b:
            continue
        typed = chars[:position] + b + a + chars[position + 2 :]
        with pytest.raises(Mistyped) as caught:
            decode_groups(typed)
        assert caught.value.group in {position // GROUP_SIZE + 1, (position + 1) // GROUP_SIZE + 1}


@pytest.mark.parametrize("seed", range(10))
def test_swapped_whole_groups_are_caught(seed: int) -> None:
    """Typing two whole groups in the wrong order is caught by the whole-code check."""
    rng = random.Random(200 + seed)
    data = rng.randbytes(32)
    groups = encode_groups(data).split("-")
    full = [i for i, g in enumerate(groups) if len(g) == GROUP_SIZE]
    i, j = rng.sample(full, 2)
    if groups[i] == groups[j]:
        return
    groups[i], groups[j] = groups[j], groups[i]
    with pytest.raises(Mistyped, match="as a whole") as caught:
        decode_groups("-".join(groups))
    assert caught.value.group is None


def test_a_dropped_character_is_named_when_groups_are_separated() -> None:
    """A group typed one character short, with separators, is named by its number."""
    groups = encode_groups(bytes(range(32))).split("-")
    groups[2] = groups[2][:-1]
    with pytest.raises(Mistyped, match=r"group 3 of \d+ has 4 characters") as caught:
        decode_groups(" ".join(groups))
    assert caught.value.group == 3


def test_a_missing_group_is_caught() -> None:
    """Leaving out a whole group never decodes to other bytes."""
    groups = encode_groups(bytes(range(32))).split("-")
    for missing in range(len(groups)):
        with pytest.raises(Mistyped):
            decode_groups("-".join(groups[:missing] + groups[missing + 1 :]))


def test_a_foreign_character_is_named_without_echoing_it() -> None:
    """A character outside the alphabet names its group and is not repeated in the message."""
    chars = strip(encode_groups(bytes(range(10))))
    typed = chars[:7] + "U" + chars[8:]
    with pytest.raises(Mistyped, match="group 2 of") as caught:
        decode_groups(typed)
    assert caught.value.group == 2
    assert chars[:4] not in str(caught.value)


def test_overlong_input_is_refused_cheaply() -> None:
    """Text far longer than any code is refused as Mistyped before decoding it."""
    with pytest.raises(Mistyped, match="longer than"):
        decode_groups("0" * 5_000)
    with pytest.raises(Mistyped, match="longer than"):
        decode_groups(" " * 20_000)


def test_empty_code_is_refused() -> None:
    """An empty or blank code is Mistyped, with a message saying to type the card's code."""
    for text in ("", "   ", "- -"):
        with pytest.raises(Mistyped, match="empty"):
            decode_groups(text)


def test_empty_data_cannot_be_encoded() -> None:
    """Encoding nothing is refused: a code always carries at least one byte."""
    with pytest.raises(PaperpackError):
        encode_groups(b"")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=80))
def test_round_trip(data: bytes) -> None:
    """Any bytes encode to a code that decodes back to them, with the stated group count."""
    code = encode_groups(data)
    assert decode_groups(code) == data
    assert len(code.split("-")) == groups_for(len(data))
    assert set(strip(code)) <= set(ALPHABET)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_decoding_arbitrary_text_raises_only_mistyped(text: str) -> None:
    """Decoding arbitrary text either returns bytes or raises Mistyped, nothing else."""
    with contextlib.suppress(Mistyped):
        decode_groups(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ALPHABET + "-", max_size=100))
def test_decoding_alphabet_soup_raises_only_mistyped(text: str) -> None:
    """Random strings of code characters raise only Mistyped (they almost never check)."""
    try:
        decoded = decode_groups(text)
    except Mistyped:
        return
    assert encode_groups(decoded).replace("-", "") == text.replace("-", "")
