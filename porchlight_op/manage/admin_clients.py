"""Administration of clients: list, create, edit, rotate the secret, delete.

Form input goes through ClientSettings, so a client made here obeys the same
rules as one from the settings file or `porchlight-op client add`. Clients
listed in the settings file and the management area's own client are shown
read only, because a start of the server rewrites them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..log import WEB
from ..models import Client, User
from ..settings import DEFAULT_SCOPE, GRANT_TYPES, ClientSettings, SettingsError
from ..store import keys
from ..store.clients import (
    ClientConflict,
    ClientStore,
    add_new_client,
    client_from_settings,
    client_settings_of,
    new_client_secret,
)
from ..web.keys import ACCOUNTS, CONSENTS, REDIS, SETTINGS
from ..web.middlewares import page
from .admin import (
    ADMIN_PATH,
    PageError,
    admin_only,
    audit,
    confirm_page,
    confirmed,
    field,
    not_confirmed,
    render,
)

logger = logging.getLogger(WEB)

CLIENTS_PATH = ADMIN_PATH + "/clients"
# private_key_jwt needs a JWK Set, which these pages do not take.
FORM_AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "none",
)
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
NO_GRANT_TYPE = "Choose at least one grant type."
MANAGEMENT_ID_TAKEN = "This client id belongs to the management area's own client."
KEY_METHOD_FIXED = (
    "The method private_key_jwt cannot be switched to or from here."
    " Remove the client and add it again with `porchlight-op client add`."
)
DONE_MESSAGES = {"saved": "The client was saved."}


def setup_routes(router: web.UrlDispatcher) -> None:
    """Register the client administration pages.

    The client id travels in the query or the form, because it may contain
    characters such as '/' that a path segment cannot.
    """
    router.add_get(CLIENTS_PATH, clients_list)
    router.add_get(CLIENTS_PATH + "/new", client_new_page)
    router.add_post(CLIENTS_PATH + "/new", client_create)
    router.add_get(CLIENTS_PATH + "/show", client_page)
    router.add_post(CLIENTS_PATH + "/edit", client_edit)
    router.add_get(CLIENTS_PATH + "/rotate", client_rotate_page)
    router.add_post(CLIENTS_PATH + "/rotate", client_rotate)
    router.add_get(CLIENTS_PATH + "/delete", client_delete_page)
    router.add_post(CLIENTS_PATH + "/delete", client_delete)


# -- list --


@admin_only
async def clients_list(request: web.Request, admin: User) -> web.StreamResponse:
    """List every stored client with where it is managed."""
    clients = await _store(request).list()
    configured = await _configured_ids(request)
    rows = [(client, _source(request, client, configured)) for client in clients]
    return await render(request, "manage_admin_clients.html", {"rows": rows})


def _source(request: web.Request, client: Client, configured: set[str]) -> str:
    """Return who manages the client: management, config or admin."""
    if client.client_id == request.app[SETTINGS].management_client_id:
        return "management"
    if client.client_id in configured:
        return "config"
    return "admin"


async def _configured_ids(request: web.Request) -> set[str]:
    members = await request.app[REDIS].smembers(keys.configured_clients())
    ids = {item.decode() if isinstance(item, bytes) else item for item in members}
    return ids | set(request.app[SETTINGS].clients)


# -- create --


@admin_only
async def client_new_page(request: web.Request, admin: User) -> web.StreamResponse:
    """Show the form for a new client."""
    return await _render_new(request, None, None, 200)


@admin_only
async def client_create(request: web.Request, admin: User) -> web.StreamResponse:
    """Register a client; a generated secret is shown on the result page once."""
    form = await request.post()
    auth_method = field(form, "auth_method")
    grant_types = _grant_types(form)
    if not grant_types:
        return await _render_new(request, form, NO_GRANT_TYPE, 400)
    if field(form, "client_id") == request.app[SETTINGS].management_client_id:
        return await _render_new(request, form, MANAGEMENT_ID_TAKEN, 409)

    secret = None if auth_method in ("none", "private_key_jwt") else new_client_secret()
    try:
        spec = ClientSettings(
            client_id=field(form, "client_id"),
            redirect_uris=_lines(form, "redirect_uris"),
            auth_method=auth_method,
            secret=secret,
            scope=tuple(field(form, "scope").split()),
            name=field(form, "name"),
            post_logout_redirect_uris=_lines(form, "post_logout_redirect_uris"),
            grant_types=grant_types,
            first_party=_field_checked(form, "first_party"),
        )
    except SettingsError as error:
        return await _render_new(request, form, str(error), 400)

    record = client_from_settings(spec, int(time.time()))
    try:
        await add_new_client(_store(request), await _configured_ids(request), record)
    except ClientConflict as error:
        return await _render_new(request, form, str(error), 409)
    audit(request, admin, "client_created", client_id=record.client_id)
    return await _secret_page(request, record, "Client created", secret)


async def _render_new(
    request: web.Request, form: Any, error: str | None, status: int
) -> web.Response:
    if error is not None:
        logger.info("admin client form rejected: %s", error)
    values: dict[str, Any]
    if form is None:
        values = {"scope": " ".join(DEFAULT_SCOPE), "grant_types": DEFAULT_GRANT_TYPES}
    else:
        values = {
            "client_id": field(form, "client_id"),
            "name": field(form, "name"),
            "redirect_uris": field(form, "redirect_uris"),
            "post_logout_redirect_uris": field(form, "post_logout_redirect_uris"),
            "scope": field(form, "scope"),
            "auth_method": field(form, "auth_method"),
            "grant_types": _grant_types(form),
            "first_party": _field_checked(form, "first_party"),
        }
    context = {
        "values": values,
        "auth_methods": FORM_AUTH_METHODS,
        "all_grant_types": GRANT_TYPES,
        "error": error,
    }
    return await render(request, "manage_admin_client_new.html", context, status)


# -- show and edit --


@admin_only
async def client_page(request: web.Request, admin: User) -> web.StreamResponse:
    """Show one client and, unless it is read only, the form that edits it."""
    client = await _target(request, request.query.get("client_id", ""))
    done = DONE_MESSAGES.get(request.query.get("done", ""))
    return await _render_client(request, client, None, 200, done)


@admin_only
async def client_edit(request: web.Request, admin: User) -> web.StreamResponse:
    """Change redirect URIs, scope and authentication method of a client."""
    form = await request.post()
    client = await _editable(request, field(form, "client_id"))
    auth_method = field(form, "auth_method")
    switches = auth_method != client.auth_method
    if switches and "private_key_jwt" in (auth_method, client.auth_method):
        return await _render_client(request, client, KEY_METHOD_FIXED, 400)

    secret, generated = _secret_for(client, auth_method)
    try:
        spec = dataclasses.replace(
            client_settings_of(client),
            redirect_uris=_lines(form, "redirect_uris"),
            post_logout_redirect_uris=_lines(form, "post_logout_redirect_uris"),
            scope=tuple(field(form, "scope").split()),
            auth_method=auth_method,
            secret=secret,
            grant_types=_public_grants(client.grant_types, auth_method),
        )
    except SettingsError as error:
        return await _render_client(request, client, str(error), 400)

    record = client_from_settings(spec, client.created_at)
    await _store(request).put(record)
    audit(
        request,
        admin,
        "client_changed",
        client_id=client.client_id,
        auth_method=auth_method,
    )
    if generated is not None:
        return await _secret_page(request, record, "Client saved", generated)
    query = {"client_id": client.client_id, "done": "saved"}
    raise web.HTTPSeeOther(_show_url(query))


def _secret_for(client: Client, auth_method: str) -> tuple[str | None, str | None]:
    """Return the secret for the new method, and it again if it was generated now.

    A public client that becomes confidential gets its first secret. Other
    confidential clients keep theirs.
    """
    if auth_method in ("none", "private_key_jwt"):
        return None, None
    if client.secret is None:
        generated = new_client_secret()
        return generated, generated
    return client.secret, None


def _public_grants(grants: tuple[str, ...], auth_method: str) -> tuple[str, ...]:
    """Drop client_credentials when the client becomes public, which forbids it."""
    if auth_method != "none":
        return grants
    kept = tuple(grant for grant in grants if grant != "client_credentials")
    return kept or DEFAULT_GRANT_TYPES


async def _render_client(
    request: web.Request,
    client: Client,
    error: str | None,
    status: int,
    done: str | None = None,
) -> web.Response:
    if error is not None:
        logger.info("admin client form rejected: %s", error)
    source = _source(request, client, await _configured_ids(request))
    context = {
        "client": client,
        "source": source,
        "read_only": source != "admin",
        "auth_methods": FORM_AUTH_METHODS,
        "error": error,
        "done": done,
    }
    return await render(request, "manage_admin_client.html", context, status)


# -- rotate the secret --


@admin_only
async def client_rotate_page(request: web.Request, admin: User) -> web.StreamResponse:
    """Ask for confirmation before replacing a client's secret."""
    client = await _editable(request, request.query.get("client_id", ""))
    return await confirm_page(
        request,
        "Rotate secret",
        f"Replace the secret of {client.client_id}? The old secret stops working"
        " at once, so the client needs the new one.",
        CLIENTS_PATH + "/rotate",
        "Rotate secret",
        {"client_id": client.client_id},
    )


