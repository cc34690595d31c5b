"""The checks of graphql-cop (https://github.com/dolevf/graphql-cop), replayed
with its own payloads: each test asserts the server is NOT vulnerable.

graphql-cop calls a check positive when, for example, `data.alias100` comes
back, a batch returns ten results, or ten errors answer ten bad directives;
the assertions below are the negation of those conditions, made stricter where
the portal promises more (no resolver runs, nothing is written)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from models import Patient, Session
from portal.app import create_app
from portal.services import patients as patients_service
from portal.settings import Settings
from tests.conftest import GraphQLClient

# Python's traceback header and frame lines, and the secret in the failure below.
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")
SECRET_DETAIL = "boom /usr/lib/secret.py"


def client_for(app: Any) -> httpx.AsyncClient:
    # Not started: the session's `app` fixture has already set up the ORM.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test")


@pytest.fixture(scope="module")
def production_app(settings: Settings) -> Any:
    return create_app(dataclasses.replace(settings, env="production"))


@pytest.fixture
async def production(production_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(production_app) as client:
        yield client


@pytest.fixture(params=["development", "production"])
async def server(
    request: pytest.FixtureRequest, http: httpx.AsyncClient, production: httpx.AsyncClient
) -> httpx.AsyncClient:
    """Both environments: the DoS checks must hold in development too."""
    return http if request.param == "development" else production


RESPONSES: list[httpx.Response] = []


@pytest.fixture(autouse=True)
def no_traces_in_any_response() -> Iterator[None]:
    """graphql-cop's trace-mode and unhandled-error checks, run on every
    response each test of this file receives."""
    RESPONSES.clear()
    yield
    for response in RESPONSES:
        assert_no_traces(response)


def assert_no_traces(response: httpx.Response) -> None:
    text = response.text
    assert "stacktrace" not in text.lower(), text
    assert not TRACEBACK.search(text), text
    assert "Traceback" not in text, text
    try:
        body = response.json()
    except ValueError:
        return
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        extensions = error.get("extensions") or {}
        assert "exception" not in extensions, error
        assert "stacktrace" not in extensions, error
        assert "tracing" not in extensions, error
    if isinstance(body, dict):
        assert "tracing" not in (body.get("extensions") or {}), body


async def graph_query(http: httpx.AsyncClient, query: str, token: str | None = None) -> Any:
    """graphql-cop's graph_query: a JSON POST of {"query": ...}."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json={"query": query}, headers=headers)
    RESPONSES.append(response)
    return response


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    errors: list[dict[str, Any]] = body.get("errors") or []
    return errors


# --- Denial of service --------------------------------------------------------


async def test_alias_overloading(server: httpx.AsyncClient) -> None:
    aliases = "".join(f"alias{i}:__typename \n" for i in range(101))

    response = await graph_query(server, "query { " + aliases + " }")

    body = response.json()
    assert (body.get("data") or {}).get("alias100") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_array_batching(server: httpx.AsyncClient, admin: GraphQLClient) -> None:
    batch = [{"query": "query { __typename }"}] * 10
    writes = [
        {
            "query": 'mutation { createPatient(input: {firstName: "B", lastName: "C"}) '
            "{ __typename } }"
        }
    ] * 10

    for payload in (batch, writes):
        response = await server.post(
            "/graphql", json=payload, headers={"Authorization": f"Bearer {admin.token}"}
        )
        RESPONSES.append(response)
        assert 400 <= response.status_code < 500, response.text
        assert "__typename" not in response.text and "Query" not in response.text
    assert await Patient.all().count() == 0


async def test_circular_introspection_query(server: httpx.AsyncClient) -> None:
    query = (
        "query { __schema { types { fields { type { fields { type { fields { type { fields "
        "{ type { name } } } } } } } } } } }"
    )

    response = await graph_query(server, query)

    body = response.json()
    assert body.get("data") is None
    assert body["errors"]
    assert all(e["extensions"]["code"] == "BAD_USER_INPUT" for e in body["errors"])


async def test_circular_introspection_query_is_stopped_for_its_depth(
    http: httpx.AsyncClient,
) -> None:
    query = (
        "query { __schema { types { fields { type { fields { type { fields { type { fields "
        "{ type { name } } } } } } } } } } }"
    )

    [error] = errors_of(await graph_query(http, query))

    assert "depth" in error["message"].lower()


async def test_circular_fragment(server: httpx.AsyncClient) -> None:
    query = """
    query { __schema { ...A } }
    fragment A on __Schema { __typename ...B }
    fragment B on __Schema { ...A }
    """

    response = await graph_query(server, query)

    assert response.status_code == 200
    assert errors_of(response)
    assert response.json().get("data") is None


