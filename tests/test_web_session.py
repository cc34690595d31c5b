"""The web app's session cookie: set by a sign-in that asks for cookie mode,
accepted only with the web app's header from the service's own origin,
cleared by sign-out; Bearer tokens work as before."""

from __future__ import annotations

from typing import Any

import httpx

from graph.trusted import document_id
from graph.web_documents import documents
from models import Account, AuditEvent, Session
from tests import factories

WEB_HEADERS = {"X-Portal-Client": "web", "Origin": "https://portal.test"}
SIGN_IN = documents()["SignIn"]
ME = "query Me { me { email role } }"
PATIENTS = "query SomePatients { patients(first: 1) { totalCount } }"


async def web_sign_in(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await http.post(
        "/graphql",
        json={
            "documentId": document_id(SIGN_IN),
            "variables": {
                "practice": "north",
                "email": "admin@north.example",
                "password": factories.PASSWORD,
            },
        },
        headers=headers,
    )


def session_cookie(response: httpx.Response) -> str:
    (value,) = response.headers.get_list("set-cookie")
    return value


async def ask(http: httpx.AsyncClient, query: str, **headers: str) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_web_sign_in_sets_an_http_only_strict_cookie_and_never_shows_the_token(
    http: httpx.AsyncClient, admin_account: Account
) -> None:
    response = await web_sign_in(http, WEB_HEADERS)

    assert response.status_code == 200
    assert response.json()["data"]["login"]["__typename"] == "LoginSuccess"
    cookie = session_cookie(response)
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    name, _, token = name_value.partition("=")
    assert name == "portal_session" and len(token) >= 40
    assert set(attributes) == {"Path=/graphql", "HttpOnly", "SameSite=Strict"}
    assert token not in response.text
    # The cookie is the session: with the web app's header it signs the request in.
    me = await ask(http, ME, **WEB_HEADERS, Cookie=f"portal_session={token}")
    assert me["data"]["me"] == {"email": "admin@north.example", "role": "ADMIN"}


async def test_the_token_field_of_a_web_sign_in_is_empty(
    http: httpx.AsyncClient, admin_account: Account
) -> None:
    login = """
        mutation ($practice: String!, $email: String!, $password: String!) {
          login(practice: $practice, email: $email, password: $password) {
            ... on LoginSuccess { token }
          }
        }
    """
    variables = {"practice": "north", "email": admin_account.email, "password": factories.PASSWORD}
    response = await http.post(
        "/graphql", json={"query": login, "variables": variables}, headers=WEB_HEADERS
    )

    assert response.json()["data"]["login"] == {"token": ""}
    assert "portal_session=" in session_cookie(response)


async def test_the_cookie_without_the_web_apps_header_signs_nobody_in(
    http: httpx.AsyncClient, admin_account: Account
) -> None:
    token = session_cookie(await web_sign_in(http, WEB_HEADERS)).split(";")[0].split("=")[1]

    # A forged form post or a fetch from another site carries no such header.
    me = await ask(http, ME, Cookie=f"portal_session={token}", Origin="https://portal.test")
    patients = await ask(http, PATIENTS, Cookie=f"portal_session={token}")

    assert me == {"data": {"me": None}}
    assert patients["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_web_request_from_another_origin_or_none_is_refused_before_it_runs(
    http: httpx.AsyncClient, admin_account: Account
) -> None:
    foreign = await web_sign_in(http, {"X-Portal-Client": "web", "Origin": "https://evil.example"})
    no_origin = await web_sign_in(http, {"X-Portal-Client": "web"})

    for response in (foreign, no_origin):
        assert response.status_code == 403
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "set-cookie" not in response.headers
    assert not await Session.exists()
    assert not await AuditEvent.filter(action="LOGIN_SUCCEEDED").exists()


async def test_the_services_own_address_is_an_own_origin(
    http: httpx.AsyncClient, admin_account: Account
) -> None:
    # Addressed as http://portal.test (its Host) while PORTAL_BASE_URL says https.
    response = await web_sign_in(http, {"X-Portal-Client": "web", "Origin": "http://portal.test"})

    assert response.status_code == 200
    assert "portal_session=" in session_cookie(response)


async def test_sign_out_clears_the_cookie_and_ends_the_session(
    http: httpx.AsyncClient, admin_account: Account
) -> None:
    token = session_cookie(await web_sign_in(http, WEB_HEADERS)).split(";")[0].split("=")[1]
    cookie = {"Cookie": f"portal_session={token}"}

    response = await http.post(
        "/graphql",
        json={"documentId": document_id(documents()["SignOut"])},
        headers={**WEB_HEADERS, **cookie},
    )

    assert response.json() == {"data": {"logout": True}}
    cleared = session_cookie(response)
    assert cleared.startswith("portal_session=;") and "Max-Age=0" in cleared
    me = await ask(http, ME, **WEB_HEADERS, **cookie)
    assert me == {"data": {"me": None}}


async def test_bearer_tokens_keep_working_and_get_no_cookie(
    http: httpx.AsyncClient, admin_account: Account
) -> None:
    response = await web_sign_in(http, {})

    token = response.json()["data"]["login"]
    assert "set-cookie" not in response.headers
    assert token["__typename"] == "LoginSuccess"
    login = await http.post(
        "/graphql",
        json={
            "query": "mutation ($p: String!, $e: String!, $w: String!) "
            "{ login(practice: $p, email: $e, password: $w) { ... on LoginSuccess { token } } }",
            "variables": {"p": "north", "e": admin_account.email, "w": factories.PASSWORD},
        },
    )
    bearer = login.json()["data"]["login"]["token"]
    me = await ask(http, ME, Authorization=f"Bearer {bearer}")
    assert me["data"]["me"]["email"] == admin_account.email
