"""JSON encoding and decoding with orjson, falling back to the json module.

orjson is several times faster than the json module on the token endpoint's
grant documents. It rejects some values that the json module accepts: dict
keys that are not strings and integers beyond 64 bits. To encode those, the
json module takes over. A given value always takes the same path, so the canonical
form of a document is stable.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS


def dumps(value: Any) -> bytes:
    """Encode a value as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return _fallback(value, sort_keys=False)


def dumps_canonical(value: Any) -> bytes:
    """Encode a value as compact UTF-8 JSON with sorted keys.

    Stored session documents use this form, so that comparing two dumps byte
    by byte shows whether a document changed.
    """
    try:
        return orjson.dumps(value, option=_SORTED)
    except TypeError:
        return _fallback(value, sort_keys=True)


def loads(data: bytes | str) -> Any:
    """Decode JSON, raising ValueError (a json.JSONDecodeError) when it is invalid.

    NOTE: orjson 3.x reads an integer beyond 64 bits as a float, where the
    json module keeps it exact. The OP writes no such integers itself, but a
    user claim set to one comes back as a float.
    """
    return orjson.loads(data)


def _fallback(value: Any, sort_keys: bool) -> bytes:
    # orjson.JSONEncodeError is a TypeError. Same separators and no ASCII
    # escaping, so both paths write the same text where both succeed.
    text = json.dumps(
        value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False
    )
    return text.encode()
