"""The app over HTTP, a fresh database per test, a controllable clock and
role-named clients: anonymous, patient, clinician, admin."""

from __future__ import annotations

import email
import email.policy
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from starlette.applications import Starlette
from tortoise.connection import connections

from models import Account, Patient, Practice, Role
from portal import clock as portal_clock
from portal import db
from portal.app import create_app
from portal.mail import delivery
from portal.mail.delivery import DeliveryRound
from portal.services.patients import common_short_terms
from portal.settings import Settings
from tests import factories

TABLES = [
    "audit_event",
    "audit_chain",
    "worker_heartbeat",
    "throttle_counter",
    "mfa_challenge",
    "mfa_recovery_code",
    "reset_token",
    "verification_code",
    "outbox_message",
    "invitation",
    "session",
    "account",
    "patient",
    "practice",
]

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


class Mailbox:
    """What the test SMTP server received, parsed as the recipient would read it."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@dataclass
class SmtpServer:
    """A real SMTP server (aiosmtpd) on a local port; `down()` simulates an outage."""

    port: int
    mailbox: Mailbox
    controller: Controller | None = None

    def up(self) -> None:
        if self.controller is None:
            self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
            self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(port=free_port(), mailbox=Mailbox())
    server.up()
    yield server
    server.down()


@pytest.fixture
def mailbox(smtp_server: SmtpServer) -> Iterator[Mailbox]:
    smtp_server.up()
    smtp_server.mailbox.messages.clear()
    yield smtp_server.mailbox
    smtp_server.up()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, smtp_server: SmtpServer) -> Settings:
    return Settings(
        database_url=_database_url(tmp_path_factory.mktemp("db")),
        secret_key="test-only-key-" + "k" * 40,
        base_url="https://portal.test",
        # Cheap argon2 keeps the suite fast; production uses the OWASP defaults.
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        smtp_url=f"smtp://127.0.0.1:{smtp_server.port}",
        mail_from="Client Portal <no-reply@portal.test>",
        # Tests deliver mail when they choose to, with `deliver_mail`.
        mail_worker=False,
        # Tests do not wait out the timing floor of recovery answers.
        recovery_response_floor=timedelta(0),
        # Tests seal the audit trail when they choose to.
        audit_seal_seconds=0,
    )


@pytest.fixture
def deliver_mail(settings: Settings) -> Callable[[], Awaitable[DeliveryRound]]:
    """Runs one delivery worker until nothing is due."""

    async def deliver() -> DeliveryRound:
        return await delivery.drain(settings)

    return deliver


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    await db.migrate(settings.database_url)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(autouse=True)
async def clean_database(app: Starlette) -> AsyncIterator[None]:
    yield
    # What a test's outage taught the process is forgotten with its data.
    db.availability.forget()
    common_short_terms.forget()
    await empty_tables()


# The audit trail's triggers let rows go only while a prune permit is present.
PERMIT = "INSERT INTO audit_prune_permit (granted_at) VALUES ('2000-01-01T00:00:00+00:00')"


async def empty_tables() -> None:
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script(
            f"{PERMIT}; TRUNCATE {', '.join(TABLES)}, audit_prune_permit CASCADE"
        )
    else:
        await connection.execute_script(PERMIT)
        for table in TABLES:
            await connection.execute_script(f"DELETE FROM {table}")
        await connection.execute_script("DELETE FROM audit_prune_permit")


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
async def web() -> AsyncIterator[httpx.AsyncClient]:
    """A client over real HTTP, for `portal` processes (`http` goes through ASGI in-process)."""
    async with httpx.AsyncClient(timeout=30) as client:
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
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.texts.append(str(record.msg))


@pytest.fixture
def sql_queries() -> Iterator[QueryCounter]:
    """Counts the SQL statements sent while the test runs: the ORM's, and the
    hand-written ones of the request path."""
    counter = QueryCounter()
    loggers = [logging.getLogger("tortoise.db_client"), logging.getLogger("portal.sql")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(counter)
    yield counter
    for logger, level in zip(loggers, previous, strict=True):
        logger.removeHandler(counter)
        logger.setLevel(level)
