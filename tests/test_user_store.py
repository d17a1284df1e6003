"""Tests for UserStore against a real Redis."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import redis.asyncio as aioredis

from porchlight_op.accounts import proquint
from porchlight_op.models import User
from porchlight_op.store import keys
from porchlight_op.store.users import UsernameTaken, UserStore


def make_user(
    username: str = "Alice", sub: str = "lusab-babad", **changes: object
) -> User:
    user = User(
        sub=sub,
        username=username,
        password_hash="$argon2id$placeholder",
        claims={"name": "Alice Liddell", "email": "alice@example.org"},
        created_at=1_700_000_000,
        updated_at=1_700_000_000,
    )
    return dataclasses.replace(user, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store(redis: aioredis.Redis) -> UserStore:
    return UserStore(redis)


async def test_create_then_get(store: UserStore) -> None:
    user = make_user()

    created = await store.create(user)

    assert created == user
    assert await store.get(user.sub) == user


async def test_create_writes_username_and_index(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await store.create(make_user())

    assert await redis.get("pl:username:alice") == b"lusab-babad"
    assert await redis.smembers("pl:users") == {b"lusab-babad"}
    assert await redis.exists("pl:{lusab-babad}:user") == 1


async def test_create_makes_username_permanent(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await store.create(make_user())

    # -1: the reservation TTL was cleared once the record existed.
    assert await redis.ttl(keys.username("alice")) == -1


async def test_create_rejects_taken_username(store: UserStore) -> None:
    await store.create(make_user("Alice"))

    with pytest.raises(UsernameTaken, match="ALICE"):
        await store.create(make_user("  ALICE ", sub="babab-babab"))


async def test_failed_create_leaves_first_user(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await store.create(make_user("Alice"))

    with pytest.raises(UsernameTaken):
        await store.create(make_user("alice", sub="babab-babab"))

    assert await store.get("babab-babab") is None
    assert await redis.get(keys.username("alice")) == b"lusab-babad"


async def test_create_picks_new_sub_on_collision(store: UserStore) -> None:
    first = await store.create(make_user("Alice"))

    second = await store.create(make_user("Bob", sub=first.sub))

    assert second.sub != first.sub
    assert proquint.is_valid(second.sub)
    assert await store.get(first.sub) == first
    found = await store.find_by_username("bob")
    assert found == second


async def test_create_gives_up_after_bounded_collisions(
    store: UserStore, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.create(make_user("Alice"))
    monkeypatch.setattr(proquint, "new_id", lambda: "lusab-babad")

    with pytest.raises(RuntimeError, match="unused sub"):
        await store.create(make_user("Bob"))

    # The reservation is released so the name stays free.
    assert await redis.exists(keys.username("bob")) == 0
    assert await redis.smembers(keys.users_index()) == {b"lusab-babad"}


async def test_get_missing_returns_none(store: UserStore) -> None:
    assert await store.get("babab-babab") is None


async def test_find_by_username_normalizes(store: UserStore) -> None:
    user = await store.create(make_user("Jürgen"))

    assert await store.find_by_username("  JÜRGEN ") == user
    assert await store.find_by_username("Ju\u0308rgen") == user


async def test_find_by_username_unknown(store: UserStore) -> None:
    assert await store.find_by_username("nobody") is None


async def test_find_by_username_rejects_invalid(store: UserStore) -> None:
    with pytest.raises(ValueError, match="invalid username"):
        await store.find_by_username("a\x00b")


async def test_find_ignores_unfinished_reservation(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await redis.set(keys.username("carol"), "babab-babab")

    assert await store.find_by_username("carol") is None


async def test_find_ignores_reservation_for_other_name(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await store.create(make_user("Alice"))
    await redis.set(keys.username("mallory"), "lusab-babad")

    assert await store.find_by_username("mallory") is None


async def test_list_sorted_by_username(store: UserStore) -> None:
    await store.create(make_user("carol", sub="babab-babab"))
    await store.create(make_user("Alice", sub="lusab-babad"))
    await store.create(make_user("bob", sub="zuzuz-zuzuz"))

    names = [user.username for user in await store.list()]

    assert names == ["Alice", "bob", "carol"]


async def test_list_skips_missing_records(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await store.create(make_user("Alice"))
    await redis.sadd(keys.users_index(), "babab-babab")

    assert [user.sub for user in await store.list()] == ["lusab-babad"]


async def test_list_empty(store: UserStore) -> None:
    assert await store.list() == []


async def test_remove_deletes_every_key(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await store.create(make_user("Alice"))
    await redis.set(keys.claims("lusab-babad"), "{}")

    assert await store.remove("lusab-babad") is True

    assert await redis.exists(keys.user("lusab-babad")) == 0
    assert await redis.exists(keys.username("alice")) == 0
    assert await redis.exists(keys.claims("lusab-babad")) == 0
    assert await redis.smembers(keys.users_index()) == set()


async def test_remove_frees_username(store: UserStore) -> None:
    await store.create(make_user("Alice"))
    await store.remove("lusab-babad")

    again = await store.create(make_user("alice", sub="babab-babab"))

    assert await store.find_by_username("Alice") == again


async def test_remove_missing_returns_false(store: UserStore) -> None:
    assert await store.remove("babab-babab") is False


async def test_remove_keeps_username_of_other_user(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await store.create(make_user("Alice"))
    await redis.set(keys.username("alice"), "zuzuz-zuzuz")

    await store.remove("lusab-babad")

    assert await redis.get(keys.username("alice")) == b"zuzuz-zuzuz"


async def test_update_claims_replaces_and_drops_cache(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await store.create(make_user())
    await redis.set(keys.claims("lusab-babad"), "{}")

    updated = await store.update_claims("lusab-babad", {"nickname": "Al"})

    assert updated is not None
    assert dict(updated.claims) == {"nickname": "Al"}
    assert updated.updated_at > 1_700_000_000
    assert await store.get("lusab-babad") == updated
    assert await redis.exists(keys.claims("lusab-babad")) == 0


async def test_update_claims_rejects_unknown_claim(store: UserStore) -> None:
    await store.create(make_user())

    with pytest.raises(ValueError, match="favourite_colour"):
        await store.update_claims("lusab-babad", {"favourite_colour": "blue"})


async def test_set_password_hash_keeps_updated_at(
    store: UserStore, redis: aioredis.Redis
) -> None:
    await store.create(make_user())
    await redis.set(keys.claims("lusab-babad"), "{}")

    updated = await store.set_password_hash("lusab-babad", "$argon2id$other")

    assert updated is not None
    assert updated.password_hash == "$argon2id$other"
    assert updated.updated_at == 1_700_000_000
    assert await redis.exists(keys.claims("lusab-babad")) == 0


async def test_set_disabled(store: UserStore) -> None:
    await store.create(make_user())

    updated = await store.set_disabled("lusab-babad", True)

    assert updated is not None
    assert updated.disabled is True
    stored = await store.get("lusab-babad")
    assert stored is not None
    assert stored.disabled is True


async def test_update_missing_user_returns_none(store: UserStore) -> None:
    assert await store.set_password_hash("babab-babab", None) is None
    assert await store.update_claims("babab-babab", {}) is None


async def test_concurrent_updates_all_apply(store: UserStore) -> None:
    await store.create(make_user())

    await asyncio.gather(
        store.set_disabled("lusab-babad", True),
        store.set_password_hash("lusab-babad", "$argon2id$new"),
        store.update_claims("lusab-babad", {"nickname": "Al"}),
    )

    stored = await store.get("lusab-babad")
    assert stored is not None
    assert stored.disabled is True
    assert stored.password_hash == "$argon2id$new"
    assert dict(stored.claims) == {"nickname": "Al"}
