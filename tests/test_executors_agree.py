"""Compiled plans answer exactly as the standard executor does.

Every query operation the test suite writes down (its module constants), with
a few sets of variables each, and queries generated from `schema.graphql` by
hypothesis-graphql, run through both executors as each role: anonymous, a
patient, a clinician, an admin, and an admin of another practice. The two
answers must be the same: status, data, errors (messages, paths, codes), and
the audit rows each writes. Whatever a plan cannot answer exactly (every
answer with errors) falls back to the standard executor, so its errors and
audit rows are the standard executor's by construction; the test checks that
plans answer nearly everything they could.

`DIFFERENTIAL_EXAMPLES` sets the generated queries per role (`.ci/run` runs more).
"""

from __future__ import annotations

import ast
import dataclasses
import gc
import itertools
import json
import logging
import os
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import hypothesis_graphql
import pytest
from graphql import (
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    parse,
    print_ast,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from starlette.applications import Starlette

from graph import web_documents
from graph.trusted import document_id
from models import AuditEvent, OutboxMessage, Patient, Practice, Role
from portal.app import create_app
from portal.services import accounts
from portal.settings import Settings
from tests import factories
from tests.conftest import LOGIN

TESTS = Path(__file__).parent
SCHEMA = TESTS.parent / "schema.graphql"
EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES") or "60")
ROLES = ("anonymous", "patient", "clinician", "admin", "other practice")

# When a refusal nulls the whole response, graphql-core leaves the resolvers
# running beside it unawaited, and Python says so when it collects them; that
# is the standard executor's way with generated queries, not a plan's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <coroutine object "
        "(GraphQLCoreConverter|PermissionExtension|Executor):pytest.PytestUnraisableExceptionWarning"
    ),
]
SEND_INVITATION = "mutation ($id: ID!) { sendInvitation(patientId: $id) { __typename } }"


def suite_operations() -> list[str]:
    """Every query document written as a module constant in the test suite."""
    found = set()
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
                continue
            text = node.value.value
            if not isinstance(text, str) or "{" not in text:
                continue
            try:
                document = parse(text)
            except GraphQLError:
                continue
            if any(
                isinstance(d, OperationDefinitionNode) and d.operation is OperationType.QUERY
                for d in document.definitions
            ) and not any(
                isinstance(d, OperationDefinitionNode) and d.operation is not OperationType.QUERY
                for d in document.definitions
            ):
                found.add(text)
    return sorted(found)


def generated_queries(count: int) -> list[str]:
    """Queries drawn from the published schema, the same ones on every run."""
    dates = st.dates().map(lambda d: StringValueNode(value=d.isoformat()))
    times = st.datetimes().map(lambda t: StringValueNode(value=f"{t.isoformat()}+00:00"))
    strategy = hypothesis_graphql.queries(
        SCHEMA.read_text(), custom_scalars={"Date": dates, "DateTime": times}
    )
    drawn: list[str] = []

    @hypothesis_settings(
        max_examples=count,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(query: Any) -> None:
        drawn.append(str(query))

    collect()
    return drawn


@dataclass
class World:
    """Two practices with staff, patients in every portal state, and an audit trail."""

    tokens: dict[str, str | None]
    north_patients: list[Patient]
    south_patient: Patient
    own_patient: Patient
    invitation_token: str


@pytest.fixture
def standard(settings: Settings) -> Starlette:
    """The same service with plans turned off (not started: the ORM is up already)."""
    return create_app(dataclasses.replace(settings, compiled_execution=False))


@pytest.fixture
async def standard_http(standard: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=standard)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        yield client


async def sign_in(http: httpx.AsyncClient, practice: str, email: str) -> str:
    response = await http.post(
        "/graphql",
        json={
            "query": LOGIN,
            "variables": {"practice": practice, "email": email, "password": factories.PASSWORD},
        },
    )
    token: str = response.json()["data"]["login"]["token"]
    return token


@pytest.fixture
async def world(http: httpx.AsyncClient, practice: Practice, other_practice: Practice) -> World:
    admin = await factories.make_staff(practice, Role.ADMIN, email="admin@north.example")
    clinician = await factories.make_staff(practice, Role.CLINICIAN, email="clin@north.example")
    south_admin = await factories.make_staff(other_practice, Role.ADMIN, email="a@south.example")
    grace = await factories.make_patient(
        practice, first_name="Grace", last_name="Hopper", email="grace@mail.example"
    )
    await factories.make_patient_account(grace)
    north = [grace]
    for first, last in (("Ada", "Lovelace"), ("Alan", "Turing"), ("Édith", "Piaf")):
        north.append(await factories.make_patient(practice, first_name=first, last_name=last))
    north.append(
        await factories.make_patient(
            practice, first_name="Radia", last_name="Perlman", email=None, phone=None
        )
    )
    south = await factories.make_patient(other_practice, first_name="Zelda", last_name="South")
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "patient": await sign_in(http, "north", "grace@mail.example"),
        "clinician": await sign_in(http, "north", clinician.email),
        "admin": await sign_in(http, "north", admin.email),
        "other practice": await sign_in(http, "south", south_admin.email),
    }
    await http.post(
        "/graphql",
        json={"query": SEND_INVITATION, "variables": {"id": str(north[1].id)}},
        headers={"Authorization": f"Bearer {tokens['admin']}"},
    )
    outbox = await OutboxMessage.get(to_address=north[1].email)
    found = re.search(r"token=([\w-]+)", outbox.text_body)
    assert found, outbox.text_body
    return World(tokens, north, south, grace, found.group(1))