async def test_directive_overloading(server: httpx.AsyncClient) -> None:
    query = "query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }"

    response = await graph_query(server, query)

    [error] = errors_of(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert response.json().get("data") is None


async def test_field_duplication(server: httpx.AsyncClient) -> None:
    query = "query { " + "__typename \n" * 500 + "} "

    response = await graph_query(server, query)

    body = response.json()
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# --- Cross-site request forgery -----------------------------------------------


async def test_get_method_query_support(server: httpx.AsyncClient) -> None:
    response = await server.get("/graphql", params={"query": "{__typename}"})
    RESPONSES.append(response)

    assert 400 <= response.status_code < 500
    assert "Query" not in response.text


@pytest.mark.parametrize(
    "mutation",
    ["mutation {__typename}", "mutation{logout}", "mutation { logout }"],
)
async def test_get_based_mutation(
    mutation: str, server: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    sessions_before = await Session.all().count()

    response = await server.get(
        "/graphql", params={"query": mutation}, headers={"Authorization": f"Bearer {admin.token}"}
    )
    RESPONSES.append(response)

    assert 400 <= response.status_code < 500, response.text
    assert "Mutation" not in response.text and "true" not in response.text
    assert await Session.all().count() == sessions_before
    assert (await admin.data("{ me { email } }"))["me"] is not None


@pytest.mark.parametrize(
    "send",
    [
        pytest.param({"data": {"query": "{__typename}"}}, id="form-urlencoded-body"),
        pytest.param({"params": {"query": "query {__typename}"}}, id="query-string-post"),
        pytest.param({"data": {"query": "mutation{logout}"}}, id="form-urlencoded-mutation"),
    ],
)
async def test_post_based_csrf(
    send: dict[str, Any], server: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    response = await server.post(
        "/graphql", headers={"Authorization": f"Bearer {admin.token}"}, **send
    )
    RESPONSES.append(response)

    assert response.status_code == 415, response.text
    assert "Query" not in response.text
    assert (await admin.data("{ me { email } }"))["me"] is not None


# --- Information disclosure ---------------------------------------------------


async def test_graphiql_is_not_served_in_production(production: httpx.AsyncClient) -> None:
    heuristics = ("graphiql.min.css", "GraphQL Playground", "GraphiQL", "graphql-playground")

    for path in ("/graphiql", "/playground", "/console", "/graphql"):
        for accept in ("text/html", "*/*"):
            response = await production.get(path, headers={"Accept": accept})
            RESPONSES.append(response)
            assert not any(word in response.text for word in heuristics), (path, accept)
            assert not response.headers.get("content-type", "").startswith("text/html")


async def test_introspection_in_production(production: httpx.AsyncClient) -> None:
    query = "query cop { __schema { types { name fields { name } } } }"

    response = await graph_query(production, query)

    body = response.json()
    assert body.get("data") is None
    assert body["errors"]
    assert "Patient" not in response.text


async def test_field_suggestions_in_production(production: httpx.AsyncClient) -> None:
    for query in (
        "query { __schema { directive } }",
        "query { patiens { totalCount } }",
        "query { me { emial } }",
        'query { patients(serch: "x") { totalCount } }',
        "query ($x: Strin) { __typename }",
    ):
        response = await graph_query(production, query)
        assert errors_of(response), query
        assert "did you mean" not in response.text.lower(), response.text


async def test_trace_mode(server: httpx.AsyncClient) -> None:
    response = await graph_query(server, "query { __typename }")

    assert response.json() == {"data": {"__typename": "Query"}}


async def test_unhandled_error_detection(server: httpx.AsyncClient) -> None:
    response = await graph_query(server, "qwerty cop { abc }")

    [error] = errors_of(response)
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="malformed-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"query": 42}', id="query-not-a-string"),
        pytest.param(b'{"query": null}', id="query-null"),
        pytest.param(b'{"query": "{ __typename }", "variables": "nope"}', id="bad-variables"),
        pytest.param(b'{"query": "{ __typename }", "extensions": 5}', id="bad-extensions"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[]", id="empty-batch"),
        pytest.param(b'"just a string"', id="json-string"),
        pytest.param(b"42", id="json-number"),
        pytest.param(b"null", id="json-null"),
        pytest.param(
            b'{"query": "{ __typename }", "operationName": 5}',
            id="operation-name-not-a-string",
        ),
    ],
)
@pytest.mark.parametrize("env", ["development", "production"])
async def test_malformed_requests_are_4xx_and_leak_nothing(
    body: bytes, env: str, app: Any, production_app: Any
) -> None:
    # Unhandled exceptions become the server's 500 page here instead of
    # propagating into the test, as they would behind uvicorn.
    transport = httpx.ASGITransport(
        app=app if env == "development" else production_app, raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as server:
        response = await server.post(
            "/graphql", content=body, headers={"Content-Type": "application/json"}
        )
    RESPONSES.append(response)

    assert 400 <= response.status_code < 500, (response.status_code, response.text)


async def test_an_internal_error_returns_only_a_generic_message(
    server: httpx.AsyncClient, admin: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(SECRET_DETAIL)

    monkeypatch.setattr(patients_service, "list_patients", broken)

    response = await graph_query(server, "{ patients { totalCount } }", admin.token)

    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "Something went wrong on our side."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    for leak in ("boom", "secret.py", "/usr/lib", "RuntimeError", "list_patients"):
        assert leak not in response.text
    assert set(json.loads(response.text)) == {"data", "errors"}
