"""The HTTP edge, as plain ASGI middleware: client address, request log line,
security headers, body size and content type, the time budget, and the last
word on failures: whatever goes wrong below, the caller gets a JSON error with
the edge's headers and request id, never a bare 500."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

from portal import metrics
from portal.db import is_unavailable
from portal.lifecycle import Shutdown
from portal.request_context import RequestInfo, current_request
from portal.settings import Settings
from portal.webapp import shows_data_images

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("portal.request")
errors = logging.getLogger("portal.errors")

# How long a client should wait before trying again after a 503.
RETRY_AFTER_SECONDS = 2
UNAVAILABLE_MESSAGE = "The service is briefly unavailable; try again in a moment."


def client_ip(scope: Scope, settings: Settings) -> str:
    """The socket's peer; X-Forwarded-For only counts when that peer is a
    trusted proxy, and then the nearest address that is not one."""
    peer = (scope.get("client") or ("0.0.0.0", 0))[0]  # noqa: S104 - not a bind address
    return _canonical(_forwarded_for(scope, settings, str(peer)))


@lru_cache(maxsize=4096)
def _canonical(address: str) -> str:
    """One spelling per address, without an IPv6 zone ("fe80::1%eth0")."""
    parsed = _parse(address.split("%", 1)[0])
    return str(parsed) if parsed is not None else address[:45]


def _forwarded_for(scope: Scope, settings: Settings, peer: str) -> str:
    if not settings.trusted_proxies or not _trusted(peer, settings):
        return peer
    # Several X-Forwarded-For lines read as one list, in order.
    forwarded = ",".join(
        value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name == b"x-forwarded-for"
    )
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if not _trusted(hop, settings):
            return hop if _parse(hop.split("%", 1)[0]) else peer
    return peer


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


def _trusted(address: str, settings: Settings) -> bool:
    parsed = _parse(address)
    return parsed is not None and any(parsed in net for net in settings.trusted_proxies)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


# Files the service serves as they are, under /static (GraphiQL's assets).
STATIC_DIRECTORY = Path(__file__).parent / "static"


# The web app's pages (portal/web/): their scripts, styles and images come
# from the service alone, nothing inline, and they talk to /graphql only.
WEB_APP_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# The same for the pages that show the two-step QR code, which the service
# draws as an SVG `data:` URI (beginMfaEnrollment.qrCode) for an <img>: an
# image so loaded runs no script and fetches nothing, and only these pages
# allow it, so no other page can be made to show a data: image.
WEB_APP_POLICY_WITH_DATA_IMAGES = WEB_APP_POLICY.replace("img-src 'self';", "img-src 'self' data:;")
# Paths of the API and GraphiQL; every other path is the web app's.
API_PATHS = ("/graphql", "/health", "/static/")


@lru_cache(maxsize=8)
def _security_headers(
    settings: Settings,
    html: bool,
    static: bool = False,
    web_app: bool = False,
    data_images: bool = False,
) -> tuple[tuple[bytes, bytes], ...]:
    if web_app:
        csp = WEB_APP_POLICY_WITH_DATA_IMAGES if data_images else WEB_APP_POLICY
    elif html and not settings.is_production:
        # GraphiQL: its scripts and styles come from the service itself
        # (portal/static/graphiql). Its editor sets styles inline.
        csp = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    else:
        csp = "default-src 'none'; frame-ancestors 'none'"
    return (
        (b"x-content-type-options", b"nosniff"),
        # Static files hold nothing private: kept, and checked again by ETag.
        (b"cache-control", b"no-cache" if static else b"no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", csp.encode()),
    )


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send_json(send, status, json.dumps(body).encode(), headers)


async def send_json(
    send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A whole JSON response, its body written already."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def error_body(message: str, code: str) -> dict[str, Any]:
    """A GraphQL-shaped response holding one top-level error."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


RETRY_LATER = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]


class BodyTooLarge(Exception):
    pass