def variable_sets(query: str, world: World) -> list[dict[str, Any]]:
    """A few sets of values for the operation's variables, chosen by name and type."""
    [operation] = [d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode)][
        :1
    ]
    candidates: dict[str, list[Any]] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        type_text = print_ast(definition.type)
        lowered = name.lower()
        if "ID" in type_text:
            candidates[name] = [
                str(world.north_patients[1].id),
                str(world.south_patient.id),
                str(world.own_patient.id),
                str(uuid.uuid4()),
            ]
        elif lowered == "token":
            candidates[name] = [world.invitation_token, "not-a-token"]
        elif "Int" in type_text:
            candidates[name] = [2, 100, 0]
        elif lowered == "search":
            candidates[name] = ["love", "555", None, "%"]
        elif lowered == "after":
            candidates[name] = [None, "cGF0aWVudDpub3BlLW5vcGU"]
        elif "Boolean" in type_text:
            candidates[name] = [True, False]
        else:
            candidates[name] = ["x"]
    if not candidates:
        return [{}]
    width = max(len(values) for values in candidates.values())
    return [
        {name: values[i % len(values)] for name, values in candidates.items()} for i in range(width)
    ]


class Executors(logging.Handler):
    """Which executor answered each request (from the request log line)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str | None] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(getattr(record, "executor", None))


@pytest.fixture
def executors() -> Iterator[Executors]:
    handler = Executors()
    logger = logging.getLogger("portal.request")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


async def audit_rows_after(before: set[uuid.UUID]) -> list[tuple[Any, ...]]:
    rows = await AuditEvent.exclude(id__in=list(before)).order_by("occurred_at")
    return [(r.action, r.account_id, r.role, r.patient_id) for r in rows]


async def answer(
    http: httpx.AsyncClient, token: str | None, body: dict[str, Any]
) -> tuple[int, Any, list[tuple[Any, ...]]]:
    before = set(await AuditEvent.all().values_list("id", flat=True))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post("/graphql", json=body, headers=headers)
    payload = response.json()
    errors = sorted(json.dumps(e, sort_keys=True) for e in payload.get("errors") or [])
    return response.status_code, (payload.get("data"), errors), await audit_rows_after(before)


async def agree(
    compiled_http: httpx.AsyncClient,
    standard_http: httpx.AsyncClient,
    executors: Executors,
    world: World,
    queries: list[str],
    with_variables: bool,
) -> Counter[str]:
    """Asks both; how many answers came from plans, and how many fell back."""
    outcomes: Counter[str] = Counter()
    for query, role in itertools.product(queries, ROLES):
        token = world.tokens[role]
        for variables in variable_sets(query, world) if with_variables else [{}]:
            body = {"query": query, "variables": variables}
            compiled = await answer(compiled_http, token, body)
            planned = executors.seen[-1] == "compiled"
            standard = await answer(standard_http, token, body)
            if planned:
                assert compiled == standard, (role, query, variables)
            else:
                # Both answers came from the standard executor, which reports
                # the errors of fields running beside one that nulls the
                # whole response only as far as they got: compare the data.
                assert compiled[:2][0] == standard[0], (role, query, variables)
                assert compiled[1][0] == standard[1][0], (role, query, variables)
            outcomes["planned" if planned else "fell back"] += 1
            outcomes["errors" if compiled[1][1] else "data"] += 1
    # The unawaited resolvers are collected here, where their warnings are expected.
    gc.collect()
    return outcomes


async def test_the_suites_queries_get_the_same_answers_from_both_executors(
    http: httpx.AsyncClient,
    standard_http: httpx.AsyncClient,
    world: World,
    executors: Executors,
) -> None:
    queries = suite_operations()
    assert len(queries) >= 10, "the suite's operations were not found"

    outcomes = await agree(http, standard_http, executors, world, queries, with_variables=True)

    assert outcomes["data"] > 0
    # Every answer without errors could come from a plan, and most do.
    assert outcomes["planned"] >= outcomes["data"] * 0.9, outcomes


async def test_generated_queries_get_the_same_answers_from_both_executors(
    http: httpx.AsyncClient,
    standard_http: httpx.AsyncClient,
    world: World,
    executors: Executors,
) -> None:
    queries = generated_queries(EXAMPLES)

    outcomes = await agree(http, standard_http, executors, world, queries, with_variables=False)

    assert outcomes["planned"] >= outcomes["data"] * 0.9, outcomes


SHAPES = {
    "aliases and a fragment": """
        query($first: Int!) {
          first: patients(first: $first) { edges { node { ...Names } } }
          again: patients(first: 1) { edges { node { ...Names email } } }
        }
        fragment Names on Patient { id firstName lastName }
    """,
    "totalCount and pageInfo": """
        query($first: Int!) {
          patients(first: $first) {
            totalCount
            edges { cursor node { id lastName phone dateOfBirth } }
            pageInfo { hasNextPage endCursor }
          }
        }
    """,
    "portal": """
        query($first: Int!) {
          patients(first: $first) {
            edges { node { id portal { status invitedAt signedUpAt } } }
          }
        }
    """,
    "patient by id": """
        query($id: ID!) { patient(id: $id) { id firstName lastName email } }
    """,
    "me and practice": "query { me { id email role practice { id name slug } } }",
    "audit trail": """
        query($first: Int!) {
          auditEvents(first: $first) {
            edges { node { id action occurredAt actorRole patientId } }
            pageInfo { hasNextPage }
          }
        }
    """,
}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
async def test_every_shape_of_query_an_admin_sends_is_answered_by_a_plan(
    http: httpx.AsyncClient,
    standard_http: httpx.AsyncClient,
    world: World,
    executors: Executors,
    shape: str,
) -> None:
    token = world.tokens["admin"]
    given = {"first": 3, "id": str(world.north_patients[0].id)}
    body = {"query": shape, "variables": {k: v for k, v in given.items() if f"${k}" in shape}}

    compiled = await answer(http, token, body)

    assert executors.seen[-1] == "compiled"
    assert compiled[1][1] == [], compiled
    assert compiled == await answer(standard_http, token, body)


# --- Mutations with a plan: sign-in -------------------------------------------

SIGN_IN_SHAPES = {
    "the suite's": LOGIN,
    "aliases and a named fragment": """
        mutation ($practice: String!, $email: String!, $password: String!) {
          signedIn: login(practice: $practice, email: $email, password: $password) {
            kind: __typename
            ...Success
            ... on RateLimitedError { code retryAfterSeconds }
            ... on Error { message }
          }
        }
        fragment Success on LoginSuccess { sessionToken: token account { role id } }
    """,
    "the type alone": """
        mutation ($practice: String!, $email: String!, $password: String!) {
          login(practice: $practice, email: $email, password: $password) { __typename }
        }
    """,
}
# What no plan answers (the account's practice is read from the database).
SIGN_IN_READING_MORE = """
    mutation ($practice: String!, $email: String!, $password: String!) {
      login(practice: $practice, email: $email, password: $password) {
        ... on LoginSuccess { account { practice { name } } }
      }
    }
