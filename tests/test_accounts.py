"""Tests for username normalization and the Accounts service."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from porchlight_op.accounts import passwords, proquint
from porchlight_op.accounts.service import (
    Accounts,
    UsernameTaken,
    UserNotFound,
    normalize_username,
)
from porchlight_op.settings import Settings
from porchlight_op.store import keys

# Small argon2 parameters keep each hash around a millisecond.
FAST = Settings(argon2_time_cost=1, argon2_memory_cost=64, argon2_parallelism=1)
STRONGER = Settings(argon2_time_cost=2, argon2_memory_cost=64, argon2_parallelism=1)
PASSWORD = "correct horse battery"


@pytest.fixture
def changed() -> list[str]:
    return []


@pytest.fixture
def accounts(redis: aioredis.Redis, changed: list[str]) -> Accounts:
    async def record_change(sub: str) -> None:
        changed.append(sub)

    return Accounts(redis, FAST, on_change=record_change)


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the hash passed to every argon2 verification."""
    calls: list[str] = []
    original = passwords.PasswordHasher._verify

    def counting_verify(
        self: passwords.PasswordHasher, password_hash: str, password: str
    ) -> bool:
        calls.append(password_hash)
        return original(self, password_hash, password)

    monkeypatch.setattr(passwords.PasswordHasher, "_verify", counting_verify)
    return calls


# normalize_username


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("  Alice ", "alice"),
        ("ALICE", "alice"),
        ("Jürgen", "jürgen"),
        ("Ju\u0308rgen", "jürgen"),  # decomposed ü composes under NFC
        ("JOSÉ", "josé"),
        ("Straße", "strasse"),
        ("\ufb01sh", "fish"),  # the "ﬁ" ligature case folds to "fi"
        ("Alice Liddell", "alice liddell"),
        ("alice@example.org", "alice@example.org"),
        ("a" * 64, "a" * 64),
    ],
)
def test_normalize_username(given: str, expected: str) -> None:
    assert normalize_username(given) == expected


def test_normalize_keeps_fullwidth_distinct() -> None:
    # NFC is not NFKC, so fullwidth letters are not mapped to ASCII.
    assert normalize_username("\uff21lice") != normalize_username("alice")


def test_normalize_keeps_dotted_capital_i_distinct() -> None:
    # Full case folding maps "İ" to "i" plus a combining dot, not to "i".
    assert normalize_username("\u0130nci") != normalize_username("inci")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a\x00b", "U\\+0000"),
        ("a\nb", "U\\+000A"),
        ("a\x7fb", "U\\+007F"),
        ("a\u202eb", "U\\+202E"),  # right-to-left override
        ("a\u200bb", "U\\+200B"),  # zero-width space
        ("a\u2028b", "U\\+2028"),  # line separator
        ("a\u00a0b", "U\\+00A0"),  # no-break space
        ("a\tb", "U\\+0009"),
        ("a" * 65, "longer than 64"),
        ("ß" * 33, "66 after normalization"),
        ("a" * 5000, "maximum is 64"),
    ],
)
def test_normalize_rejects(given: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_username(given)


# create_user


async def test_create_user(accounts: Accounts) -> None:
    user = await accounts.create_user("Alice", PASSWORD, {"name": "Alice Liddell"})

    assert proquint.is_valid(user.sub)
    assert user.username == "Alice"
    assert dict(user.claims) == {"name": "Alice Liddell"}
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert user.created_at == user.updated_at
    assert await accounts.get(user.sub) == user


async def test_create_user_stores_nfc_display_name(accounts: Accounts) -> None:
    user = await accounts.create_user("  Ju\u0308rgen ", PASSWORD)

    assert user.username == "Jürgen"


async def test_create_user_without_password(accounts: Accounts) -> None:
    user = await accounts.create_user("alice", None)

    assert user.password_hash is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("José", "JOSÉ"),
        ("José", "Jose\u0301"),
        ("Straße", "STRASSE"),
        ("fish", "\ufb01sh"),
        ("alice", " Alice "),
    ],
)
async def test_create_user_clashes(accounts: Accounts, first: str, second: str) -> None:
    await accounts.create_user(first, PASSWORD)

    with pytest.raises(UsernameTaken):
        await accounts.create_user(second, PASSWORD)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice", "\uff41lice"),  # fullwidth a
        ("jose", "josé"),
        ("inci", "\u0130nci"),
    ],
)
async def test_create_user_distinct_names(
    accounts: Accounts, first: str, second: str
) -> None:
    first_user = await accounts.create_user(first, PASSWORD)
    second_user = await accounts.create_user(second, PASSWORD)

    assert first_user.sub != second_user.sub


