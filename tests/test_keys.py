"""Tests for Redis key names."""

from __future__ import annotations

import pytest

from porchlight_op.store import keys


def test_user_keys_share_hash_tag() -> None:
    sub = "lusab-babad"

    assert keys.user(sub) == "pl:{lusab-babad}:user"
    assert keys.claims(sub) == "pl:{lusab-babad}:claims"
    assert keys.session_prefix(sub) == "pl:{lusab-babad}:s:"


def test_global_keys() -> None:
    assert keys.username("jürgen") == "pl:username:jürgen"
    assert keys.users_index() == "pl:users"
    assert keys.client("webapp") == "pl:client:webapp"
    assert keys.clients_index() == "pl:clients"
    assert keys.secret("code-key") == "pl:secret:code-key"
    assert keys.pending("abc") == "pl:pending:abc"
    assert keys.web_session_prefix() == "pl:websession:"


@pytest.mark.parametrize("sub", ["", "a}b", "{x}"])
def test_user_keys_reject_bad_sub(sub: str) -> None:
    with pytest.raises(ValueError, match="invalid sub"):
        keys.user(sub)
