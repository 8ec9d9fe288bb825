"""Share cards: set ids, commitments, the printed card, and the checks made on entry."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperpack.errors import PaperpackError
from paperpack.shamir import Share, combine, split
from paperpack.sharecards import (
    DuplicateShare,
    Mistyped,
    ParsedShare,
    ShareError,
    ShareMalformed,
    ShareRejected,
    card_code,
    check_share,
    commitments_for,
    ensure_distinct,
    format_card,
    parse_card,
    set_identifier,
    share_commitment,
)
from paperpack.typable import ALPHABET, encode_groups

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "sharecard_kat.json").read_text())
SALT = bytes(range(16))
SECRET = bytes(range(100, 132))


def lp(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


@pytest.fixture
def package() -> tuple[str, list[Share], dict[int, str]]:
    """A 3-of-5 set for session S1 at venue V1 with its commitments."""
    set_id = set_identifier("S1", "V1", b"package binding")
    shares = split(SECRET, 3, 5)
    return set_id, shares, commitments_for(set_id, shares, SALT)


def card(set_id: str, share: Share) -> str:
    return format_card(
        set_id=set_id,
        holder=share.x,
        holders_total=5,
        threshold=3,
        share=share,
        session_id="S1",
        venue_id="V1",
        venue_name="第一考点 First Venue",
        starts_at="2026-06-01T09:00:00+08:00",
    )


def test_set_identifier_matches_vectors() -> None:
    """set_identifier gives the pinned ids, which are SHA-256 of the documented encoding."""
    for vector in VECTORS["set_identifier"]:
        got = set_identifier(
            vector["session_id"], vector["venue_id"], bytes.fromhex(vector["binding"])
        )
        assert got == vector["set_id"]
        digest = hashlib.sha256(
            b"paperpack share set v1\x00"
            + lp(
                vector["session_id"].encode(),
                vector["venue_id"].encode(),
                bytes.fromhex(vector["binding"]),
            )
        ).digest()
        value = int.from_bytes(digest[:5], "big")
        assert got == "".join(ALPHABET[(value >> (35 - 5 * i)) & 31] for i in range(8))


def test_share_commitment_matches_vectors() -> None:
    """share_commitment gives the pinned hex digests of the documented encoding."""
    for vector in VECTORS["commitment"]:
        data, salt = bytes.fromhex(vector["data"]), bytes.fromhex(vector["salt"])
        got = share_commitment(vector["set_id"], vector["x"], data, salt)
        assert got == vector["commitment"]
        encoded = b"paperpack share commitment v1\x00" + lp(
            vector["set_id"].encode(), bytes([vector["x"]]), salt, data
        )
        assert got == hashlib.sha256(encoded).hexdigest()


def test_card_code_matches_vector() -> None:
    """A share's card code is the documented payload (version, set id, x, data) in groups."""
    for vector in VECTORS["card_code"]:
        share = Share(vector["x"], bytes.fromhex(vector["data"]))
        assert card_code(vector["set_id"], share) == vector["code"]


def test_set_identifier_binds_every_input() -> None:
    """Changing the session, the venue or the binding changes the set id; fields cannot slide."""
    base = set_identifier("S1", "V1", b"b")
    assert len(base) == 8 and set(base) <= set(ALPHABET)
    assert set_identifier("S2", "V1", b"b") != base
    assert set_identifier("S1", "V2", b"b") != base
    assert set_identifier("S1", "V1", b"c") != base
    assert set_identifier("S1V", "1", b"b") != set_identifier("S1", "V1", b"b")


def test_whole_card_and_code_alone_both_parse(
    package: tuple[str, list[Share], dict[int, str]],
) -> None:
    """Parsing the whole card, or only its code typed loosely, gives the set, holder and share."""
    set_id, shares, _ = package
    text = card(set_id, shares[1])
    for typed in (
        text,
        card_code(set_id, shares[1]),
        card_code(set_id, shares[1]).lower().replace("-", " "),
    ):
        parsed = parse_card(typed)
        assert (parsed.set_id, parsed.x, parsed.holder, parsed.data) == (
            set_id,
            2,
            2,
            shares[1].data,
        )
        assert parsed.share == shares[1]


