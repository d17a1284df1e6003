"""Tests for argon2id password hashing."""

from __future__ import annotations

import threading

import argon2
import pytest

from porchlight_op.accounts.passwords import PasswordHasher
from porchlight_op.settings import Settings

# Small argon2 parameters keep each hash around a millisecond.
FAST = Settings(argon2_time_cost=1, argon2_memory_cost=64, argon2_parallelism=1)


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(FAST)


async def test_hash_is_argon2id_with_settings(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("correct horse")

    assert encoded.startswith("$argon2id$")
    assert "m=64,t=1,p=1" in encoded


async def test_hash_uses_random_salt(hasher: PasswordHasher) -> None:
    first = await hasher.hash("correct horse")
    second = await hasher.hash("correct horse")

    assert first != second


async def test_verify_accepts_right_password(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("correct horse")

    assert await hasher.verify(encoded, "correct horse") is True


async def test_verify_rejects_wrong_password(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("correct horse")

    assert await hasher.verify(encoded, "correct horsE") is False
    assert await hasher.verify(encoded, "") is False


async def test_verify_non_ascii_password(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("pässwörd ✓")

    assert await hasher.verify(encoded, "pässwörd ✓") is True
    assert await hasher.verify(encoded, "passwort ✓") is False


async def test_verify_malformed_hash_is_mismatch(hasher: PasswordHasher) -> None:
    assert await hasher.verify("not-a-hash", "correct horse") is False
    assert await hasher.verify("$argon2id$v=19$m=64,t=1,p=1$xx$yy", "x") is False


async def test_needs_rehash_false_for_own_parameters(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("correct horse")

    assert hasher.needs_rehash(encoded) is False


async def test_needs_rehash_true_for_other_parameters(hasher: PasswordHasher) -> None:
    stronger = PasswordHasher(Settings(argon2_time_cost=2, argon2_memory_cost=64))
    encoded = await hasher.hash("correct horse")

    assert stronger.needs_rehash(encoded) is True


def test_needs_rehash_true_for_malformed_hash(hasher: PasswordHasher) -> None:
    assert hasher.needs_rehash("not-a-hash") is True


async def test_verify_dummy_returns_false(hasher: PasswordHasher) -> None:
    assert await hasher.verify_dummy("correct horse") is False


async def test_verify_dummy_hashes_once(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = argon2.PasswordHasher.hash

    def counting_hash(self: argon2.PasswordHasher, password: str) -> str:
        calls.append(password)
        return original(self, password)

    monkeypatch.setattr(argon2.PasswordHasher, "hash", counting_hash)

    await hasher.verify_dummy("first")
    await hasher.verify_dummy("second")

    assert len(calls) == 1


async def test_hash_and_verify_run_off_event_loop(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = []
    original_hash = argon2.PasswordHasher.hash
    original_verify = argon2.PasswordHasher.verify

    def recording_hash(self: argon2.PasswordHasher, password: str) -> str:
        threads.append(threading.get_ident())
        return original_hash(self, password)

    def recording_verify(
        self: argon2.PasswordHasher, encoded: str, password: str
    ) -> bool:
        threads.append(threading.get_ident())
        return original_verify(self, encoded, password)

    monkeypatch.setattr(argon2.PasswordHasher, "hash", recording_hash)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", recording_verify)

    encoded = await hasher.hash("correct horse")
    await hasher.verify(encoded, "correct horse")

    assert len(threads) == 2
    assert threading.get_ident() not in threads
