"""A request that keeps losing the compare-and-set gets a clean 503."""

from __future__ import annotations

import httpx
from support import REDIRECT_URI, basic_auth, query_of

from porchlight_op.store.sessions import Changes, SessionStore
from porchlight_op.web.keys import PROVIDER


class ContendedStore(SessionStore):
    """Bumps each key's version in Redis just before committing to it.

    That is what another worker writing the same grant in between does, so
    every commit of this store meets a real version conflict in Redis.
    """

    async def commit(self, changes: Changes) -> str | None:
        for write in changes.writes:
            await self._redis.hincrby(write.key, "v", 1)
        return await super().commit(changes)


async def test_endless_conflict_answers_503(op, browser):
    client = await op.add_client("rp")
    await op.add_user()
    rp = op.rp(client)
    await rp.discover()
    reply = await browser.authorize(
        rp.authorization_url(), "alice", "correct horse battery"
    )
    code = query_of(reply.headers["Location"])["code"]
    assert op.app is not None
    provider = op.app[PROVIDER]
    provider._runner._store = ContendedStore(op.redis)

    async with httpx.AsyncClient() as http:
        token = await http.post(
            op.url + "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": rp.verifier or "",
            },
            headers={"Authorization": basic_auth("rp", client.secret or "")},
        )

    assert token.status_code == 503
    assert token.json()["error"] == "temporarily_unavailable"
    assert "Traceback" not in token.text
