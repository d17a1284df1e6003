"""A user's browser logins and client grants: list them and revoke them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..settings import Settings
from ..store.clients import ClientStore
from ..store.connection import RedisClient
from ..store.user_logins import LoginEntry, UserLogins
from ..store.user_revocation import Revoked, UserRevocation


@dataclass(frozen=True)
class ClientAccess:
    """A user's access at one client: the scopes of live grants and of consent."""

    client_id: str
    name: str
    granted_scopes: tuple[str, ...]
    consented_scopes: tuple[str, ...]
    granted_at: int | None  # issue time of the newest live grant, epoch seconds
    revocable: bool


class UserSessions:
    """Lists and ends a user's logins; lists and revokes their client grants."""

    def __init__(self, client: RedisClient, settings: Settings) -> None:
        self.logins = UserLogins(
            client, settings.session_max_age, settings.session_idle_timeout
        )
        self.revocation = UserRevocation(client, self.logins)
        self._clients = ClientStore(client)
        self._management_client_id = settings.management_client_id

    async def list_logins(self, sub: str) -> list[LoginEntry]:
        """Return the user's live browser logins, newest first."""
        return await self.logins.entries(sub)

    async def list_clients(self, sub: str) -> list[ClientAccess]:
        """Return the clients holding a live grant or a consent of the user."""
        consents = await self.revocation.consents(sub)
        client_ids = set(consents) | set(await self.revocation.client_ids(sub))
        accesses = []
        for client_id in sorted(client_ids):
            documents = await self.revocation.grant_documents(sub, client_id)
            live, scopes, granted_at = _live_grants(documents)
            consented = consents.get(client_id, set())
            if not live and not consented:
                continue
            client = await self._clients.get(client_id)
            accesses.append(
                ClientAccess(
                    client_id=client_id,
                    name=(client.name if client is not None else "") or client_id,
                    granted_scopes=tuple(sorted(scopes)),
                    consented_scopes=tuple(sorted(consented)),
                    granted_at=granted_at,
                    revocable=self.revocable(client_id),
                )
            )
        return accesses

    def revocable(self, client_id: str) -> bool:
        """Tell whether the sessions page offers to revoke the client.

        The management area's own client is not offered: its grants serve only
        the sign-in to these pages, so revoking them would change nothing that
        the user could see. Ending the session is the way to sign out of it.
        """
        return client_id != self._management_client_id

    async def end_login(self, sub: str, sid: str) -> Revoked | None:
        """End one login of the user; None when the user has no such login."""
        return await self.revocation.end_login(sub, sid)

    async def revoke_client(self, sub: str, client_id: str) -> Revoked:
        """Delete the user's grants at the client and the consent to it."""
        return await self.revocation.revoke_client(sub, client_id)

    async def revoke_everything(self, sub: str) -> Revoked:
        """End every login and delete every grant and consent of the user."""
        return await self.revocation.revoke_everything(sub)


def _live_grants(documents: list[bytes]) -> tuple[int, set[str], int | None]:
    """Count the live grants; return it, their scopes and the newest issue time."""
    live = 0
    scopes: set[str] = set()
    newest: int | None = None
    for document in documents:
        try:
            grant = json.loads(document)
        except ValueError:
            continue
        if not isinstance(grant, dict) or grant.get("revoked"):
            continue
        live += 1
        scopes.update(str(scope) for scope in grant.get("scope") or ())
        issued_at = grant.get("issued_at")
        if isinstance(issued_at, int) and (newest is None or issued_at > newest):
            newest = issued_at
    return live, scopes, newest
