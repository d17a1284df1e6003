"""One shared Redis connection per worker for the commands that do not block.

redis-py's asyncio client takes a connection from its pool for every command
or pipeline, wraps the call in retry and timeout objects and gives the
connection back. With 32 requests in flight, a GET cost 46 µs of client CPU
that way on the development machine, against 12 µs here. Redis runs the
commands of one connection in the order they arrive, so requests can share
one connection: each command is written at once, and the replies go to their
callers in the same order. ioredis, which the reference OP's adapter in
benchmarks/ uses, works the same way.

`MultiplexedRedis` is a `redis.asyncio.Redis` whose plain commands and
non-transactional pipelines take that shared connection. Commands that block,
hold a transaction or change connection state (WATCH, MULTI, BLPOP, SUBSCRIBE,
SELECT and the like) still take a connection from the pool, so every redis-py
method keeps working. Replies go through redis-py's own reply parser settings
and response callbacks, so callers get the same values as before.

A command that fails because the connection broke is not sent again: it may
have run. A connection found closed before anything was written is reopened
once. A reply that takes longer than the socket timeout closes the connection
and fails every command waiting on it with a TimeoutError.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import logging
import math
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio
from redis._parsers.base import BaseParser
from redis.asyncio.client import Pipeline
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    DataError,
    InvalidResponse,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from porchlight_op import log

logger = logging.getLogger(log.STORE)

# Commands that must have a connection to themselves: they block, belong to a
# transaction, change what later commands on the connection mean, or reply
# with RESP3 push messages, which the shared connection skips as no reply.
EXCLUSIVE = frozenset(
    {
        "AUTH",
        "BLMOVE",
        "BLMPOP",
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BZMPOP",
        "BZPOPMAX",
        "BZPOPMIN",
        "CLIENT",
        "DISCARD",
        "EXEC",
        "HELLO",
        "MONITOR",
        "MULTI",
        "PSUBSCRIBE",
        "PSYNC",
        "PUNSUBSCRIBE",
        "QUIT",
        "REPLCONF",
        "RESET",
        "SELECT",
        "SSUBSCRIBE",
        "SUBSCRIBE",
        "SUNSUBSCRIBE",
        "SYNC",
        "UNSUBSCRIBE",
        "UNWATCH",
        "WAIT",
        "WAITAOF",
        "WATCH",
        "XREAD",
        "XREADGROUP",
    }
)


class SharedConnection(asyncio.Protocol):
    """A Redis connection on which many callers wait for replies in order."""

    def __init__(self, timeout: float | None) -> None:
        self._timeout = timeout
        self._reader = hiredis.Reader(
            protocolError=InvalidResponse, replyError=BaseParser.parse_error
        )
        # Each caller's future, with the time its command was written. The
        # commands of one write share that one-item list, math.inf until then.
        self._waiting: collections.deque[tuple[asyncio.Future[Any], list[float]]] = (
            collections.deque()
        )
        self._written_at: list[float] = [math.inf]
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._unwritten: list[bytes] = []
        self.closed = False

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        try:
            reader.feed(data)
            while True:
                reply = reader.gets()
                if reply is False:
                    return
                if isinstance(reply, hiredis.PushNotification):
                    # Nothing here subscribes, and a push is no command's reply.
                    continue
                if not self._waiting:
                    raise InvalidResponse("a reply came for no command")
                future, _ = self._waiting.popleft()
                if not future.done():
                    future.set_result(reply)
        except InvalidResponse as err:
            logger.warning("invalid reply on the shared Redis connection: %s", err)
            self.abort(err)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            logger.warning(
                "Redis closed the shared connection (%d commands waiting): %s",
                len(self._waiting),
                exc or "end of file",
            )
        self.abort(RedisConnectionError("Redis closed the connection"))

    # -- sending --

    def send(self, packed: bytes, count: int) -> list[asyncio.Future[Any]]:
        """Write packed commands and return one future per expected reply."""
        if self.closed or self._transport is None:
            raise RedisConnectionError("the shared Redis connection is closed")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        # Commands sent during one pass of the event loop leave in one write,
        # which saves system calls on both ends when many requests are in flight.
        if not self._unwritten:
            loop.call_soon(self._write)
            self._written_at = [math.inf]
        self._unwritten.append(packed)
        written_at = self._written_at
        self._waiting.extend((future, written_at) for future in futures)
        if self._timeout is not None and self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout, self._check_overdue)
        return futures

    def _write(self) -> None:
        chunks, self._unwritten = self._unwritten, []
        # The timeout counts from here: a handler that held the event loop
        # between send() and this write did not make Redis slow.
        self._written_at[0] = asyncio.get_running_loop().time()
        if self._transport is not None and not self.closed:
            self._transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _check_overdue(self) -> None:
        self._watchdog = None
        if not self._waiting or self._timeout is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        written_at = self._waiting[0][1][0]
        if written_at == math.inf:
            # The oldest command waits for its write, which is due in this pass.
            written_at = now
        overdue_at = written_at + self._timeout
        if now >= overdue_at:
            logger.warning(
                "Redis reply timed out after %.1f s; closing the shared connection"
                " (%d commands waiting)",
                self._timeout,
                len(self._waiting),
            )
            self.abort(RedisTimeoutError("Redis reply timed out"))
            return
        self._watchdog = loop.call_at(overdue_at, self._check_overdue)

    def abort(self, error: Exception) -> None:
        """Close the connection and fail every caller still waiting."""
        self.closed = True
        self._unwritten.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)
                # Marked as retrieved: the caller of a cancelled request never
                # awaits it, and asyncio would log the error at collection.
                future.exception()
        if self._transport is not None:
            self._transport.abort()


class Lane:
    """Opens the shared connection when needed and sends commands over it."""

    def __init__(self, kwargs: dict[str, Any], timeout: float | None) -> None:
        self._kwargs = kwargs
        self._timeout = timeout
        self._connection: SharedConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # of _connection
        self._opening: asyncio.Task[SharedConnection] | None = None

    async def call(self, args: Sequence[Any]) -> Any:
        """Send one command and return its reply (an error reply is returned)."""
        (future,) = await self._send([args])
        return await future

    async def call_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send commands in one write and return their replies in order."""
        futures = await self._send(commands)
        try:
            return [await future for future in futures]
        except BaseException:
            for future in futures:
                # A broken connection fails them all, and one raise is enough.
                if future.done() and not future.cancelled():
                    future.exception()
            raise

    def close(self) -> None:
        """Close the shared connection, so waiting callers get a ConnectionError."""
        if self._loop is not None and self._loop.is_closed():
            # Closed from another event loop than the one that opened it.
            self._drop_foreign()
            return
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            connection.abort(RedisConnectionError("the Redis client was closed"))

    async def _send(
        self, commands: Sequence[Sequence[Any]]
    ) -> list[asyncio.Future[Any]]:
        packed = b"".join(_pack(args) for args in commands)
        connection = self._connection
        if (
            connection is None
            or connection.closed
            or self._loop is not asyncio.get_running_loop()
        ):
            connection = await self._open()
        return connection.send(packed, len(commands))

    async def _open(self) -> SharedConnection:
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            # A connection of another event loop cannot be used here.
            self._drop_foreign()
        # Callers that arrive while the connection opens wait for that one. The
        # connection opens in a task of its own, so a caller that is cancelled
        # (a client that went away) stops waiting without failing the others.
        opening = self._opening
        if opening is None or opening.get_loop() is not loop:
            opening = loop.create_task(self._open_for(loop))
            opening.add_done_callback(_retrieve_exception)
            self._opening = opening
        return await asyncio.shield(opening)

    async def _open_for(self, loop: asyncio.AbstractEventLoop) -> SharedConnection:
        try:
            connection = await self._connect()
        finally:
            self._opening = None
        self.close()
        self._connection, self._loop = connection, loop
        return connection

    def _drop_foreign(self) -> None:
        # The old transport cannot be closed outside its event loop, so the
        # garbage collector closes its socket (with a ResourceWarning).
        self._connection = self._loop = self._opening = None

    async def _connect(self) -> SharedConnection:
        loop = asyncio.get_running_loop()
        kwargs = self._kwargs
        connect_timeout = kwargs.get("socket_connect_timeout") or self._timeout

        def factory() -> SharedConnection:
            return SharedConnection(self._timeout)

        try:
            async with asyncio.timeout(connect_timeout):
                if kwargs.get("path"):
                    _, connection = await loop.create_unix_connection(
                        factory, kwargs["path"]
                    )
                else:
                    _, connection = await loop.create_connection(
                        factory,
                        kwargs.get("host", "localhost"),
                        kwargs.get("port", 6379),
                    )
                await self._handshake(connection)
        except (OSError, TimeoutError) as err:
            raise RedisConnectionError(f"cannot connect to Redis: {err}") from err
        return connection

    async def _handshake(self, connection: SharedConnection) -> None:
        hello: list[Any] = ["HELLO", 3]
        password = self._kwargs.get("password")
        if password is not None:
            hello += ["AUTH", self._kwargs.get("username") or "default", password]
        commands: list[list[Any]] = [hello]
        if self._kwargs.get("db"):
            commands.append(["SELECT", self._kwargs["db"]])
        packed = b"".join(_pack(args) for args in commands)
        for future in connection.send(packed, len(commands)):
            reply = await future
            if isinstance(reply, Exception):
                connection.abort(reply)
                raise reply


