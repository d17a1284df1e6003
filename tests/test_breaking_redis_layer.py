"""Hostile cases for the shared Redis connection and the compact node format."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import test_races
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis_process import RedisProcess
from support import REDIRECT_URI
from test_races import (
    RACERS,
    _fresh_tokens,
    _new_code,
    _outcomes,
    _race,
)

from porchlight_op.settings import load_settings
from porchlight_op.store import node_codec
from porchlight_op.store.connection import make_redis
from porchlight_op.store.multiplex import MultiplexedRedis
from porchlight_op.store.sessions import (
    Changes,
    SessionStore,
    Write,
    grant_key,
    read_nodes,
    user_node_key,
)

IN_FLIGHT = 50


def _client(url: str, timeout: float = 5.0) -> MultiplexedRedis:
    settings = load_settings(
        environ={},
        overrides={"redis_socket_timeout": timeout, "redis_connect_timeout": timeout},
    )
    client = make_redis(url, settings)
    assert isinstance(client, MultiplexedRedis)
    return client


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    directory = Path(tempfile.mkdtemp(prefix="pl-", dir="/tmp"))
    server = RedisProcess(directory)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def shared(
    redis_server: str, redis: aioredis.Redis
) -> AsyncIterator[MultiplexedRedis]:
    client = _client(redis_server)
    yield client
    await client.aclose()


async def _fill(redis: aioredis.Redis, count: int) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(count):
            pipe.set(f"k{i}", f"value-{i}")
        await pipe.execute()


async def _get_own(client: MultiplexedRedis, i: int) -> object:
    """GET key i; return True when the reply is its own value, else the error."""
    try:
        value = await client.get(f"k{i}")
    except RedisError as err:
        return err
    assert value == f"value-{i}".encode(), f"k{i} got {value!r}"
    return True


# -- replies reach the caller that sent the command --


async def test_cancelled_callers_leave_order_intact(shared, redis) -> None:
    await _fill(redis, 400)
    rng = random.Random(7)
    tasks = [asyncio.create_task(_get_own(shared, i)) for i in range(400)]
    for _ in range(3):
        await asyncio.sleep(0)
        for task in rng.sample(tasks, 40):
            task.cancel()

    results = await asyncio.gather(*tasks, return_exceptions=True)

    answered = [r for r in results if not isinstance(r, asyncio.CancelledError)]
    assert answered
    assert all(result is True for result in answered)
    assert await _get_own(shared, 399) is True


async def test_cancelled_pipeline_leaves_order_intact(shared, redis) -> None:
    await _fill(redis, 100)

    async def batch(start: int) -> list[bytes]:
        async with shared.pipeline(transaction=False) as pipe:
            for i in range(start, start + 10):
                pipe.get(f"k{i}")
            return await pipe.execute()

    tasks = [asyncio.create_task(batch(10 * n)) for n in range(10)]
    await asyncio.sleep(0)
    tasks[3].cancel()
    tasks[6].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    for n, result in enumerate(results):
        if n in (3, 6):
            continue
        expected = [f"value-{i}".encode() for i in range(10 * n, 10 * n + 10)]
        assert result == expected


@pytest.mark.parametrize("bad", [None, True, {"a": 1}, bytearray(b"x")])
async def test_unpackable_argument_leaves_no_waiter(shared, redis, bad) -> None:
    await _fill(redis, 3)
    with pytest.raises(DataError):
        await shared.set("k0", bad)
    with pytest.raises(DataError):
        async with shared.pipeline(transaction=False) as pipe:
            pipe.get("k1")
            pipe.set("k0", bad)
            await pipe.execute()

    assert await _get_own(shared, 1) is True
    assert await _get_own(shared, 2) is True


async def test_large_values_interleave_with_small(shared, redis) -> None:
    await _fill(redis, 60)
    big = {f"big{i}": os.urandom(1 << 20) for i in range(4)}
    await redis.mset(big)

    async def get_big(name: str) -> None:
        assert await shared.get(name) == big[name]

    jobs = [get_big(name) for name in big] + [_get_own(shared, i) for i in range(60)]
    rng = random.Random(3)
    rng.shuffle(jobs)
    results = await asyncio.gather(*jobs)

    assert all(result in (None, True) for result in results)


async def test_set_of_large_values_keeps_order(shared) -> None:
    values = {f"v{i}": os.urandom((1 << 20) if i % 5 == 0 else 10) for i in range(30)}
    await asyncio.gather(*(shared.set(k, v) for k, v in values.items()))

    read = await asyncio.gather(*(shared.get(k) for k in values))

    assert read == list(values.values())


# -- a connection that breaks or stalls --


async def test_client_kill_fails_or_answers_each_caller(shared, redis) -> None:
    await _fill(redis, IN_FLIGHT)
    await shared.ping()
    tasks = [asyncio.create_task(_get_own(shared, i)) for i in range(IN_FLIGHT)]
    await asyncio.sleep(0)
    await redis.client_kill_filter(_type="normal", skipme=True)
    results = await asyncio.gather(*tasks)

    for result in results:
        assert result is True or isinstance(result, RedisConnectionError)
    assert await _get_own(shared, 0) is True


async def test_restart_with_requests_in_flight(own_redis) -> None:
    client = _client(own_redis.url)
    plain = aioredis.from_url(own_redis.url)
    await _fill(plain, IN_FLIGHT)
    await plain.aclose()
    await client.ping()

    tasks = [asyncio.create_task(_get_own(client, i)) for i in range(IN_FLIGHT)]
    await asyncio.sleep(0)
    own_redis.kill()
    results = await asyncio.gather(*tasks)
    own_redis.start()
    # A serving worker reads the old server's end of file before its next
    # request. The test gives the event loop that chance.
    await asyncio.sleep(0.1)

    for result in results:
        assert result is True or isinstance(result, RedisConnectionError)
    assert await _get_own(client, 1) is True
    await client.aclose()


async def test_timeout_fails_queued_then_recovers(redis_server, redis) -> None:
    await _fill(redis, IN_FLIGHT)
    client = _client(redis_server, timeout=0.3)
    await client.ping()
    sleeper = aioredis.from_url(redis_server)
    stall = asyncio.create_task(sleeper.execute_command("DEBUG", "SLEEP", "0.8"))
    await asyncio.sleep(0.05)

    results = await asyncio.gather(*(_get_own(client, i) for i in range(IN_FLIGHT)))
    await stall
    await sleeper.aclose()

    for result in results:
        assert isinstance(result, RedisTimeoutError)
    fresh = await asyncio.gather(*(_get_own(client, i) for i in range(IN_FLIGHT)))
    assert all(result is True for result in fresh)
    await client.aclose()


async def test_busy_event_loop_is_no_redis_timeout(redis_server, redis) -> None:
    await _fill(redis, 1)
    client = _client(redis_server, timeout=0.5)
    await client.ping()

    async def busy_handler() -> None:
        # A handler that blocks the event loop longer than the socket timeout,
        # after the GET was sent but before it was written.
        time.sleep(0.8)

    results = await asyncio.gather(_get_own(client, 0), busy_handler())
    await client.aclose()

    assert results[0] is True


async def test_aclose_fails_requests_in_flight(shared, redis) -> None:
    await _fill(redis, IN_FLIGHT)
    await shared.ping()
    tasks = [asyncio.create_task(_get_own(shared, i)) for i in range(IN_FLIGHT)]
    await asyncio.sleep(0)
    await shared.aclose()

    results = await asyncio.wait_for(asyncio.gather(*tasks), 5)

    for result in results:
        assert result is True or isinstance(result, RedisConnectionError)
    assert await _get_own(shared, 2) is True


async def test_scripts_reload_after_flush_concurrently(shared, redis) -> None:
    script = shared.register_script("return redis.call('INCR', KEYS[1])")
    await script(keys=["counter"])
    await redis.script_flush()

    results = await asyncio.gather(*(script(keys=["counter"]) for _ in range(40)))

    assert sorted(results) == list(range(2, 42))


@pytest.mark.parametrize("command", ["UNSUBSCRIBE", "PUNSUBSCRIBE"])
async def test_push_reply_command_spares_shared_connection(
    redis_server, redis, command: str
) -> None:
    await _fill(redis, 20)
    client = _client(redis_server, timeout=1)
    await client.ping()

    # In RESP3 these reply with a push message, which is no command's reply.
    # redis-py's own connection then times out, so only the others count.
    outcome = asyncio.create_task(client.execute_command(command))
    results = await asyncio.gather(*(_get_own(client, i) for i in range(20)))
    await asyncio.wait_for(asyncio.gather(outcome, return_exceptions=True), 3)
    later = await asyncio.gather(*(_get_own(client, i) for i in range(20)))
    await client.aclose()

    assert all(result is True for result in results)
    assert all(result is True for result in later)


# -- connecting --


async def test_cancel_during_connect_spares_other_callers(shared, redis) -> None:
    await _fill(redis, 20)
    tasks = [asyncio.create_task(_get_own(shared, i)) for i in range(20)]
    await asyncio.sleep(0)
    tasks[0].cancel()

    results = await asyncio.gather(*tasks[1:], return_exceptions=True)

    assert all(result is True for result in results), results


def test_two_event_loops_in_turn(redis_server) -> None:
    client = _client(redis_server)

    async def round_trip(value: str) -> bytes | None:
        await client.set("loop-key", value)
        return await client.get("loop-key")

    assert asyncio.run(round_trip("first")) == b"first"
    assert asyncio.run(round_trip("second")) == b"second"
    asyncio.run(client.aclose())


async def test_tls_url_sends_no_password_in_clear() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = bytearray()

    def accept_one() -> None:
        listener.settimeout(5)
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        connection.settimeout(1)
        try:
            while chunk := connection.recv(4096):
                received.extend(chunk)
        except OSError:
            pass
        connection.close()

    thread = threading.Thread(target=accept_one)
    thread.start()
    client = _client(f"rediss://:tls-secret@127.0.0.1:{port}/0", timeout=1)
    with pytest.raises(RedisError):
        await client.ping()
    await client.aclose()
    thread.join(5)
    listener.close()

    assert b"tls-secret" not in received


# -- compact session nodes --

UNFRIENDLY_NODES = {
    "empty object": b"{}",
    "non-ASCII claims": json.dumps(
        {"name": "Zoë Ångström 山田太郎 🙂", "extra": "ß" * 5000}, ensure_ascii=False
    ).encode(),
    "escaped binary": json.dumps({"blob": os.urandom(3000).decode("latin-1")}).encode(),
    "random hex, 1 MB": json.dumps({"claims": os.urandom(1 << 19).hex()}).encode(),
    "pipe and digits": b'{"v":"12|34|","d":"1|{"}',
}


@pytest.mark.parametrize("name", UNFRIENDLY_NODES)
def test_codec_round_trips_unfriendly_node(name: str) -> None:
    document = UNFRIENDLY_NODES[name]

    stored = node_codec.encode(document)

    assert len(stored) <= len(document)
    assert node_codec.decode(stored) == document


@pytest.mark.parametrize("name", UNFRIENDLY_NODES)
async def test_store_round_trips_unfriendly_grant(shared, name: str) -> None:
    store = SessionStore(shared)
    document = UNFRIENDLY_NODES[name]

    first = await store.commit_grant("u1", "rp:x", "g1", 0, document, 600)
    second = await store.commit_grant("u1", "rp:x", "g1", 1, document + b" ", 600)
    stale = await store.commit_grant("u1", "rp:x", "g1", 1, document, 600)
    node = await store.fetch_grant("u1", "rp:x", "g1")

    assert first
    assert second
    assert not stale
    assert node.version == 2
    assert node.data == document + b" "


async def test_old_hash_parent_keeps_longer_ttl(shared, redis) -> None:
    store = SessionStore(shared)
    user_key = user_node_key("u2")
    await redis.hset(user_key, mapping={"v": 4, "d": b'{"old": true}'})
    await redis.expire(user_key, 5000)

    conflict = await store.commit(
        Changes(writes=[Write(user_key, 4, b'{"new": true}')], parent_ttl=100)
    )
    (node,) = await read_nodes(shared, [user_key])

    assert conflict is None
    assert node.version == 5
    assert node.data == b'{"new": true}'
    assert await redis.ttl(user_key) > 4000


async def test_old_and_new_nodes_commit_together(shared, redis) -> None:
    store = SessionStore(shared)
    old_key = grant_key("u3", "rp", "g-old")
    new_key = grant_key("u3", "rp", "g-new")
    await redis.hset(old_key, mapping={"v": 7, "d": b'{"a": 1}'})
    await store.commit_grant("u3", "rp", "g-new", 0, b'{"b": 2}', 600)

    wrong = await store.commit(
        Changes(writes=[Write(old_key, 6, b"{}", 600), Write(new_key, 1, b"{}", 600)])
    )
    right = await store.commit(
        Changes(writes=[Write(old_key, 7, b"{}", 600), Write(new_key, 1, b"{}", 600)])
    )
    nodes = await read_nodes(shared, [old_key, new_key])

    assert wrong == old_key
    assert right is None
    assert [node.version for node in nodes] == [8, 2]
    assert 0 < await redis.ttl(old_key) <= 600


# -- old hash nodes raced across processes --

OLD_LAYOUT_ROUNDS = 10
# The fixture of three OP processes on one Redis, under this module's name.
race_cluster = test_races.cluster


async def _grants_to_old_layout(redis: aioredis.Redis) -> None:
    """Rewrite every grant as the hash of plain JSON written before strings."""
    found = [key.decode() async for key in redis.scan_iter(match="pl:{*}:s:g:*")]
    grant_keys = [key for key in found if await redis.type(key) == b"string"]
    for key, node in zip(grant_keys, await read_nodes(redis, grant_keys), strict=True):
        ttl = await redis.ttl(key)
        await redis.delete(key)
        await redis.hset(key, mapping={"v": node.version, "d": node.data or b""})
        await redis.expire(key, ttl)


@pytest.mark.slow
async def test_old_layout_code_redeemed_once_under_race(race_cluster, redis) -> None:
    servers, rp, browser, _ = race_cluster

    for _ in range(OLD_LAYOUT_ROUNDS):
        code = await _new_code(rp, browser)
        await _grants_to_old_layout(redis)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": rp.verifier or "",
        }
        counts = _outcomes(await _race(servers, "/token", form, "rp-a"))

        assert counts == Counter({"ok": 1, "invalid_grant": RACERS - 1}), counts


@pytest.mark.slow
async def test_old_layout_refresh_single_use_under_race(race_cluster, redis) -> None:
    servers, rp, browser, _ = race_cluster

    for _ in range(OLD_LAYOUT_ROUNDS):
        tokens = await _fresh_tokens(servers, rp, browser)
        await _grants_to_old_layout(redis)
        form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        counts = _outcomes(await _race(servers, "/token", form, "rp-a"))

        assert counts["ok"] <= 1, counts
        assert set(counts) <= {"ok", "invalid_grant"}, counts
