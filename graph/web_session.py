"""The web app's session: an HttpOnly cookie, accepted only with a CSRF defence.

The pages under `/{practice}/…` (portal/web/) never see a session token. They
send every request with the header `X-Portal-Client: web`, which asks for
cookie mode:

- A request with that header must come from the service's own origin: its
  `Origin` must be the origin of `PORTAL_BASE_URL` or the origin it was
  addressed to. Otherwise it is refused (403, `FORBIDDEN`) before anything
  runs. A browser sends that header cross-origin only after a CORS preflight,
  which never allows it, so a page elsewhere cannot send it at all.
- Only such a request is authenticated by the cookie. Without the header the
  cookie is ignored (the request is anonymous unless it carries a Bearer
  token), so a forged form post or a cross-site fetch riding on the cookie
  acts as nobody. `SameSite=Strict` keeps the browser from sending the cookie
  cross-site in the first place.
- `login` and `completeMfaLogin` in cookie mode set the cookie and answer
  `LoginSuccess.token` as "" (the contract makes it non-null), so the token
  never reaches script; `logout` clears it.

Other clients are unaffected: a Bearer token works as before, and wins over
a cookie when a request has both.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import Scope

from portal.request_context import WebSession, current_request
from portal.settings import Settings

CLIENT_HEADER = b"x-portal-client"
CLIENT_HEADER_VALUE = "web"
# Scoped to the API: the pages themselves are the same for everyone.
COOKIE_NAME = "portal_session"
COOKIE_PATH = "/graphql"

Headers = Iterable[tuple[bytes, bytes]]


class CrossOrigin(Exception):
    """A request asked for cookie mode from somewhere other than the service's origin."""


REFUSAL = (
    "The web app's requests must come from this service's own pages "
    "(X-Portal-Client with this service's Origin)."
)


def _header(headers: Headers, name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def own_origins(headers: Headers, scheme: str, settings: Settings) -> set[str]:
    base = urlsplit(settings.base_url)
    origins = {f"{base.scheme}://{base.netloc}"}
    host = _header(headers, b"host")
    if host:
        origins.add(f"{scheme}://{host}")
    return origins


def web_session(scope: Scope, settings: Settings) -> WebSession | None:
    """The request's web session when it asks for cookie mode; raises
    `CrossOrigin` when it asks from a foreign (or no) origin."""
    headers = scope.get("headers", [])
    if _header(headers, CLIENT_HEADER) != CLIENT_HEADER_VALUE:
        return None
    origin = _header(headers, b"origin")
    if origin is None or origin not in own_origins(headers, scope.get("scheme", "http"), settings):
        raise CrossOrigin()
    return WebSession(secure=settings.is_production)


def cookie_token(headers: Headers) -> str:
    for key, value in headers:
        if key != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            name, _, content = part.strip().partition("=")
            if name == COOKIE_NAME:
                return content.strip()
    return ""


def session_token(scope: Scope) -> str:
    """The token that authenticates this request: a Bearer token, else the
    cookie when (and only when) the request passed the web app's checks."""
    headers = scope.get("headers", [])
    authorization = _header(headers, b"authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    state = scope.get("state", {})
    if state.get("web_session") is not None:
        return cookie_token(headers)
    return ""


def _cookie(value: str, session: WebSession, max_age: int | None = None) -> str:
    attributes = [f"{COOKIE_NAME}={value}", f"Path={COOKIE_PATH}", "HttpOnly", "SameSite=Strict"]
    if session.secure:
        attributes.append("Secure")
    if max_age is not None:
        attributes.append(f"Max-Age={max_age}")
    # No Max-Age when set: the cookie ends with the browser, the session on the server sooner.
    return "; ".join(attributes)


def hand_over(token: str) -> str:
    """The token a sign-in's response body shows: in cookie mode the cookie
    takes it and the body gets "", else the token itself."""
    info = current_request.get()
    session = info.web if info is not None else None
    if session is None:
        return token
    session.set_cookie = _cookie(token, session)
    return ""


def signed_out() -> None:
    """In cookie mode, the response clears the cookie."""
    info = current_request.get()
    if info is not None and info.web is not None:
        info.web.set_cookie = _cookie("", info.web, max_age=0)