def test_card_says_what_it_is_in_both_languages(
    package: tuple[str, list[Share], dict[int, str]],
) -> None:
    """The card says "Holder 2 of 5, any 3 open the paper", in Chinese too, with the set id."""
    set_id, shares, _ = package
    text = card(set_id, shares[1])
    assert "Holder 2 of 5, any 3 open the paper" in text
    assert "任意 3 人即可开启" in text
    assert (
        set_id in text
        and "S1" in text
        and "第一考点" in text
        and "2026-06-01T09:00:00+08:00" in text
    )


def test_k_cards_open_the_secret(package: tuple[str, list[Share], dict[int, str]]) -> None:
    """Any 3 of the 5 printed cards, parsed and checked, combine to the secret."""
    set_id, shares, commitments = package
    parsed = [parse_card(card(set_id, share)) for share in shares]
    for subset in itertools.combinations(parsed, 3):
        for one in subset:
            check_share(one, expected_set_id=set_id, commitments=commitments, salt=SALT)
        ensure_distinct(subset)
        assert combine([p.share for p in subset]) == SECRET


def test_mistyped_character_is_caught_naming_the_group(
    package: tuple[str, list[Share], dict[int, str]],
) -> None:
    """One wrong character in group 5 of the card's code raises Mistyped naming group 5."""
    set_id, shares, _ = package
    groups = card_code(set_id, shares[0]).split("-")
    groups[4] = ("0" if groups[4][1] != "0" else "1").join([groups[4][0], groups[4][2:]])
    with pytest.raises(Mistyped, match=r"group 5 of 17 does not check") as caught:
        parse_card(" ".join(groups))
    assert caught.value.group == 5


def test_share_of_another_set_is_rejected(package: tuple[str, list[Share], dict[int, str]]) -> None:
    """A card of another venue's set is rejected as belonging to another set, naming the holder."""
    set_id, _, commitments = package
    other_set = set_identifier("S1", "V2", b"package binding")
    other = parse_card(card(other_set, split(SECRET, 3, 5)[2]))
    with pytest.raises(ShareRejected, match="another set") as caught:
        check_share(other, expected_set_id=set_id, commitments=commitments, salt=SALT)
    assert caught.value.holder == 3


def test_wrong_share_for_the_right_set_is_rejected_naming_holder(
    package: tuple[str, list[Share], dict[int, str]],
) -> None:
    """A share with the right set id and holder 2 but other bytes is rejected naming holder 2."""
    set_id, shares, commitments = package
    forged = parse_card(card_code(set_id, Share(2, shares[2].data)))
    with pytest.raises(
        ShareRejected, match="share of holder 2 does not match this package"
    ) as caught:
        check_share(forged, expected_set_id=set_id, commitments=commitments, salt=SALT)
    assert caught.value.holder == 2


def test_wrong_salt_rejects(package: tuple[str, list[Share], dict[int, str]]) -> None:
    """Commitments are bound to the package salt: the right share under another salt is rejected."""
    set_id, shares, commitments = package
    with pytest.raises(ShareRejected):
        check_share(
            parse_card(card_code(set_id, shares[0])),
            expected_set_id=set_id,
            commitments=commitments,
            salt=b"x" * 16,
        )


def test_commitments_keyed_by_text_as_in_the_manifest(
    package: tuple[str, list[Share], dict[int, str]],
) -> None:
    """Commitments keyed "1".."5" (the manifest's JSON keys) check shares the same way."""
    set_id, shares, commitments = package
    as_text = {str(x): value for x, value in commitments.items()}
    check_share(
        parse_card(card_code(set_id, shares[4])),
        expected_set_id=set_id,
        commitments=as_text,
        salt=SALT,
    )
    with pytest.raises(ShareRejected, match="holder 5 does not match"):
        check_share(
            parse_card(card_code(set_id, Share(5, shares[0].data))),
            expected_set_id=set_id,
            commitments=as_text,
            salt=SALT,
        )


