"""Every limit on the shape and size of a request turns it away before any
resolver runs, and lets through a request that sits exactly at the limit."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from graphql.language import Lexer, Source, TokenKind

from models import Patient
from portal.app import create_app
from portal.services import patients as patients_service
from portal.settings import Settings
from tests.conftest import GraphQLClient

# Every rejected document below also asks for `patients`: when a limit holds,
# its resolver never runs.
PATIENTS = "patients { totalCount }"
CREATE_PATIENT = (
    'mutation { createPatient(input: {firstName: "Limit", lastName: "Probe"}) { __typename } }'
)
DEPTH_MESSAGE = "too deep: 11 levels of nesting, at most 10"


@dataclasses.dataclass
class Calls:
    count: int = 0


@pytest.fixture
def list_patients_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Counts how often the `patients` resolver reaches its service."""
    calls = Calls()
    original = patients_service.list_patients

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.count += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(patients_service, "list_patients", counted)
    return calls


async def send(http: httpx.AsyncClient, token: str | None, query: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.post("/graphql", json={"query": query}, headers=headers)


def rejected(response: httpx.Response, complaint: str) -> dict[str, Any]:
    """A GraphQL-level refusal: HTTP 200, no data, BAD_USER_INPUT naming the limit."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body.get("data") is None, body
    errors = body["errors"]
    assert all(error["extensions"]["code"] == "BAD_USER_INPUT" for error in errors), errors
    assert any(complaint in error["message"] for error in errors), errors
    return body


def accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body["errors"]
    return body


def token_count(document: str) -> int:
    lexer = Lexer(Source(document))
    count = 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


def nested(levels: int) -> str:
    """`me` with `levels` fields under it, one inside the other (depth `levels`)."""
    inner = "leaf"
    for level in range(levels - 1, 0, -1):
        inner = f"f{level} {{ {inner} }}"
    return f"me {{ {inner} }}"


# --- Depth --------------------------------------------------------------------


async def test_depth_11_is_rejected_before_any_resolver_runs(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    response = await send(http, admin.token, f"{{ {PATIENTS} {nested(11)} }}")

    rejected(response, DEPTH_MESSAGE)
    assert list_patients_calls.count == 0


async def test_depth_10_is_not_refused_by_the_depth_limit(
    http: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    # The schema has no real path ten fields deep, so the fields are unknown
    # ones: what matters is that the depth limit does not complain.
    response = await send(http, admin.token, f"{{ {PATIENTS} {nested(10)} }}")

    errors = response.json()["errors"]
    assert errors and not any("depth" in error["message"] for error in errors), errors


async def test_depth_through_a_fragment_counts_where_it_is_spread(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    query = f"""
    {{ {PATIENTS} me {{ ...Deep }} }}
    fragment Deep on Account {{ {nested(10)} }}
    """

    rejected(await send(http, admin.token, query), DEPTH_MESSAGE)
    assert list_patients_calls.count == 0


async def test_the_schema_itself_stays_within_the_depth_limit(
    http: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    deepest = "{ patients { edges { node { portal { status } } } } me { patient { id } } }"

    accepted(await send(http, admin.token, deepest))


async def test_introspection_nested_deeper_than_10_is_rejected(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    of_types = "name"
    for _ in range(10):
        of_types = f"ofType {{ {of_types} }}"
    query = f'{{ {PATIENTS} __type(name: "Patient") {{ fields {{ type {{ {of_types} }} }} }} }}'

    response = await send(http, admin.token, query)

    rejected(response, "too deep")
    assert list_patients_calls.count == 0


# --- Aliases ------------------------------------------------------------------


def aliases(count: int, start: int = 0) -> str:
    return " ".join(f"a{i}: __typename" for i in range(start, start + count))


async def test_16_aliases_are_rejected_with_one_error(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    response = await send(http, admin.token, f"{{ {PATIENTS} {aliases(16)} }}")

    body = rejected(response, "16 aliases")
    assert len(body["errors"]) == 1
    assert list_patients_calls.count == 0


async def test_15_aliases_are_allowed(http: httpx.AsyncClient, admin: GraphQLClient) -> None:
    body = accepted(await send(http, admin.token, f"{{ {PATIENTS} {aliases(15)} }}"))

    assert body["data"]["a14"] == "Query"


async def test_aliases_in_a_fragment_count_each_time_it_is_spread(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    query = f"{{ {PATIENTS} ...Eight me {{ __typename }} ...Eight }}\n"
    query += f"fragment Eight on Query {{ {aliases(8)} }}"

    rejected(await send(http, admin.token, query), "16 aliases")
    assert list_patients_calls.count == 0


async def test_aliases_in_fragments_up_to_the_limit_are_allowed(
    http: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    query = f"{{ {PATIENTS} ...Seven ...Seven {aliases(1, start=100)} }}\n"
    query += f"fragment Seven on Query {{ {aliases(7)} }}"

    accepted(await send(http, admin.token, query))


# --- Tokens -------------------------------------------------------------------


def document_of_tokens(total: int) -> str:
    """A valid query of exactly `total` tokens and few fields: nested inline
    fragments cost five tokens a level and select nothing themselves."""
    group = "__typename"
    for _ in range(10):
        group = f"... on Query {{ {group} }}"
    parts = [PATIENTS]
    while token_count("{ " + " ".join([*parts, group]) + " }") <= total:
        parts.append(group)
    while token_count("{ " + " ".join(parts) + " }") < total:
        parts.append("__typename")
    document = "{ " + " ".join(parts) + " }"
    assert token_count(document) == total
    return document


async def test_2001_tokens_are_rejected(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    response = await send(http, admin.token, document_of_tokens(2001))

    rejected(response, "more than 2000 tokens")
    assert list_patients_calls.count == 0


async def test_2000_tokens_are_allowed(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    body = accepted(await send(http, admin.token, document_of_tokens(2000)))

    assert body["data"]["patients"] == {"totalCount": 0}
    assert list_patients_calls.count == 1


async def test_comments_count_as_tokens(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    query = f"{{ {PATIENTS}\n" + "# padding\n" * 2100 + "}"

    rejected(await send(http, admin.token, query), "tokens")
    assert list_patients_calls.count == 0


# --- Fields -------------------------------------------------------------------


async def test_201_fields_are_rejected(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    # `patients` and `totalCount` are two of them.
    response = await send(http, admin.token, f"{{ {PATIENTS} {'__typename ' * 199}}}")

    body = rejected(response, "Too many fields: 201")
    assert len(body["errors"]) == 1
    assert list_patients_calls.count == 0


async def test_200_fields_are_allowed(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    accepted(await send(http, admin.token, f"{{ {PATIENTS} {'__typename ' * 198}}}"))

    assert list_patients_calls.count == 1


async def test_fields_in_a_fragment_count_each_time_it_is_spread(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    query = f"{{ {PATIENTS} ...Many ...Many }}\nfragment Many on Query {{ {'__typename ' * 100}}}"

    rejected(await send(http, admin.token, query), "Too many fields: 202")
    assert list_patients_calls.count == 0


# --- Directives ---------------------------------------------------------------


async def test_6_directives_are_rejected_with_one_error(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    directives = " ".join(f"d{i}: __typename @include(if: true)" for i in range(6))

    response = await send(http, admin.token, f"{{ {PATIENTS} {directives} }}")

    body = rejected(response, "Too many directives: 6")
    assert len(body["errors"]) == 1
    assert list_patients_calls.count == 0


async def test_many_unknown_directives_cost_one_error(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    response = await send(http, admin.token, f"{{ {PATIENTS} __typename{' @aa' * 50} }}")

    body = rejected(response, "Too many directives: 50")
    assert len(body["errors"]) == 1
    assert list_patients_calls.count == 0


async def test_5_directives_are_allowed(http: httpx.AsyncClient, admin: GraphQLClient) -> None:
    directives = " ".join(f"d{i}: __typename @include(if: true)" for i in range(5))

    body = accepted(await send(http, admin.token, f"{{ {PATIENTS} {directives} }}"))

    assert body["data"]["d4"] == "Query"


# --- Body size ----------------------------------------------------------------

LIMIT = 64 * 1024


def padded_body(query: str, size: int) -> bytes:
    """A JSON body of exactly `size` bytes: trailing whitespace is still JSON."""
    body = json.dumps({"query": query}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "errors": [
            {"message": "The request body is too large.", "extensions": {"code": "BAD_USER_INPUT"}}
        ]
    }


async def test_a_body_over_64_kib_with_content_length_is_413(
    http: httpx.AsyncClient, admin: GraphQLClient, settings: Settings
) -> None:
    assert settings.max_body_bytes == LIMIT

    response = await http.post(
        "/graphql",
        content=padded_body(CREATE_PATIENT, LIMIT + 1),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin.token}"},
    )

    assert response.request.headers["content-length"] == str(LIMIT + 1)
    assert_too_large(response)
    assert await Patient.all().count() == 0


async def test_a_streamed_body_over_64_kib_without_content_length_is_413(
    http: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    body = padded_body(CREATE_PATIENT, LIMIT + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = await http.post(
        "/graphql",
        content=chunks(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin.token}"},
    )

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_too_large(response)
    assert await Patient.all().count() == 0


async def test_a_body_of_exactly_64_kib_is_served(
    http: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    body = padded_body(CREATE_PATIENT, LIMIT)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    for content in (body, chunks()):
        response = await http.post(
            "/graphql",
            content=content,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin.token}"},
        )
        assert accepted(response)["data"]["createPatient"]["__typename"] == "PatientCreated"
    assert await Patient.all().count() == 2


# --- Content type -------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(
            lambda q: {
                "content": json.dumps({"query": q}),
                "headers": {"Content-Type": "text/plain"},
            },
            id="text-plain",
        ),
        pytest.param(lambda q: {"data": {"query": q}}, id="form-urlencoded"),
        pytest.param(
            lambda q: {"data": {"query": q}, "files": {"file": ("a.txt", b"x")}},
            id="multipart",
        ),
        pytest.param(lambda q: {"params": {"query": q}}, id="query-string-without-body"),
    ],
)
async def test_a_post_that_is_not_json_is_415_and_not_executed(
    encode: Callable[[str], dict[str, Any]], http: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    request = encode(CREATE_PATIENT)
    headers = {**request.pop("headers", {}), "Authorization": f"Bearer {admin.token}"}

    response = await http.post("/graphql", headers=headers, **request)

    assert response.status_code == 415, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await Patient.all().count() == 0


async def test_json_with_a_charset_is_served(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        content=json.dumps({"query": "{ __typename }"}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert accepted(response)["data"] == {"__typename": "Query"}


# --- Batching and GET ---------------------------------------------------------


async def test_an_array_batch_is_refused_and_nothing_in_it_runs(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    batch = [{"query": CREATE_PATIENT}, {"query": f"{{ {PATIENTS} }}"}]

    response = await http.post(
        "/graphql", json=batch, headers={"Authorization": f"Bearer {admin.token}"}
    )

    assert 400 <= response.status_code < 500, response.text
    assert "PatientCreated" not in response.text and "totalCount" not in response.text
    assert await Patient.all().count() == 0
    assert list_patients_calls.count == 0


async def test_a_query_sent_with_get_is_not_executed(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    response = await http.get(
        "/graphql",
        params={"query": f"{{ {PATIENTS} }}"},
        headers={"Authorization": f"Bearer {admin.token}"},
    )

    assert 400 <= response.status_code < 500, response.text
    assert "totalCount" not in response.text
    assert list_patients_calls.count == 0


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"query": CREATE_PATIENT}, id="query-parameter"),
        pytest.param(
            {
                "query": "mutation M($input: CreatePatientInput!) { createPatient(input: $input) "
                "{ __typename } }",
                "variables": json.dumps({"input": {"firstName": "Limit", "lastName": "Probe"}}),
                "operationName": "M",
            },
            id="with-variables",
        ),
    ],
)
async def test_a_mutation_sent_with_get_never_runs(
    params: dict[str, str], http: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    response = await http.get(
        "/graphql", params=params, headers={"Authorization": f"Bearer {admin.token}"}
    )

    assert 400 <= response.status_code < 500, response.text
    assert await Patient.all().count() == 0


async def test_logout_sent_with_get_does_not_end_the_session(
    http: httpx.AsyncClient, admin: GraphQLClient
) -> None:
    response = await http.get(
        "/graphql",
        params={"query": "mutation { logout }"},
        headers={"Authorization": f"Bearer {admin.token}"},
    )

    assert 400 <= response.status_code < 500, response.text
    me = await admin.data("{ me { email } }")
    assert me["me"] == {"email": "admin@north.example"}


# --- Page size ----------------------------------------------------------------


async def test_first_101_is_bad_user_input_and_100_is_allowed(admin: GraphQLClient) -> None:
    too_many = await admin.post("{ patients(first: 101) { totalCount } }")
    most = await admin.post("{ patients(first: 100) { totalCount } }")

    assert too_many["data"] is None
    assert [e["extensions"]["code"] for e in too_many["errors"]] == ["BAD_USER_INPUT"]
    assert "first" in too_many["errors"][0]["message"]
    assert most == {"data": {"patients": {"totalCount": 0}}}


# --- Limits hold in production too --------------------------------------------


@pytest.fixture(scope="module")
def production_app(settings: Settings) -> Any:
    # Not started: the session's `app` fixture has already set up the ORM.
    return create_app(dataclasses.replace(settings, env="production"))


@pytest.fixture
async def production(production_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=production_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        yield client


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        pytest.param(f"{{ {PATIENTS} {nested(11)} }}", DEPTH_MESSAGE, id="depth"),
        pytest.param(f"{{ {PATIENTS} {aliases(16)} }}", "16 aliases", id="aliases"),
        pytest.param(document_of_tokens(2001), "tokens", id="tokens"),
        pytest.param(f"{{ {PATIENTS} {'__typename ' * 199}}}", "Too many fields", id="fields"),
        pytest.param(f"{{ {PATIENTS} __typename{' @aa' * 6} }}", "directives", id="directives"),
    ],
)
async def test_every_limit_holds_in_production(
    query: str,
    complaint: str,
    production: httpx.AsyncClient,
    admin: GraphQLClient,
    list_patients_calls: Calls,
) -> None:
    rejected(await send(production, admin.token, query), complaint)
    assert list_patients_calls.count == 0


# --- Time budget --------------------------------------------------------------


async def test_a_request_over_its_time_budget_is_503_timeout(
    settings: Settings, admin: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stuck(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)

    monkeypatch.setattr(patients_service, "list_patients", stuck)
    hurried = create_app(dataclasses.replace(settings, request_timeout_seconds=1))
    transport = httpx.ASGITransport(app=hurried)

    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        started = time.monotonic()
        response = await send(http, admin.token, f"{{ {PATIENTS} }}")
        elapsed = time.monotonic() - started

    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
    assert 0.9 <= elapsed < 2.5


async def test_a_chain_of_doubling_fragments_is_refused_at_once(
    http: httpx.AsyncClient, admin: GraphQLClient, list_patients_calls: Calls
) -> None:
    # Each fragment spreads the next twice: 2^40 fields from a 1 KB document.
    # Measuring must not expand it (that would hang the process, beyond the
    # reach of the request's time budget).
    links = 40
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(links)]
    fragments.append(f"fragment F{links} on Query {{ __typename }}")
    query = f"{{ {PATIENTS} ...F0 }}\n" + "\n".join(fragments)

    response = await send(http, admin.token, query)

    rejected(response, "Too many fields")
    assert list_patients_calls.count == 0
