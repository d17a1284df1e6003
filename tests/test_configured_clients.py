"""Clients from the settings file reach Redis, and leave it with the file."""

from __future__ import annotations

from support import REDIRECT_URI, free_port

from porchlight_op.app import create_app
from porchlight_op.models import Client
from porchlight_op.settings import ClientSettings, Settings
from porchlight_op.store.clients import ClientStore


def _settings(port: int, client_ids: list[str]):
    clients = {
        client_id: ClientSettings(
            client_id=client_id, redirect_uris=(REDIRECT_URI,), secret="s3cret"
        )
        for client_id in client_ids
    }
    return Settings(issuer=f"http://127.0.0.1:{port}", port=port, clients=clients)


async def test_configured_client_is_stored_then_removed(redis, aiohttp_server):
    port = free_port()
    await aiohttp_server(create_app(_settings(port, ["a", "b"]), redis), port=port)
    stored_first = {client.client_id for client in await ClientStore(redis).list()}

    second = free_port()
    await aiohttp_server(create_app(_settings(second, ["a"]), redis), port=second)
    stored_then = {client.client_id for client in await ClientStore(redis).list()}

    # The management area's own client is stored at every start as well.
    assert stored_first == {"a", "b", "porchlight-manage"}
    assert stored_then == {"a", "porchlight-manage"}


async def test_cli_client_survives_configured_client_cleanup(redis, aiohttp_server):
    await ClientStore(redis).put(
        Client(
            client_id="from-cli",
            redirect_uris=(REDIRECT_URI,),
            auth_method="client_secret_basic",
            secret="s3cret",
            scope=("openid",),
        )
    )
    port = free_port()
    await aiohttp_server(create_app(_settings(port, []), redis), port=port)

    assert await ClientStore(redis).get("from-cli") is not None