"""
ATTEMPTS = [
    ("north", "admin@north.example", factories.PASSWORD),
    ("north", " ADMIN@North.Example ", factories.PASSWORD),
    ("north", "admin@north.example", "not-the-password"),
    ("nowhere", "admin@north.example", factories.PASSWORD),
    ("north", "not an address", "x"),
]


def without_secrets(answer: tuple[int, Any, list[tuple[Any, ...]]]) -> Any:
    """An answer with each new session's token and expiry in placeholders."""
    text = json.dumps(answer[1])
    text = re.sub(r'"(token|sessionToken)": "[^"]+"', r'"\1": "…"', text)
    text = re.sub(r'"expiresAt": "[^"]+"', '"expiresAt": "…"', text)
    return answer[0], json.loads(text), answer[2]


@pytest.mark.parametrize("shape", SIGN_IN_SHAPES.values(), ids=SIGN_IN_SHAPES.keys())
async def test_sign_ins_get_the_same_answers_from_both_executors(
    http: httpx.AsyncClient,
    standard_http: httpx.AsyncClient,
    world: World,
    executors: Executors,
    shape: str,
) -> None:
    # Past the lockout, on the last round, both are refused alike.
    for practice, email, password in ATTEMPTS * 3:
        variables = {"practice": practice, "email": email, "password": password}
        body = {"query": shape, "variables": variables}

        compiled = await answer(http, None, body)
        assert executors.seen[-1] == "compiled", variables
        standard = await answer(standard_http, None, body)

        assert without_secrets(compiled) == without_secrets(standard), variables


