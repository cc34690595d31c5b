"""What the HTTP edge knows of the request being served, for the layers below
it that record where an action came from (audit trail, per-address limits)."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class WebSession:
    """A request from the service's own web app (`graph/web_session.py`): its
    session travels in an HttpOnly cookie, which the response may set or clear."""

    secure: bool
    # The Set-Cookie value the response carries, if any.
    set_cookie: str | None = None


@dataclass
class RequestInfo:
    request_id: str
    client_ip: str
    user_agent: str
    operation: str | None = None
    # The name the document gives its operation, when the client sent none
    # (for the metrics' labels; the log keeps what the client sent).
    named_in_document: str | None = None
    # Which executor answered a GraphQL request: "compiled" or "standard".
    executor: str | None = None
    outcome: str = "ok"
    error_codes: list[str] = field(default_factory=list)
    # Audit actions written once per request at most (refusals in bulk), and
    # the write of each, which every later refusal waits for: the response
    # never leaves before its audit row is stored.
    audited_once: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    # Set for the web app's requests only, once their CSRF checks passed.
    web: WebSession | None = None


current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)


def client_ip() -> str:
    """The client's address, or "local" outside a request (CLI, tests of services)."""
    info = current_request.get()
    return info.client_ip if info is not None else "local"


def user_agent() -> str | None:
    info = current_request.get()
    return info.user_agent if info is not None else None
