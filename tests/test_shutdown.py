"""SIGTERM, as an orchestrator sends it: requests in flight finish, nothing new
is taken, the mail worker stops after the message it is sending and hands the
rest back, and the process is gone within PORTAL_SHUTDOWN_GRACE_SECONDS, even
with a mail server that accepts connections and never answers."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.faults import SilentSmtpServer
from tests.processes import Cluster, graphql_body

GRACE_SECONDS = 3
# Interpreter start-up and teardown, beyond the grace period proper.
EXIT_MARGIN_SECONDS = 2
PRACTICE = "calm"
PASSWORD = "lunar-teapot-orchestra-91"
ADMIN_EMAIL = "admin@calm.example"
INVITED = [f"invited{n}@mail.example" for n in range(3)]

LOGIN = """
mutation ($practice: String!, $email: String!, $password: String!) {
  login(practice: $practice, email: $email, password: $password) {
    ... on LoginSuccess { token }
  }
}
"""
CREATE_AND_INVITE = """
mutation ($input: CreatePatientInput!) {
  createPatient(input: $input) { ... on PatientCreated { patient { id } } }
}
"""
SEND_INVITATION = "mutation ($id: ID!) { sendInvitation(patientId: $id) { __typename } }"
REQUEST_CODE = """
mutation ($practice: String!, $email: String!) {
  requestVerificationCode(practice: $practice, email: $email) { __typename }
}
"""


@pytest.fixture
def silent_smtp() -> Iterator[SilentSmtpServer]:
    server = SilentSmtpServer()
    yield server
    server.close()


@pytest.fixture
def cluster(tmp_path: Path, silent_smtp: SilentSmtpServer) -> Iterator[Cluster]:
    cluster = Cluster(
        tmp_path,
        f"sqlite://{tmp_path / 'portal.sqlite3'}",
        silent_smtp.port,
        PORTAL_MAIL_WORKER="on",
        PORTAL_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
        # Far longer than the grace period: only cutting the send short helps.
        PORTAL_SMTP_TIMEOUT_SECONDS="60",
        PORTAL_MAIL_LEASE_SECONDS="120",
    )
    cluster.set_up(PRACTICE, {ADMIN_EMAIL: "ADMIN"}, PASSWORD)
    yield cluster
    cluster.stop_all()


def outbox(cluster: Cluster) -> list[tuple[str, str | None, int]]:
    path = cluster.database_url.removeprefix("sqlite://")
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT status, leased_by, attempts FROM outbox_message ORDER BY to_address"
        ).fetchall()
    return [(str(status), leased_by, int(attempts)) for status, leased_by, attempts in rows]


async def queue_invitations(web: httpx.AsyncClient, url: str) -> None:
    login = await web.post(
        f"{url}/graphql",
        json={
            "query": LOGIN,
            "variables": {"practice": PRACTICE, "email": ADMIN_EMAIL, "password": PASSWORD},
        },
    )
    headers = {"Authorization": f"Bearer {login.json()['data']['login']['token']}"}
    for address in INVITED:
        created = await web.post(
            f"{url}/graphql",
            json={
                "query": CREATE_AND_INVITE,
                "variables": {"input": {"firstName": "Ada", "lastName": "X", "email": address}},
            },
            headers=headers,
        )
        patient_id = created.json()["data"]["createPatient"]["patient"]["id"]
        sent = await web.post(
            f"{url}/graphql",
            json={"query": SEND_INVITATION, "variables": {"id": patient_id}},
            headers=headers,
        )
        assert sent.json()["data"]["sendInvitation"]["__typename"] == "InvitationSent"


async def until(condition: object, seconds: float = 20) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_sigterm_drains_requests_stops_mail_and_exits_within_the_grace_period(
    cluster: Cluster, silent_smtp: SilentSmtpServer
) -> None:
    server, url = cluster.serve(PORTAL_RECOVERY_RESPONSE_FLOOR_MS="1500")
    async with httpx.AsyncClient(timeout=30) as web, httpx.AsyncClient(timeout=30) as kept:
        await queue_invitations(web, url)
        # The worker has claimed the batch and is stuck on its first message.
        await until(lambda: silent_smtp.connections)
        assert (await kept.get(f"{url}/health")).status_code == 200  # a kept-alive connection
        in_flight = asyncio.create_task(
            web.post(
                f"{url}/graphql",
                json={"query": REQUEST_CODE, "variables": {"practice": PRACTICE, "email": "x@y.z"}},
            )
        )
        await asyncio.sleep(0.3)  # the request is being answered (it takes 1.5 s)

        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        try:
            late: httpx.Response | None = await kept.post(
                f"{url}/graphql", json={"query": "{ __typename }"}
            )
        except httpx.TransportError:
            late = None  # the connection was closed: refused, as it should be
        answered = await in_flight
        exit_code = await asyncio.to_thread(server.wait, GRACE_SECONDS + EXIT_MARGIN_SECONDS)
        took = time.monotonic() - signalled

    assert answered.status_code == 200
    assert graphql_body(answered)["data"]["requestVerificationCode"]["__typename"] == (
        "VerificationCodeSent"
    )
    if late is not None:
        assert late.status_code == 503
        assert graphql_body(late)["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert late.headers["connection"] == "close"
    # uvicorn ends by the signal it was sent, once its graceful shutdown is complete.
    assert exit_code == -signal.SIGTERM, cluster.logs()
    assert "Application shutdown complete" in cluster.log_of(server)
    assert took < GRACE_SECONDS + EXIT_MARGIN_SECONDS
    # Nothing was sent, nothing counts as an attempt, and nothing waits for a lease.
    assert outbox(cluster) == [("PENDING", None, 0)] * len(INVITED)
    assert "cut short by shutdown" in cluster.log_of(server)


async def test_a_separate_mail_worker_stops_within_the_grace_period_too(
    cluster: Cluster, silent_smtp: SilentSmtpServer
) -> None:
    _, url = cluster.serve(PORTAL_MAIL_WORKER="off")
    async with httpx.AsyncClient(timeout=30) as web:
        await queue_invitations(web, url)
    worker = cluster.start("deliver-mail")
    await until(lambda: silent_smtp.connections)

    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    exit_code = await asyncio.to_thread(worker.wait, GRACE_SECONDS + EXIT_MARGIN_SECONDS)
    took = time.monotonic() - signalled

    assert exit_code == 0, cluster.logs()
    assert took < GRACE_SECONDS + EXIT_MARGIN_SECONDS
    assert outbox(cluster) == [("PENDING", None, 0)] * len(INVITED)