async def test_a_sign_in_that_fails_unexpectedly_is_masked_alike(
    http: httpx.AsyncClient,
    standard_http: httpx.AsyncClient,
    world: World,
    executors: Executors,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "a bug quoting " + "admin@north.example"

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(secret)

    monkeypatch.setattr(accounts, "login", broken)
    variables = {"practice": "north", "email": "admin@north.example", "password": "x"}
    body = {"query": LOGIN, "variables": variables}

    compiled = await answer(http, None, body)
    assert executors.seen[-1] == "compiled"
    standard = await answer(standard_http, None, body)

    assert compiled == standard
    assert compiled[1][0] is None
    assert [json.loads(e)["extensions"]["code"] for e in compiled[1][1]] == [
        "INTERNAL_SERVER_ERROR"
    ]
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 2 and all("RuntimeError" in r.getMessage() for r in logged)
    assert secret not in caplog.text


async def test_a_sign_in_selecting_what_the_database_holds_runs_on_the_standard_executor(
    http: httpx.AsyncClient, world: World, executors: Executors
) -> None:
    variables = {
        "practice": "north",
        "email": "admin@north.example",
        "password": factories.PASSWORD,
    }

    status, (data, errors), _ = await answer(
        http, None, {"query": SIGN_IN_READING_MORE, "variables": variables}
    )

    assert executors.seen[-1] == "standard"
    assert (status, errors) == (200, [])
    assert data["login"]["account"]["practice"]["name"]


WEB_HEADERS = {"X-Portal-Client": "web", "Origin": "https://portal.test"}


async def test_a_web_sign_in_gets_the_same_answer_and_cookie_from_both_executors(
    http: httpx.AsyncClient, standard_http: httpx.AsyncClient, world: World, executors: Executors
) -> None:
    web_sign_in = web_documents.documents()["SignIn"]
    for practice, email, password in ATTEMPTS:
        body = {
            "documentId": document_id(web_sign_in),
            "variables": {"practice": practice, "email": email, "password": password},
        }
        compiled = await http.post("/graphql", json=body, headers=WEB_HEADERS)
        assert executors.seen[-1] == "compiled", email
        standard = await standard_http.post("/graphql", json=body, headers=WEB_HEADERS)

        assert compiled.status_code == standard.status_code
        assert compiled.json() == standard.json(), email
        cookies = [
            [
                part
                for part in response.headers.get("set-cookie", "").split("; ")
                if not part.startswith("portal_session=")
            ]
            for response in (compiled, standard)
        ]
        assert cookies[0] == cookies[1], email
        signed_in = compiled.json()["data"]["login"]["__typename"] == "LoginSuccess"
        assert ("set-cookie" in compiled.headers) == signed_in
        assert ("set-cookie" in standard.headers) == signed_in
