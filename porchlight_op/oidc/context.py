"""Per-request data that idpyoidc's synchronous hooks read.

The bridge fills these before it calls idpyoidc and resets them afterwards, all
without an `await` in between, so one event loop serves many requests safely.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# Client id that porchlight authenticated before the call, or None.
authenticated_client: ContextVar[str | None] = ContextVar(
    "authenticated_client", default=None
)

# Claims of the users this request may touch, keyed by user id.
prefetched_claims: ContextVar[dict[str, dict[str, Any]]] = ContextVar(
    "prefetched_claims"
)
