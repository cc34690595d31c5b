"""How failures reach the caller (expected ones as Error types, the caller's
mistakes as BAD_USER_INPUT, bugs masked and never logged with their message),
the health check, and GraphiQL in development."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from typing import Any

import aiosqlite
import asyncpg
import httpx
import pytest
from tortoise.connection import connections

from models import Patient
from portal.app import create_app
from portal.services import patients as patients_service
from portal.settings import Settings
from tests.conftest import LOGIN, GraphQLClient

PATIENTS = "query { patients { totalCount edges { node { id } } } }"
CREATE_PATIENT = """
mutation CreatePatient($input: CreatePatientInput!) {
  createPatient(input: $input) {
    __typename
    ... on PatientCreated { patient { id } }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}
"""
UPDATE_PATIENT = """
mutation UpdatePatient($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) {
    __typename
    ... on PatientUpdated { patient { id } }
    ... on Error { code message }
  }
}
"""
INTERFACES = "query Interfaces($name: String!) { __type(name: $name) { interfaces { name } } }"
PATIENTS_FIRST = "query Patients($first: Int!) { patients(first: $first) { totalCount } }"

# Stands for patient data that ends up in an exception's message.
SECRET = "secret patient detail"


def error_codes(body: dict[str, Any]) -> list[str]:
    """The `extensions.code` of each top-level error."""
    return [error["extensions"]["code"] for error in body.get("errors") or []]


async def post_raw(
    http: httpx.AsyncClient, token: str | None, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )


async def leak_a_secret(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(SECRET)


UNREACHABLE = ConnectionRefusedError(f"could not connect to db.internal: {SECRET}")


def break_database(monkeypatch: pytest.MonkeyPatch, problem: Exception) -> None:
    """From now on every statement fails with `problem`."""

    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise problem

    client = type(connections.get("default"))
    for method in ("execute_query", "execute_query_dict", "execute_insert", "execute_script"):
        monkeypatch.setattr(client, method, fail)
    # Hand-written statements go to the driver's connection directly.
    for method in ("fetch", "fetchrow", "execute"):
        monkeypatch.setattr(asyncpg.connection.Connection, method, fail)
    for method in ("execute_fetchall", "execute"):
        monkeypatch.setattr(aiosqlite.Connection, method, fail)


def assert_edge_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert len(response.headers["x-request-id"]) == 16


# --- Bugs are masked ----------------------------------------------------------


async def test_an_unexpected_failure_is_masked_and_its_message_is_not_logged(
    admin: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(patients_service, "list_patients", leak_a_secret)
    caplog.set_level(logging.DEBUG)

    body = await admin.post(PATIENTS)

    [error] = body["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert SECRET not in json.dumps(body)
    assert SECRET not in caplog.text
    assert any(
        record.levelno >= logging.ERROR and "RuntimeError" in record.getMessage()
        for record in caplog.records
    ), "the bug itself must still be logged, by its type"


async def test_an_unexpected_failure_in_a_mutation_is_masked_too(
    admin: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(patients_service, "create_patient", leak_a_secret)
    caplog.set_level(logging.DEBUG)

    body = await admin.post(CREATE_PATIENT, input={"firstName": "Alan", "lastName": "Turing"})

    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert SECRET not in json.dumps(body)
    assert SECRET not in caplog.text


# --- Failures outside the GraphQL execution answer JSON too -------------------


async def test_a_signed_in_request_while_the_database_is_away_is_a_503_to_retry(
    admin: GraphQLClient, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_database(monkeypatch, UNREACHABLE)  # the session lookup fails first

    response = await post_raw(http, admin.token, "query { me { id } }")

    assert response.status_code == 503
    assert error_codes(response.json()) == ["SERVICE_UNAVAILABLE"]
    assert int(response.headers["retry-after"]) > 0
    assert_edge_headers(response)
    assert SECRET not in response.text


async def test_a_mutation_while_the_database_is_away_is_a_503_to_retry(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    break_database(monkeypatch, UNREACHABLE)

    response = await post_raw(
        http, None, LOGIN, {"practice": "north", "email": "a@b.example", "password": "x" * 12}
    )

    assert response.status_code == 503
    assert error_codes(response.json()) == ["SERVICE_UNAVAILABLE"]
    assert int(response.headers["retry-after"]) > 0
    assert_edge_headers(response)
    assert SECRET not in response.text
    assert SECRET not in caplog.text


async def test_a_bug_before_graphql_runs_is_a_json_500_that_keeps_its_secret(
    admin: GraphQLClient,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    break_database(monkeypatch, RuntimeError(SECRET))

    response = await post_raw(http, admin.token, "query { me { id } }")

    assert response.status_code == 500
    assert error_codes(response.json()) == ["INTERNAL_SERVER_ERROR"]
    assert "retry-after" not in response.headers
    assert_edge_headers(response)
    assert SECRET not in response.text
    assert SECRET not in caplog.text
    assert any(
        record.levelno >= logging.ERROR and "RuntimeError" in record.getMessage()
        for record in caplog.records
    ), "the bug itself must still be logged, by its type"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("GET", "/nowhere", None, 404, id="unknown-path"),
        pytest.param("DELETE", "/graphql", None, 405, id="wrong-method"),
        pytest.param("POST", "/graphql", b"{not json", 400, id="unparseable-body"),
        pytest.param("POST", "/graphql", b'"a string"', 400, id="not-an-object"),
    ],
)
async def test_a_request_that_cannot_be_run_is_answered_in_graphql_shape(
    http: httpx.AsyncClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    response = await http.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == status
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    assert response.json()["errors"][0]["message"]
    assert_edge_headers(response)


# --- The caller's mistakes are BAD_USER_INPUT, never a 500 ---------------------


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param("{ patients ", None, id="syntax-error"),
        pytest.param("{ patients { nope } }", None, id="unknown-field"),
        pytest.param("{ patients(page: 2) { totalCount } }", None, id="unknown-argument"),
        pytest.param('{ patients(first: "ten") { totalCount } }', None, id="wrong-argument-type"),
        pytest.param(
            'mutation { createPatient(input: {firstName: "A", lastName: "B", '
            'dateOfBirth: "17/05/1990"}) { __typename } }',
            None,
            id="malformed-date-literal",
        ),
        pytest.param(
            PATIENTS_FIRST,
            {"first": "ten"},
            id="wrong-variable-type",
        ),
        pytest.param(
            PATIENTS_FIRST,
            None,
            id="missing-required-variable",
        ),
        pytest.param(
            CREATE_PATIENT,
            {"input": {"firstName": "A", "lastName": "B", "dateOfBirth": "17/05/1990"}},
            id="malformed-date-variable",
        ),
    ],
)
async def test_a_malformed_request_is_bad_user_input(
    query: str,
    variables: dict[str, Any] | None,
    http: httpx.AsyncClient,
    admin: GraphQLClient,
) -> None:
    response = await post_raw(http, admin.token, query, variables)

    assert response.status_code < 500, response.text
    body = response.json()
    assert body["data"] is None
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert await Patient.all().count() == 0


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        pytest.param("first: 0", "first", id="first-too-small"),
        pytest.param("first: 101", "first", id="first-too-large"),
        pytest.param('after: "not-a-cursor"', "after", id="garbage-cursor"),
    ],
)
async def test_an_out_of_range_query_argument_is_bad_user_input_that_says_why(
    arguments: str, complaint: str, admin: GraphQLClient
) -> None:
    body = await admin.post(f"{{ patients({arguments}) {{ totalCount }} }}")

    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert complaint in body["errors"][0]["message"]


async def test_a_body_that_is_not_json_is_refused_without_a_500(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400


# --- Expected failures are union members implementing Error -------------------


async def expected_failures(admin: GraphQLClient, anonymous: GraphQLClient) -> list[dict[str, Any]]:
    invalid = await admin.data(CREATE_PATIENT, input={"firstName": "  ", "lastName": "Turing"})
    missing = await admin.data(UPDATE_PATIENT, id=str(uuid.uuid4()), input={"firstName": "Alan"})
    wrong = await anonymous.data(
        LOGIN, practice="north", email="admin@north.example", password="not-the-password"
    )
    return [invalid["createPatient"], missing["updatePatient"], wrong["login"]]


async def test_expected_failures_are_error_types_with_code_and_message(
    admin: GraphQLClient, anonymous: GraphQLClient
) -> None:
    failures = await expected_failures(admin, anonymous)

    assert [(f["__typename"], f["code"]) for f in failures] == [
        ("ValidationError", "VALIDATION"),
        ("NotFoundError", "NOT_FOUND"),
        ("InvalidCredentialsError", "INVALID_CREDENTIALS"),
    ]
    assert all(isinstance(f["message"], str) and f["message"] for f in failures)
    assert failures[0]["field"] == "firstName"
    for failure in failures:
        described = await anonymous.data(INTERFACES, name=failure["__typename"])
        assert {"name": "Error"} in described["__type"]["interfaces"]


# --- Health -------------------------------------------------------------------


async def test_health_is_ok_when_the_database_answers(http: httpx.AsyncClient) -> None:
    response = await http.get("/health")

    assert response.status_code == 200
    # The suite delivers mail itself: this app runs no worker.
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "mail_worker": "off"}}


@pytest.fixture
def broken_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every query fails as if the database server were gone."""
    break_database(monkeypatch, UNREACHABLE)


async def test_health_is_503_when_the_database_does_not_answer(
    broken_database: None, http: httpx.AsyncClient
) -> None:
    response = await http.get("/health")

    assert response.status_code == 503
    assert response.json()["status"] != "ok"


async def test_a_failed_health_check_does_not_log_the_exception_message(
    broken_database: None, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    await http.get("/health")

    assert "ConnectionRefusedError" in caplog.text
    assert SECRET not in caplog.text


# --- GraphiQL -----------------------------------------------------------------


async def test_graphiql_is_served_in_development(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    assert not settings.is_production

    response = await http.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_graphiql_is_not_served_in_production(settings: Settings) -> None:
    production = create_app(dataclasses.replace(settings, env="production"))
    transport = httpx.ASGITransport(app=production)

    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        response = await http.get("/graphql", headers={"Accept": "text/html"})

    assert "graphiql" not in response.text.lower()
    assert not response.headers.get("content-type", "").startswith("text/html")