class Edge:
    """Wraps the application; one instance per app."""

    def __init__(self, app: ASGIApp, settings: Settings, shutdown: Shutdown) -> None:
        self.app = app
        self.settings = settings
        self.shutdown = shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = RequestInfo(
            # A correlation id, not a secret: drawn without a system call.
            request_id=f"{random.getrandbits(64):016x}",
            client_ip=client_ip(scope, self.settings),
            user_agent=_header(scope, b"user-agent")[:200],
        )
        scope.setdefault("state", {})["request_info"] = info
        token = current_request.set(info)
        started = time.perf_counter()
        status = 500
        response_started = False
        html = "text/html" in _header(scope, b"accept")
        path = scope["path"]
        web_app = not path.startswith(API_PATHS)
        static = path.startswith(("/static/", "/web/"))
        data_images = web_app and shows_data_images(path)

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers += _security_headers(self.settings, html, static, web_app, data_images)
                headers.append((b"x-request-id", info.request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self._guarded(scope, receive, send_with_headers, lambda: response_started)
        except Exception as problem:  # the last word: nothing below may answer a bare 500
            if response_started:
                raise
            await self._failed(send_with_headers, info, problem)
        finally:
            current_request.reset(token)
            self._log(scope, info, status, time.perf_counter() - started)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, started: Callable[[], bool]
    ) -> None:
        if self.shutdown.requested and not scope["path"].startswith("/health"):
            # On a connection kept open from before the signal: go elsewhere.
            await _send_json(
                send,
                503,
                error_body(
                    "The service is restarting; try again in a moment.", "SERVICE_UNAVAILABLE"
                ),
                [*RETRY_LATER, (b"connection", b"close")],
            )
            return
        problem = self._refuse(scope)
        if problem is not None:
            status, message, code = problem
            await _send_json(send, status, error_body(message, code))
            return
        limit = self.settings.max_body_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        try:
            async with asyncio.timeout(self.settings.request_timeout_seconds):
                await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            if not started():
                await _send_json(
                    send, 413, error_body("The request body is too large.", "BAD_USER_INPUT")
                )
        except TimeoutError:
            if not started():
                await _send_json(
                    send,
                    503,
                    error_body("The request took too long and was stopped.", "TIMEOUT"),
                    RETRY_LATER,
                )

    async def _failed(self, send: Send, info: RequestInfo, problem: Exception) -> None:
        if is_unavailable(problem):
            # Said once by portal.db when the database goes away, not per request.
            code, status, message, headers = (
                "SERVICE_UNAVAILABLE",
                503,
                UNAVAILABLE_MESSAGE,
                RETRY_LATER,
            )
        else:
            # The type and the stack, never the text: it could quote patient data.
            stack = "".join(traceback.format_tb(problem.__traceback__))
            errors.error("unexpected %s\n%s", type(problem).__name__, stack.rstrip())
            code, status, message, headers = (
                "INTERNAL_SERVER_ERROR",
                500,
                "Something went wrong on our side.",
                [],
            )
        info.outcome = "errors"
        info.error_codes = [code]
        await _send_json(send, status, error_body(message, code), headers)

    def _refuse(self, scope: Scope) -> tuple[int, str, str] | None:
        length = _header(scope, b"content-length")
        if length.isdigit() and int(length) > self.settings.max_body_bytes:
            return 413, "The request body is too large.", "BAD_USER_INPUT"
        if scope["method"] == "POST" and scope["path"].rstrip("/") == "/graphql":
            content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
            if content_type != "application/json":
                return 415, "Send the request as application/json.", "BAD_USER_INPUT"
        return None

    def _log(self, scope: Scope, info: RequestInfo, status: int, seconds: float) -> None:
        if scope["path"] == "/graphql" and scope["method"] == "POST":
            if status >= 500:
                outcome = "failed"
            elif status >= 400:
                outcome = "rejected"
            else:
                outcome = info.outcome
            metrics.observe_request(info.operation or info.named_in_document, outcome, seconds)
        # Never variables, tokens or names: the operation's name and outcome only.
        logger.info(
            "request",
            extra={
                "request_id": info.request_id,
                "method": scope["method"],
                "path": scope["path"],
                "operation": info.operation,
                "executor": info.executor,
                "status": status,
                "outcome": info.outcome if status < 400 else "rejected",
                "error_codes": info.error_codes,
                "duration_ms": round(seconds * 1000, 1),
            },
        )