class MultiplexedPipeline(Pipeline):
    """A pipeline whose non-transactional batches go over the shared connection."""

    lane: Lane | None = None

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if (
            self.lane is None
            or self.is_transaction
            or self.explicit_transaction
            or self.watching
            or self.scripts
        ):
            return await super().execute(raise_on_error)
        stack = self.command_stack
        if not stack:
            return []
        try:
            replies = await self.lane.call_many([args for args, _ in stack])
        finally:
            await self.reset()  # type: ignore[no-untyped-call]
        if raise_on_error:
            self.raise_first_error(stack, replies)
        results = []
        for reply, (args, options) in zip(replies, stack, strict=True):
            if not isinstance(reply, Exception):
                reply = await _parsed(self.response_callbacks, args[0], reply, options)
            results.append(reply)
        return results


class MultiplexedRedis(redis.asyncio.Redis):
    """redis-py's asyncio client, with plain commands on one shared connection."""

    def __init__(
        self,
        *,
        connection_pool: redis.asyncio.ConnectionPool,
        timeout: float | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(connection_pool=connection_pool, **kwargs)
        self._lane: Lane | None = None
        if _lane_can_connect(connection_pool):
            self._lane = Lane(dict(connection_pool.connection_kwargs), timeout)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name = args[0]
        if (
            self._lane is None
            or _is_exclusive(name)
            or NEVER_DECODE in options
            or self.single_connection_client
        ):
            return await super().execute_command(  # type: ignore[no-untyped-call]
                *args, **options
            )
        reply = await self._lane.call(args)
        if isinstance(reply, Exception):
            if EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            raise reply
        return await _parsed(self.response_callbacks, name, reply, options)

    def pipeline(
        self, transaction: bool = True, shard_hint: str | None = None
    ) -> Pipeline:
        pipe = MultiplexedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.lane = self._lane
        return pipe

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._lane is not None:
            self._lane.close()
        await super().aclose(close_connection_pool)


def _lane_can_connect(pool: redis.asyncio.ConnectionPool) -> bool:
    """Tell whether the shared connection can open what the pool's connections open.

    It speaks plain TCP or a unix socket with a password from the URL. TLS
    (rediss://) and credential providers stay with the pool, else the password
    would go out in clear text or not at all.
    """
    plain = (redis.asyncio.Connection, redis.asyncio.UnixDomainSocketConnection)
    return (
        pool.connection_class in plain
        and pool.connection_kwargs.get("credential_provider") is None
    )


def _retrieve_exception(task: asyncio.Task[SharedConnection]) -> None:
    # Every caller may have stopped waiting; the failure then goes unread.
    if not task.cancelled():
        task.exception()


async def _parsed(callbacks: Any, name: Any, reply: Any, options: Any) -> Any:
    """Apply redis-py's response callback for the command, as its client does."""
    options.pop(EMPTY_RESPONSE, None)
    options.pop("keys", None)
    callback = callbacks.get(name)
    if callback is None:
        return reply
    value = callback(reply, **options)
    return await value if inspect.isawaitable(value) else value


@functools.lru_cache(maxsize=256)
def _is_exclusive(name: str | bytes) -> bool:
    # Cached, because every command is checked and redis-py uses a few dozen names.
    word = name.decode() if isinstance(name, bytes) else str(name)
    return bool(word) and word.split(maxsplit=1)[0].upper() in EXCLUSIVE


def _pack(args: Sequence[Any]) -> bytes:
    name = args[0]
    if isinstance(name, str) and " " in name:
        # redis-py names some commands with their subcommand, e.g. "SCRIPT LOAD".
        args = (*name.split(), *args[1:])
    try:
        packed: bytes = hiredis.pack_command(tuple(args))
    except TypeError as err:
        raise DataError(f"cannot send {args[0]!r} to Redis: {err}") from err
    return packed