@admin_only
async def client_rotate(request: web.Request, admin: User) -> web.StreamResponse:
    """Give a confidential client a new generated secret and show it once."""
    form = await request.post()
    client = await _editable(request, field(form, "client_id"))
    if not confirmed(form):
        return not_confirmed(request)
    if client.secret is None:
        return page(
            request,
            400,
            "No secret",
            f"The client {client.client_id} uses {client.auth_method}"
            " and has no secret.",
        )
    secret = new_client_secret()
    record = dataclasses.replace(client, secret=secret)
    await _store(request).put(record)
    audit(request, admin, "client_secret_rotated", client_id=client.client_id)
    return await _secret_page(request, record, "Secret rotated", secret)


# -- delete --


@admin_only
async def client_delete_page(request: web.Request, admin: User) -> web.StreamResponse:
    """Ask for confirmation before deleting a client."""
    client = await _editable(request, request.query.get("client_id", ""))
    return await confirm_page(
        request,
        "Delete client",
        f"Delete the client {client.client_id}? Its users can no longer sign in"
        " through it.",
        CLIENTS_PATH + "/delete",
        "Delete client",
        {"client_id": client.client_id},
    )


@admin_only
async def client_delete(request: web.Request, admin: User) -> web.StreamResponse:
    """Delete a client after confirmation; read-only clients are refused."""
    form = await request.post()
    client = await _editable(request, field(form, "client_id"))
    if not confirmed(form):
        return not_confirmed(request)
    await _store(request).remove(client.client_id)
    await _forget_consents(request, client.client_id)
    audit(request, admin, "client_deleted", client_id=client.client_id)
    return page(
        request, 200, "Client deleted", f"The client {client.client_id} was deleted."
    )


