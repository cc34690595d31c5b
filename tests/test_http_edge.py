"""What every response carries (security headers, a request id), which browser
origins may call the API, and what production keeps to itself: GraphiQL,
introspection and "Did you mean" suggestions."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from portal.app import create_app
from portal.services import patients as patients_service
from portal.settings import Settings
from tests.conftest import GraphQLClient

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
STRICT_CSP = "default-src 'none'"

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def client_for(app: Any) -> httpx.AsyncClient:
    """An app made by a test is not started: the session's `app` fixture has
    already set up the ORM, and Tortoise allows only one global context."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://portal.test")


@pytest.fixture(scope="module")
def production_app(settings: Settings) -> Any:
    return create_app(dataclasses.replace(settings, env="production"))


@pytest.fixture
async def production(production_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(production_app) as client:
        yield client


def csp_directives(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))
    assert csp_directives(response)["frame-ancestors"] == ["'none'"]
    assert re.fullmatch(r"[0-9a-f]{8,64}", response.headers.get("x-request-id", ""))


async def graphql_post(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post("/graphql", json={"query": "{ __typename }"})


async def graphql_error(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post("/graphql", json={"query": "{ nope }"})


async def health(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/health")


async def too_large(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post(
        "/graphql", content=b" " * (65 * 1024), headers={"Content-Type": "application/json"}
    )


async def too_large_streamed(http: httpx.AsyncClient) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 4096

    return await http.post(
        "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
    )


async def wrong_content_type(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post("/graphql", data={"query": "{ __typename }"})


async def batch(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post("/graphql", json=[{"query": "{ __typename }"}] * 2)


async def get_query(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/graphql", params={"query": "{ __typename }"})


async def not_json(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post(
        "/graphql", content=b"{not json", headers={"Content-Type": "application/json"}
    )


async def unknown_path(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/nowhere")


async def graphiql_page(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/graphql", headers={"Accept": "text/html"})


async def preflight(http: httpx.AsyncClient) -> httpx.Response:
    return await http.options(
        "/graphql",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )


CALLS = [
    pytest.param(graphql_post, id="graphql-post"),
    pytest.param(graphql_error, id="graphql-error"),
    pytest.param(health, id="health"),
    pytest.param(too_large, id="413-content-length"),
    pytest.param(too_large_streamed, id="413-streamed"),
    pytest.param(wrong_content_type, id="415"),
    pytest.param(batch, id="batch-refused"),
    pytest.param(get_query, id="get-refused"),
    pytest.param(not_json, id="malformed-json"),
    pytest.param(unknown_path, id="404"),
    pytest.param(graphiql_page, id="graphiql-page"),
    pytest.param(preflight, id="cors-preflight"),
]


@pytest.mark.parametrize("call", CALLS)
async def test_every_response_carries_the_security_headers_and_a_request_id(
    call: Call, http: httpx.AsyncClient
) -> None:
    response = await call(http)

    assert_security_headers(response)


@pytest.mark.parametrize("call", CALLS)
async def test_every_production_response_has_the_strict_csp(
    call: Call, production: httpx.AsyncClient
) -> None:
    response = await call(production)

    assert_security_headers(response)
    assert csp_directives(response)["default-src"] == ["'none'"]
    assert response.headers["content-security-policy"].startswith(STRICT_CSP)


async def test_json_responses_in_development_have_the_strict_csp(http: httpx.AsyncClient) -> None:
    for call in (graphql_post, health, too_large, wrong_content_type):
        response = await call(http)
        assert csp_directives(response)["default-src"] == ["'none'"], call


async def test_a_timed_out_request_carries_the_headers_too(
    settings: Settings, admin: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stuck(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)

    monkeypatch.setattr(patients_service, "list_patients", stuck)
    hurried = create_app(dataclasses.replace(settings, request_timeout_seconds=1))

    async with client_for(hurried) as http:
        response = await http.post(
            "/graphql",
            json={"query": "{ patients { totalCount } }"},
            headers={"Authorization": f"Bearer {admin.token}"},
        )

    assert response.status_code == 503
    assert_security_headers(response)


async def test_each_request_gets_its_own_request_id(http: httpx.AsyncClient) -> None:
    ids = {(await graphql_post(http)).headers["x-request-id"] for _ in range(5)}

    assert len(ids) == 5


# --- CORS ---------------------------------------------------------------------

ALLOWED = "https://app.example"
EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def cors_app(settings: Settings) -> Any:
    return create_app(dataclasses.replace(settings, cors_origins=(ALLOWED,)))


@pytest.fixture
async def cors(cors_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(cors_app) as client:
        yield client


async def preflight_from(http: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await http.options(
        "/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


async def test_a_preflight_from_an_allowed_origin_is_allowed(cors: httpx.AsyncClient) -> None:
    response = await preflight_from(cors, ALLOWED)

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert_security_headers(response)


async def test_a_preflight_from_another_origin_is_not_allowed(cors: httpx.AsyncClient) -> None:
    response = await preflight_from(cors, EVIL)

    assert response.status_code >= 400
    assert "access-control-allow-origin" not in response.headers
    assert_security_headers(response)


async def test_a_post_from_another_origin_gets_no_cors_grant(cors: httpx.AsyncClient) -> None:
    allowed = await cors.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": ALLOWED}
    )
    evil = await cors.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": EVIL})

    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-origin" not in evil.headers
    assert "access-control-allow-credentials" not in evil.headers


DEVELOPMENT = {"DATABASE_URL": "sqlite://:memory:"}
PRODUCTION = {
    **DEVELOPMENT,
    "PORTAL_ENV": "production",
    "PORTAL_SECRET_KEY": "Qx7mZ2rV9kLp4Wn8Ys3Tb6Hc1Jd5Gf0Ae",
    "PORTAL_BASE_URL": "https://portal.example",
}


async def test_in_development_the_front_end_the_emails_link_to_may_call_by_default() -> None:
    settings = Settings.from_env(DEVELOPMENT)
    front_end = settings.base_url  # http://127.0.0.1:8000 unless set

    async with client_for(create_app(settings)) as http:
        allowed = await preflight_from(http, front_end)
        other = await preflight_from(http, ALLOWED)

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == front_end
    assert other.status_code >= 400
    assert "access-control-allow-origin" not in other.headers


async def test_in_development_the_front_end_origin_is_added_to_those_listed() -> None:
    settings = Settings.from_env(
        {
            **DEVELOPMENT,
            "PORTAL_BASE_URL": "http://localhost:3000/portal",
            "PORTAL_CORS_ORIGINS": ALLOWED,
        }
    )

    assert settings.cors_origins == (ALLOWED, "http://localhost:3000")


async def test_production_allows_exactly_the_origins_listed() -> None:
    assert Settings.from_env(PRODUCTION).cors_origins == ()
    listed = Settings.from_env({**PRODUCTION, "PORTAL_CORS_ORIGINS": ALLOWED})
    assert listed.cors_origins == (ALLOWED,)

    async with client_for(create_app(listed)) as http:
        refused = await preflight_from(http, "https://portal.example")

    assert refused.status_code >= 400
    assert "access-control-allow-origin" not in refused.headers


# --- Production keeps GraphiQL, introspection and suggestions to itself -------


async def test_production_serves_no_graphiql(production: httpx.AsyncClient) -> None:
    for accept in ("text/html", "text/html,application/xhtml+xml,*/*;q=0.8"):
        response = await production.get("/graphql", headers={"Accept": accept})

        assert response.status_code in (400, 404, 405) or (
            response.headers["content-type"].startswith("application/json")
            and "errors" in response.json()
        ), response.text
        assert not response.headers.get("content-type", "").startswith("text/html")
        assert "graphiql" not in response.text.lower()
        assert "<html" not in response.text.lower()


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("{ __schema { types { name } } }", id="__schema"),
        pytest.param('{ __type(name: "Patient") { name } }', id="__type"),
        pytest.param(
            '{ __typename ... on Query { __type(name: "Patient") { name } } }',
            id="__type-in-inline-fragment",
        ),
        pytest.param(
            "{ ...Schema } fragment Schema on Query { __schema { queryType { name } } }",
            id="__schema-in-fragment",
        ),
    ],
)
async def test_production_rejects_introspection(
    query: str, production: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    response = await production.post("/graphql", json={"query": query})

    assert response.status_code == 200
    body = response.json()
    assert body.get("data") is None
    assert body["errors"] and all(
        e["extensions"]["code"] == "BAD_USER_INPUT" for e in body["errors"]
    )
    # In development the same query is answered.
    assert "errors" not in (await http.post("/graphql", json={"query": query})).json()


TYPOS = [
    pytest.param({"query": "{ patiens { totalCount } }"}, id="field"),
    pytest.param({"query": "{ me { emial } }"}, id="nested-field"),
    pytest.param({"query": '{ patients(serch: "a") { totalCount } }'}, id="argument"),
    pytest.param({"query": "query($x: Strin) { __typename }"}, id="variable-type"),
    pytest.param({"query": "{ ... on Quer { __typename } }"}, id="fragment-type"),
    pytest.param(
        {
            "query": 'mutation { createPatient(input: {firstName: "a", lastName: "b", emial: "x"}) '
            "{ __typename } }"
        },
        id="input-field-literal",
    ),
    pytest.param(
        {
            "query": "mutation($input: CreatePatientInput!) { createPatient(input: $input) "
            "{ __typename } }",
            "variables": {"input": {"firstName": "a", "lastName": "b", "emial": "x"}},
        },
        id="input-field-variable",
    ),
    pytest.param(
        {"query": 'mutation { login(practice: "a", email: "b", password: "c") { token } }'},
        id="inline-fragment-hint",
    ),
    pytest.param({"query": "{ __schema { directive } }"}, id="introspection-field"),
]


@pytest.mark.parametrize("payload", TYPOS)
async def test_production_errors_suggest_no_names(
    payload: dict[str, Any], production: httpx.AsyncClient
) -> None:
    response = await production.post("/graphql", json=payload)

    body = response.json()
    assert body["errors"], body
    for error in body["errors"]:
        assert "did you mean" not in error["message"].lower(), error
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "did you mean" not in response.text.lower()


async def test_development_errors_may_suggest_names(http: httpx.AsyncClient) -> None:
    body = (await http.post("/graphql", json={"query": "{ patiens { totalCount } }"})).json()

    assert "Did you mean 'patient' or 'patients'?" in body["errors"][0]["message"]
