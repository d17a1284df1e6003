"""Logger names, one per area, so operators can tune verbosity per concern."""

import logging
from contextvars import ContextVar

APP = "porchlight_op"
EVENTS = "porchlight_op.events"
OIDC = "porchlight_op.oidc"
STORE = "porchlight_op.store"
WEB = "porchlight_op.web"
ACCOUNTS = "porchlight_op.accounts"

events = logging.getLogger(EVENTS)

# The id of the HTTP request being served, set by the web layer.
request_id: ContextVar[str] = ContextVar("request_id", default="-")


def security_event(name: str, **fields: object) -> None:
    """Log one INFO line for a security event as `event=<name> key=value ...`.

    Callers pass ids only (request id, client id, user id); never a secret.
    """
    fields.setdefault("request_id", request_id.get())
    parts = " ".join(f"{key}={value}" for key, value in sorted(fields.items()))
    events.info("event=%s %s", name, parts)