async def _forget_consents(request: web.Request, client_id: str) -> None:
    """Delete every user's consent to the client.

    Otherwise a client registered later under the same id would skip the
    consent page for scopes granted to the deleted one.
    """
    consents = request.app[CONSENTS]
    for user in await request.app[ACCOUNTS].list():
        await consents.revoke(user.sub, client_id)


# -- helpers --


async def _secret_page(
    request: web.Request, client: Client, title: str, secret: str | None
) -> web.Response:
    if secret is None:
        message = (
            f"The client {client.client_id} is public: it has no secret and must"
            " use PKCE with S256."
        )
    else:
        message = (
            f"The secret of {client.client_id} is shown only now. Store it in the"
            " client's configuration; it cannot be shown again."
        )
    context = {
        "title": title,
        "message": message,
        "label": "Client secret",
        "value": secret,
        "back": _show_url({"client_id": client.client_id}),
    }
    return await render(request, "manage_admin_secret.html", context)


async def _target(request: web.Request, client_id: str) -> Client:
    client = await _store(request).get(client_id) if client_id else None
    if client is None:
        raise web.HTTPNotFound()
    return client


async def _editable(request: web.Request, client_id: str) -> Client:
    """Return a client these pages may change, or raise a 403 page."""
    client = await _target(request, client_id)
    source = _source(request, client, await _configured_ids(request))
    if source == "management":
        raise _read_only(
            "The management area's own client cannot be changed or deleted."
        )
    if source == "config":
        raise _read_only(
            "This client is defined in the settings file. Change it there."
        )
    return client


def _read_only(reason: str) -> PageError:
    return PageError(403, "Read only", reason)


def _lines(form: Any, name: str) -> tuple[str, ...]:
    return tuple(
        line.strip() for line in field(form, name).splitlines() if line.strip()
    )


def _grant_types(form: Any) -> tuple[str, ...]:
    chosen = [value for value in form.getall("grant_types", []) if value in GRANT_TYPES]
    return tuple(dict.fromkeys(chosen))


def _field_checked(form: Any, name: str) -> bool:
    return bool(form.get(name) == "yes")


def _show_url(query: dict[str, str]) -> str:
    return f"{CLIENTS_PATH}/show?{urlencode(query)}"


def _store(request: web.Request) -> ClientStore:
    return ClientStore(request.app[REDIS])