def test_unknown_holder_is_rejected(package: tuple[str, list[Share], dict[int, str]]) -> None:
    """A share for holder 7 of a 5-holder package is rejected naming holder 7."""
    set_id, _, commitments = package
    stray = parse_card(card_code(set_id, Share(7, bytes(32))))
    with pytest.raises(ShareRejected, match="holder 7 is not one of") as caught:
        check_share(stray, expected_set_id=set_id, commitments=commitments, salt=SALT)
    assert caught.value.holder == 7


def test_duplicate_share_is_refused(package: tuple[str, list[Share], dict[int, str]]) -> None:
    """ensure_distinct raises DuplicateShare naming the holder entered twice."""
    set_id, shares, _ = package
    first = parse_card(card_code(set_id, shares[3]))
    with pytest.raises(DuplicateShare, match="holder 4 was entered twice") as caught:
        ensure_distinct([parse_card(card_code(set_id, shares[0])), first, first])
    assert caught.value.holder == 4


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (bytes([2]) + bytes(5) + bytes([1]) + bytes(32), "format version 2"),
        (bytes([1]) + bytes(5) + bytes([1]), "too short"),
        (bytes([1]) + bytes(5) + bytes([0]) + bytes(32), "holder 0"),
    ],
    ids=["version", "short", "holder-0"],
)
def test_well_typed_but_malformed_codes_are_refused(payload: bytes, message: str) -> None:
    """A code that checks but holds no valid share raises ShareMalformed saying why."""
    with pytest.raises(ShareMalformed, match=message):
        parse_card(encode_groups(payload))


def test_overlong_card_text_is_refused() -> None:
    """Text longer than any card is refused as ShareMalformed without decoding it."""
    with pytest.raises(ShareMalformed, match="longer than a card"):
        parse_card("A" * 30_000)


def test_card_refuses_inconsistent_requests() -> None:
    """format_card refuses a holder number that is not the share's x, or k outside 2..n."""
    share = Share(2, bytes(4))
    common = {
        "set_id": "0123ABCD",
        "holders_total": 5,
        "share": share,
        "session_id": "S",
        "venue_id": "V",
    }
    with pytest.raises(ShareError, match="must match"):
        format_card(holder=3, threshold=3, **common)  # type: ignore[arg-type]
    with pytest.raises(ShareError, match="threshold"):
        format_card(holder=2, threshold=1, **common)  # type: ignore[arg-type]


def test_short_salt_and_bad_set_id_are_refused() -> None:
    """Commitments need a salt of at least 16 bytes and a well-formed set id."""
    with pytest.raises(ShareError, match="salt"):
        share_commitment("0123ABCD", 1, b"x", b"short")
    with pytest.raises(ShareError, match="set id"):
        share_commitment("0123ABCU", 1, b"x", SALT)


def test_parsed_share_repr_hides_data() -> None:
    """A parsed share's repr shows set and holder but never the share bytes."""
    parsed = ParsedShare(set_id="0123ABCD", x=1, holder=1, data=bytes.fromhex("cafebabe"))
    assert "cafe" not in repr(parsed) and "holder=1" in repr(parsed)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_parsing_arbitrary_text_raises_only_project_errors(text: str) -> None:
    """parse_card on arbitrary text returns a share or raises a PaperpackError, nothing else."""
    with contextlib.suppress(PaperpackError):
        parse_card(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=60))
def test_parsing_any_checked_code_raises_only_project_errors(payload: bytes) -> None:
    """Any correctly checked code, whatever it holds, parses or raises a PaperpackError."""
    with contextlib.suppress(PaperpackError):
        parsed = parse_card(encode_groups(payload))
        assert parsed.x == payload[6]
