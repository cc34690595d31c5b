"""The app over HTTP, a fresh database per test, a controllable clock and
role-named clients: anonymous, patient, clinician, admin."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tortoise.connection import connections

from models import Account, Patient, Practice, Role
from portal import clock as portal_clock
from portal import db
from portal.app import create_app
from portal.settings import Settings
from tests import factories

TABLES = ["session", "account", "patient", "practice"]

LOGIN = """
mutation Login($practice: String!, $email: String!, $password: String!) {
  login(practice: $practice, email: $email, password: $password) {
    __typename
    ... on LoginSuccess { token expiresAt account { id email role } }
    ... on Error { code message }
  }
}
"""


def _database_url(tmp: Path) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite://{tmp / 'portal.sqlite3'}"


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=_database_url(tmp_path_factory.mktemp("db")),
        secret_key="test-only-key-" + "k" * 40,
        base_url="https://portal.test",
        # Cheap argon2 keeps the suite fast; production uses the OWASP defaults.
        argon2_memory_kib=1024,
        argon2_time_cost=1,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    await db.migrate(settings.database_url)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(autouse=True)
async def clean_database(app: Starlette) -> AsyncIterator[None]:
    yield
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script(f"TRUNCATE {', '.join(TABLES)} CASCADE")
    else:
        for table in TABLES:
            await connection.execute_script(f"DELETE FROM {table}")


@dataclass
class FrozenClock:
    current: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    frozen = FrozenClock()
    portal_clock.set_clock(frozen.now)
    yield frozen
    portal_clock.set_clock(None)


class GraphQLClient:
    """Speaks to /graphql as a front end would: JSON over POST, bearer token."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token

    async def post(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """The data of a request that must succeed without top-level errors."""
        body = await self.post(query, **variables)
        assert "errors" not in body, body["errors"]
        result: dict[str, Any] = body["data"]
        return result

    async def login(self, practice: str, email: str, password: str) -> GraphQLClient:
        result = await self.data(LOGIN, practice=practice, email=email, password=password)
        assert result["login"]["__typename"] == "LoginSuccess", result
        return GraphQLClient(self.http, result["login"]["token"])


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        yield client


@pytest.fixture
def anonymous(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture
async def practice() -> Practice:
    return await factories.make_practice(slug="north", name="North Street Practice")


@pytest.fixture
async def other_practice() -> Practice:
    return await factories.make_practice(slug="south", name="South Bank Practice")


@pytest.fixture
async def admin_account(practice: Practice) -> Account:
    return await factories.make_staff(practice, Role.ADMIN, email="admin@north.example")


@pytest.fixture
async def admin(anonymous: GraphQLClient, admin_account: Account) -> GraphQLClient:
    return await anonymous.login("north", admin_account.email, factories.PASSWORD)


@pytest.fixture
async def clinician(anonymous: GraphQLClient, practice: Practice) -> GraphQLClient:
    account = await factories.make_staff(practice, Role.CLINICIAN, email="clin@north.example")
    return await anonymous.login("north", account.email, factories.PASSWORD)


@pytest.fixture
async def patient_profile(practice: Practice) -> Patient:
    return await factories.make_patient(
        practice, first_name="Grace", last_name="Hopper", email="grace@mail.example"
    )


@pytest.fixture
async def patient(anonymous: GraphQLClient, patient_profile: Patient) -> GraphQLClient:
    account = await factories.make_patient_account(patient_profile)
    return await anonymous.login("north", account.email, factories.PASSWORD)


@pytest.fixture
async def other_admin(anonymous: GraphQLClient, other_practice: Practice) -> GraphQLClient:
    account = await factories.make_staff(other_practice, Role.ADMIN, email="admin@south.example")
    return await anonymous.login("south", account.email, factories.PASSWORD)


class QueryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@pytest.fixture
def sql_queries() -> Iterator[QueryCounter]:
    """Counts the SQL statements the ORM sends while the test runs."""
    counter = QueryCounter()
    logger = logging.getLogger("tortoise.db_client")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    yield counter
    logger.removeHandler(counter)
    logger.setLevel(previous)
