"""Trusted documents: the operations a practice's own clients send, listed in a
manifest (`PORTAL_TRUSTED_DOCUMENTS`), sent by `documentId`; in production,
with a manifest, nothing else runs."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph.trusted import document_id
from graph.view import GraphQLEndpoint
from models import Account, AuditEvent, Patient, Practice, ThrottleCounter
from portal.app import create_app
from portal.settings import Settings, SettingsError
from tests import factories
from tests.conftest import LOGIN
from tests.test_cli import Cli, assert_ok, assert_one_line_failure

ME = "query Me { me { id email role } }"
PATIENTS = """
query Patients($first: Int!, $withCount: Boolean!) {
  patients(first: $first) {
    totalCount @include(if: $withCount)
    edges { node { id firstName lastName } }
  }
}
"""
UNLISTED = "query Unlisted { me { id practice { name } } }"
CREATE_PATIENT = """
mutation Create($input: CreatePatientInput!) {
  createPatient(input: $input) { __typename }
}
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clients") / "trusted-documents.json"
    path.write_text(json.dumps({document_id(d): d for d in (ME, PATIENTS, LOGIN)}))
    return path


def client_for(app: Any) -> httpx.AsyncClient:
    # A second app shares the session app's database connection (one Tortoise
    # context per process), so it is not started itself.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test")


@pytest.fixture
async def development(settings: Settings, manifest: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(
        create_app(dataclasses.replace(settings, trusted_documents=manifest))
    ) as c:
        yield c


@pytest.fixture
async def production(settings: Settings, manifest: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dataclasses.replace(settings, env="production", trusted_documents=manifest))
    async with client_for(app) as client:
        yield client


async def send(
    client: httpx.AsyncClient, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post("/graphql", json=body, headers=headers)


async def token_for(client: httpx.AsyncClient) -> str:
    response = await send(
        client,
        {
            "documentId": document_id(LOGIN),
            "variables": {
                "practice": "north",
                "email": "admin@north.example",
                "password": factories.PASSWORD,
            },
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["login"]["token"]
    return token


def refused(response: httpx.Response, code: str) -> bool:
    body = response.json()
    return (
        response.status_code == 400
        and "data" not in body
        and [e["extensions"]["code"] for e in body["errors"]] == [code]
    )


async def test_a_client_sends_queries_and_mutations_by_document_id(
    production: httpx.AsyncClient, admin_account: Account, practice: Practice
) -> None:
    await factories.make_patient(practice, first_name="Ada", last_name="Lovelace")
    token = await token_for(production)

    me = await send(production, {"documentId": document_id(ME)}, token)
    page = await send(
        production,
        {"documentId": document_id(PATIENTS), "variables": {"first": 5, "withCount": True}},
        token,
    )

    assert me.json() == {
        "data": {"me": {"id": str(admin_account.id), "email": admin_account.email, "role": "ADMIN"}}
    }
    assert page.json()["data"]["patients"]["totalCount"] == 1
    assert page.json()["data"]["patients"]["edges"][0]["node"]["lastName"] == "Lovelace"


async def test_the_text_of_a_trusted_document_is_accepted_too(
    production: httpx.AsyncClient, admin_account: Account
) -> None:
    token = await token_for(production)

    response = await send(production, {"query": ME}, token)

    assert response.json()["data"]["me"]["email"] == admin_account.email


async def test_in_production_nothing_else_runs(
    production: httpx.AsyncClient, admin_account: Account, practice: Practice
) -> None:
    token = await token_for(production)
    audited = await AuditEvent.all().count()
    counters = await ThrottleCounter.all().count()

    answers = [
        await send(production, {"query": UNLISTED}, token),
        await send(production, {"query": ME + " "}, token),  # not the same text
        await send(production, {"query": CREATE_PATIENT, "variables": {"input": {}}}, token),
        await send(
            production,
            {
                "query": LOGIN.replace("Login", "Guess"),
                "variables": {"practice": "north", "email": "x@north.example", "password": "p"},
            },
        ),
        await send(production, {"documentId": "sha256:" + "0" * 64}, token),
        await send(production, {"documentId": document_id(UNLISTED)}, token),
        await send(production, {"documentId": ME}, token),
    ]

    for response in answers:
        assert refused(response, "PERSISTED_DOCUMENT_NOT_FOUND"), response.text
    assert "documentId" in answers[0].json()["errors"][0]["message"]
    assert await Patient.all().count() == 0
    assert await AuditEvent.all().count() == audited
    assert await ThrottleCounter.all().count() == counters


async def test_in_development_other_queries_still_run(
    development: httpx.AsyncClient, admin_account: Account
) -> None:
    token = await token_for(development)

    by_text = await send(development, {"query": UNLISTED}, token)
    unknown = await send(development, {"documentId": document_id(UNLISTED)}, token)

    assert by_text.json()["data"]["me"]["practice"]["name"] == "North Street Practice"
    assert refused(unknown, "PERSISTED_DOCUMENT_NOT_FOUND")


async def test_a_document_id_with_a_different_query_is_refused(
    development: httpx.AsyncClient, admin_account: Account
) -> None:
    token = await token_for(development)

    response = await send(development, {"documentId": document_id(ME), "query": UNLISTED}, token)

    assert refused(response, "BAD_USER_INPUT")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "is not JSON"),
        ('["query { me { id } }"]', "must be a JSON object"),
        (json.dumps({"sha256:" + "0" * 64: ME}), "is not the SHA-256 of its document"),
        (json.dumps({"me": ME}), "is not"),
        (json.dumps({document_id("query { nothing }"): "query { nothing }"}), "not valid"),
    ],
    ids=["not JSON", "not an object", "wrong hash", "not an id", "invalid document"],
)
def test_a_manifest_that_cannot_be_trusted_stops_the_start(
    settings: Settings, tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)

    with pytest.raises(SettingsError, match=problem):
        create_app(dataclasses.replace(settings, env="production", trusted_documents=path))


def test_codegen_manifests_with_bare_hashes_load(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps({document_id(ME).removeprefix("sha256:"): ME}))

    create_app(dataclasses.replace(settings, trusted_documents=path))


def test_the_cli_writes_the_manifest_of_graphql_files(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    (tmp_path / "me.graphql").write_text(ME)
    (tmp_path / "patients.graphql").write_text(PATIENTS)

    result = cli.run("trusted-documents", "me.graphql", "patients.graphql")

    assert_ok(result)
    assert json.loads(result.stdout) == {document_id(ME): ME, document_id(PATIENTS): PATIENTS}
    assert_one_line_failure(cli.run("trusted-documents", "missing.graphql"), "trusted-documents")


def test_trusted_documents_are_planned_at_start_up(settings: Settings, manifest: Path) -> None:
    endpoint = GraphQLEndpoint(dataclasses.replace(settings, trusted_documents=manifest))

    me = endpoint.planner.pinned[document_id(ME)]
    patients = endpoint.planner.pinned[document_id(PATIENTS)]
    assert [plan is not None for plan in me.plans.values()] == [True]
    # @include(if: $withCount) shapes the plan: planned once the variable is known.
    assert patients.plans == {}