async def test_create_user_rejects_proquint_name(accounts: Accounts) -> None:
    with pytest.raises(ValueError, match="form of a user id"):
        await accounts.create_user("LUSAB-BABAD", PASSWORD)


@pytest.mark.parametrize(
    ("password", "message"), [("short", "at least 8"), ("x" * 1025, "at most 1024")]
)
async def test_create_user_rejects_password(
    accounts: Accounts, redis: aioredis.Redis, password: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await accounts.create_user("alice", password)

    assert await redis.dbsize() == 0


async def test_create_user_rejects_claim(
    accounts: Accounts, redis: aioredis.Redis
) -> None:
    with pytest.raises(ValueError, match="shoe_size"):
        await accounts.create_user("alice", PASSWORD, {"shoe_size": "44"})

    assert await redis.dbsize() == 0


# authenticate


async def test_authenticate_success(accounts: Accounts) -> None:
    user = await accounts.create_user("Jürgen", PASSWORD)

    assert await accounts.authenticate("JÜRGEN", PASSWORD) == user


async def test_authenticate_wrong_password(
    accounts: Accounts, verify_calls: list[str]
) -> None:
    await accounts.create_user("alice", PASSWORD)

    assert await accounts.authenticate("alice", PASSWORD + "!") is None
    assert len(verify_calls) == 1


async def test_authenticate_unknown_user(
    accounts: Accounts, verify_calls: list[str]
) -> None:
    assert await accounts.authenticate("nobody", PASSWORD) is None
    assert len(verify_calls) == 1


async def test_authenticate_invalid_username(
    accounts: Accounts, verify_calls: list[str]
) -> None:
    assert await accounts.authenticate("a\x00b", PASSWORD) is None
    assert len(verify_calls) == 1


async def test_authenticate_user_without_password(
    accounts: Accounts, verify_calls: list[str]
) -> None:
    await accounts.create_user("alice", None)

    assert await accounts.authenticate("alice", "") is None
    assert await accounts.authenticate("alice", PASSWORD) is None
    assert len(verify_calls) == 2


async def test_authenticate_disabled_user(
    accounts: Accounts, verify_calls: list[str]
) -> None:
    user = await accounts.create_user("alice", PASSWORD)
    await accounts.set_disabled(user.sub, True)

    assert await accounts.authenticate("alice", PASSWORD) is None
    assert len(verify_calls) == 1


async def test_authenticate_after_reenable(accounts: Accounts) -> None:
    user = await accounts.create_user("alice", PASSWORD)
    await accounts.set_disabled(user.sub, True)
    await accounts.set_disabled(user.sub, False)

    assert await accounts.authenticate("alice", PASSWORD) is not None


async def test_authenticate_overlong_password(
    accounts: Accounts, verify_calls: list[str]
) -> None:
    await accounts.create_user("alice", PASSWORD)

    assert await accounts.authenticate("alice", PASSWORD + "x" * 2000) is None
    assert len(verify_calls) == 1


async def test_authenticate_rehashes_old_hash(
    redis: aioredis.Redis, accounts: Accounts
) -> None:
    old = await accounts.create_user("alice", PASSWORD)
    await redis.set(keys.claims(old.sub), "{}")
    changed: list[str] = []

    async def record_change(sub: str) -> None:
        changed.append(sub)

    stronger = Accounts(redis, STRONGER, on_change=record_change)
    user = await stronger.authenticate("alice", PASSWORD)

    assert user is not None
    assert user.password_hash != old.password_hash
    assert user.password_hash is not None
    assert ",t=2," in user.password_hash
    assert await stronger.get(old.sub) == user
    assert await redis.exists(keys.claims(old.sub)) == 0
    assert changed == [old.sub]
    assert await stronger.authenticate("alice", PASSWORD) == user


async def test_authenticate_keeps_current_hash(
    accounts: Accounts, changed: list[str]
) -> None:
    created = await accounts.create_user("alice", PASSWORD)

    user = await accounts.authenticate("alice", PASSWORD)

    assert user is not None
    assert user.password_hash == created.password_hash
    assert changed == []


# changes


async def test_set_password(
    accounts: Accounts, redis: aioredis.Redis, changed: list[str]
) -> None:
    user = await accounts.create_user("alice", PASSWORD)
    await redis.set(keys.claims(user.sub), "{}")

    await accounts.set_password(user.sub, "new password 2")

    assert await accounts.authenticate("alice", PASSWORD) is None
    assert await accounts.authenticate("alice", "new password 2") is not None
    assert await redis.exists(keys.claims(user.sub)) == 0
    assert changed == [user.sub]


async def test_set_password_none_disables_password_login(accounts: Accounts) -> None:
    user = await accounts.create_user("alice", PASSWORD)

    updated = await accounts.set_password(user.sub, None)

    assert updated.password_hash is None
    assert await accounts.authenticate("alice", PASSWORD) is None


async def test_set_password_validates(accounts: Accounts) -> None:
    user = await accounts.create_user("alice", PASSWORD)

    with pytest.raises(ValueError, match="at least 8"):
        await accounts.set_password(user.sub, "short")


async def test_set_password_unknown_user(accounts: Accounts) -> None:
    with pytest.raises(UserNotFound, match="babab-babab"):
        await accounts.set_password("babab-babab", PASSWORD)


async def test_update_claims(
    accounts: Accounts, redis: aioredis.Redis, changed: list[str]
) -> None:
    user = await accounts.create_user("alice", PASSWORD, {"name": "Alice"})
    await redis.set(keys.claims(user.sub), "{}")

    updated = await accounts.update_claims(user.sub, {"email": "a@example.org"})

    assert dict(updated.claims) == {"email": "a@example.org"}
    assert await redis.exists(keys.claims(user.sub)) == 0
    assert changed == [user.sub]


async def test_update_claims_unknown_user(accounts: Accounts) -> None:
    with pytest.raises(UserNotFound):
        await accounts.update_claims("babab-babab", {})


async def test_remove(
    accounts: Accounts, redis: aioredis.Redis, changed: list[str]
) -> None:
    user = await accounts.create_user("alice", PASSWORD)
    await redis.set(keys.claims(user.sub), "{}")

    assert await accounts.remove(user.sub) is True

    assert await accounts.get(user.sub) is None
    assert await accounts.find("alice") is None
    assert await redis.exists(keys.claims(user.sub)) == 0
    assert changed == [user.sub]
    assert await accounts.remove(user.sub) is False
    assert changed == [user.sub]


# lookups


async def test_find_by_sub_and_username(accounts: Accounts) -> None:
    user = await accounts.create_user("José", PASSWORD)

    assert await accounts.find(user.sub) == user
    assert await accounts.find("JOSÉ") == user


async def test_find_unknown(accounts: Accounts) -> None:
    assert await accounts.find("babab-babab") is None
    assert await accounts.find("nobody") is None
    assert await accounts.find("a\x00b") is None


async def test_get_rejects_non_proquint(accounts: Accounts) -> None:
    assert await accounts.get("{evil}") is None


async def test_list(accounts: Accounts) -> None:
    await accounts.create_user("bob", PASSWORD)
    await accounts.create_user("Alice", PASSWORD)

    assert [user.username for user in await accounts.list()] == ["Alice", "bob"]
