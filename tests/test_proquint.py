"""Tests for proquint ids."""

from __future__ import annotations

import pytest

from porchlight_op.accounts import proquint


def test_encode_known_example() -> None:
    assert proquint.encode(0x7F000001) == "lusab-babad"


def test_decode_known_example() -> None:
    assert proquint.decode("lusab-babad") == 0x7F000001


@pytest.mark.parametrize(
    "value", [0, 1, 0xFFFF, 0x10000, 0x7F000001, 0xDEADBEEF, 0xFFFFFFFF]
)
def test_round_trip(value: int) -> None:
    assert proquint.decode(proquint.encode(value)) == value


def test_extreme_values_use_first_and_last_letters() -> None:
    assert proquint.encode(0) == "babab-babab"
    assert proquint.encode(0xFFFFFFFF) == "zuzuz-zuzuz"


@pytest.mark.parametrize("value", [-1, 0x100000000])
def test_encode_rejects_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match=r"0..2\*\*32-1"):
        proquint.encode(value)


def test_new_id_is_valid_and_varies() -> None:
    ids = {proquint.new_id() for _ in range(50)}

    assert all(proquint.is_valid(value) for value in ids)
    # 50 draws of 32 bits collide with probability below 1e-6.
    assert len(ids) == 50


def test_new_id_shape() -> None:
    first, second = proquint.new_id().split("-")

    assert len(first) == 5
    assert len(second) == 5


@pytest.mark.parametrize(
    "text",
    [
        "",
        "lusab",
        "lusab-babad-babad",
        "lusab_babad",
        "LUSAB-BABAD",
        "lusab-baba",
        "lusab-babadd",
        "ausab-babad",  # a vowel where a consonant belongs
        "lucab-babad",  # 'c' is not in the consonant alphabet
        "lusab-babed",  # 'e' is not in the vowel alphabet
        " lusab-babad",
        "{usab-babad",
    ],
)
def test_is_valid_rejects_malformed(text: str) -> None:
    assert not proquint.is_valid(text)


def test_decode_error_names_input() -> None:
    with pytest.raises(ValueError, match="lucab-babad"):
        proquint.decode("lucab-babad")
