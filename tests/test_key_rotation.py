"""Signing key rotation: publish first, sign later, keep verifying old tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import httpx
from conftest import OP, TEST_ARGON2
from support import Browser, free_port

from porchlight_op import cli
from porchlight_op.app import create_app
from porchlight_op.settings import load_settings
from porchlight_op.store.keyring import (
    CURRENT,
    EXPIRED,
    NEXT,
    RETIRED,
    KeyringStore,
    key_states,
    new_signing_keys,
    retention_for,
)

POLL = 0.1
WAIT_LIMIT = 10.0


async def _op(redis, aiohttp_server, signing_jwks: bytes) -> OP:
    await redis.set("pl:secret:signing-jwks", signing_jwks)
    port = free_port()
    settings = load_settings(
        environ={},
        overrides={
            "issuer": f"http://127.0.0.1:{port}",
            "port": port,
            "key_poll_interval": POLL,
            **TEST_ARGON2,
        },
    )
    server = await aiohttp_server(create_app(settings, redis), port=port)
    return OP(str(server.make_url("")).rstrip("/"), settings, redis)


async def _cli(argv: list[str]) -> int:
    # The command line runs its own event loop, so it needs a thread of its own.
    return await asyncio.to_thread(cli.main, argv)


def _kid(token: str) -> str:
    header = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    return str(json.loads(decoded)["kid"])


async def _published(url: str) -> set[str]:
    async with httpx.AsyncClient() as http:
        reply = await http.get(url + "/jwks")
    return {key["kid"] for key in reply.json()["keys"]}


async def _wait_published(url: str, kids: set[str]) -> set[str]:
    deadline = time.monotonic() + WAIT_LIMIT
    published = await _published(url)
    while not kids <= published and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
        published = await _published(url)
    return published


async def _tokens(op: OP) -> dict[str, object]:
    client = await op.add_client(f"rp-{time.monotonic_ns()}")
    rp = op.rp(client)
    await rp.discover()
    browser = Browser.open(op.url)
    try:
        reply = await browser.authorize(
            rp.authorization_url(), "alice", "correct horse battery"
        )
    finally:
        await browser.close()
    token = await rp.redeem(reply.headers["Location"])
    await rp.validate_id_token(token["id_token"])
    token["rp"] = rp
    return token


async def _rotate(op: OP, delay: int) -> dict[str, str]:
    store = KeyringStore(op.redis)
    retention = retention_for(
        op.settings.access_token_lifetime, op.settings.id_token_lifetime
    )
    added = await store.rotate(delay, retention)
    return {key.alg: key.kid for key in added}


async def test_migrated_keys_sign_id_tokens(redis, aiohttp_server, signing_jwks):
    op = await _op(redis, aiohttp_server, signing_jwks)
    await op.add_user()
    original = {key["kid"] for key in json.loads(signing_jwks)["keys"]}

    token = await _tokens(op)

    assert await _published(op.url) == original
    assert _kid(str(token["id_token"])) in original


async def test_rotation_without_delay_signs_with_new_kid(
    redis, aiohttp_server, signing_jwks
):
    op = await _op(redis, aiohttp_server, signing_jwks)
    await op.add_user()
    before = await _tokens(op)

    new = await _rotate(op, delay=0)
    published = await _wait_published(op.url, set(new.values()))
    after = await _tokens(op)

    assert set(new.values()) <= published
    assert _kid(str(before["id_token"])) in published
    assert _kid(str(after["id_token"])) == new["RS256"]
    assert _kid(str(after["access_token"])) == new["ES256"]


async def test_token_from_before_rotation_works_at_userinfo(
    redis, aiohttp_server, signing_jwks
):
    op = await _op(redis, aiohttp_server, signing_jwks)
    await op.add_user()
    before = await _tokens(op)

    new = await _rotate(op, delay=0)
    await _wait_published(op.url, set(new.values()))
    await _tokens(op)  # proves the new keys sign by now
    reply = await before["rp"].userinfo(before["access_token"])  # type: ignore[attr-defined]

    assert _kid(str(before["access_token"])) != new["ES256"]
    assert reply.status_code == 200, reply.text
    assert reply.json()["email"] == "alice@example.org"


async def test_delayed_rotation_publishes_before_signing(
    redis, aiohttp_server, signing_jwks
):
    op = await _op(redis, aiohttp_server, signing_jwks)
    await op.add_user()
    delay = 5
    rotated_at = time.time()

    new = await _rotate(op, delay=delay)
    published = await _wait_published(op.url, set(new.values()))
    early = await _tokens(op)
    finished_early = time.time()
    await asyncio.sleep(max(0.0, rotated_at + delay + 3 * POLL - time.time()))
    late = await _tokens(op)

    assert set(new.values()) <= published
    assert finished_early < rotated_at + delay, "the first flow outlasted the delay"
    assert _kid(str(early["id_token"])) != new["RS256"]
    assert _kid(str(late["id_token"])) == new["RS256"]


async def test_concurrent_first_starts_agree_on_keyring(redis):
    store = KeyringStore(redis)
    first = new_signing_keys(0, 0)
    second = new_signing_keys(0, 0)

    results = await asyncio.gather(store.initialize(first), store.initialize(second))
    _, stored = await store.load()

    assert sorted(results) == [False, True]
    winner = first if results[0] else second
    assert {key.kid for key in stored} == {key.kid for key in winner}


def test_key_states_follow_the_clock():
    old = new_signing_keys(0, 0)
    new = new_signing_keys(100, 200)
    retention = 50

    def states(now: float) -> dict[str, str]:
        return {s.key.kid: s.state for s in key_states(old + new, now, retention)}

    assert set(states(150).values()) == {CURRENT, NEXT}
    assert {states(150)[key.kid] for key in new} == {NEXT}
    assert {states(200)[key.kid] for key in new} == {CURRENT}
    assert {states(200)[key.kid] for key in old} == {RETIRED}
    assert {states(250)[key.kid] for key in old} == {EXPIRED}


async def test_keys_list_shows_states(
    redis, redis_server, monkeypatch, capsys, tmp_path: Path
):
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", redis_server)
    monkeypatch.setenv("PORCHLIGHT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)
    await KeyringStore(redis).initialize(new_signing_keys(0, 0))

    assert await _cli(["keys", "rotate", "--delay", "3600", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert await _cli(["keys", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert await _cli(["keys", "list"]) == 0
    text = capsys.readouterr().out

    states = {row["kid"]: row["state"] for row in rows}
    assert sorted(states.values()) == [CURRENT, CURRENT, NEXT, NEXT]
    assert {states[row["kid"]] for row in added} == {NEXT}
    assert {row["alg"] for row in rows} == {"RS256", "ES256"}
    assert all(row["kid"] in text for row in rows)


async def test_second_process_follows_rotation(
    redis, redis_server, start_server, monkeypatch, capsys, tmp_path: Path
):
    server = start_server(redis_server, env={"PORCHLIGHT_KEY_POLL_INTERVAL": "0.2"})
    before = await _published(server.url)
    monkeypatch.setenv("PORCHLIGHT_REDIS_URL", redis_server)
    monkeypatch.setenv("PORCHLIGHT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PORCHLIGHT_CONFIG", raising=False)

    assert await _cli(["keys", "rotate", "--delay", "0", "--json"]) == 0
    added = {row["kid"] for row in json.loads(capsys.readouterr().out)}
    published = await _wait_published(server.url, added)

    assert added <= published
    assert before <= published
