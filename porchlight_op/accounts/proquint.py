"""Proquint ids: 32 random bits written as two pronounceable words, "lusab-babad".

Each 16-bit word is consonant, vowel, consonant, vowel, consonant, carrying
4, 2, 4, 2 and 4 bits, most significant first, so 127.0.0.1 (0x7F000001) is
"lusab-babad".
"""

from __future__ import annotations

import secrets

CONSONANTS = "bdfghjklmnprstvz"
VOWELS = "aiou"
SEPARATOR = "-"
WORD_LENGTH = 5
MAX_VALUE = 0xFFFFFFFF


def new_id() -> str:
    """Return a fresh id from 32 bits of the `secrets` module's randomness."""
    return encode(secrets.randbits(32))


def encode(value: int) -> str:
    """Encode an integer in 0..2**32-1 as two proquint words."""
    if not 0 <= value <= MAX_VALUE:
        raise ValueError(f"invalid proquint value {value}: must be in 0..2**32-1")
    return _encode_word(value >> 16) + SEPARATOR + _encode_word(value & 0xFFFF)


def decode(text: str) -> int:
    """Decode two proquint words into an integer, raising ValueError if malformed."""
    words = text.split(SEPARATOR)
    if len(words) != 2:
        raise ValueError(f"invalid proquint {text!r}: expected two words joined by '-'")
    return (_decode_word(words[0], text) << 16) | _decode_word(words[1], text)


def is_valid(text: str) -> bool:
    """Return True when text is two lowercase proquint words joined by '-'."""
    try:
        decode(text)
    except ValueError:
        return False
    return True


def _encode_word(value: int) -> str:
    return (
        CONSONANTS[(value >> 12) & 0xF]
        + VOWELS[(value >> 10) & 0x3]
        + CONSONANTS[(value >> 6) & 0xF]
        + VOWELS[(value >> 4) & 0x3]
        + CONSONANTS[value & 0xF]
    )


def _decode_word(word: str, text: str) -> int:
    if len(word) != WORD_LENGTH:
        raise ValueError(f"invalid proquint {text!r}: each word has 5 letters")
    value = 0
    for position, letter in enumerate(word):
        alphabet = VOWELS if position % 2 else CONSONANTS
        digit = alphabet.find(letter)
        if digit < 0:
            raise ValueError(f"invalid proquint {text!r}: unexpected letter {letter!r}")
        value = (value << (2 if position % 2 else 4)) | digit
    return value
