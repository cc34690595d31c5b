"""The database goes away, goes silent, or slows to a crawl under a running
`portal serve`: what callers see, and that the service (its mail worker
included) recovers by itself and says so once in its log.

Faults are real: a TCP proxy between the service and PostgreSQL that stops
listening or silently swallows open connections, backends ended with
`pg_terminate_backend`, and locks held by another session. PostgreSQL only;
each test starts its own `portal serve` on a fresh database.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from tortoise.backends.asyncpg.client import TransactionWrapper
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from portal.db import DatabaseUnavailable, Sql, reading
from portal.settings import Settings
from tests.conftest import Mailbox, SmtpServer
from tests.faults import TcpProxy
from tests.processes import (
    TEST_DATABASE_URL,
    Cluster,
    fresh_postgres_database,
    graphql_body,
    postgres_only,
    psql,
)

pytestmark = postgres_only

PRACTICE = "outage"
PASSWORD = "lunar-teapot-orchestra-91"
ADMIN_EMAIL = "admin@outage.example"
RECOVERY_SECONDS = 30
LOCK_HOLDER = "outage-test-lock"
NOT_ANSWERING = "The database is not answering"
ANSWERING_AGAIN = "The database is answering again"


async def logged(cluster: Cluster, server: subprocess.Popen[bytes], line: str) -> str:
    """The server's log once it holds `line` (the all-clear is logged when
    the database has gone on answering for a moment), or after 5 s."""
    for _ in range(50):
        log = cluster.log_of(server)
        if line in log:
            return log
        await asyncio.sleep(0.1)
    return cluster.log_of(server)


LOGIN = """
mutation ($practice: String!, $email: String!, $password: String!) {
  login(practice: $practice, email: $email, password: $password) {
    __typename ... on LoginSuccess { token } ... on Error { code }
  }
}
"""
ME = "query { me { id } }"
PATIENTS = "query { patients(first: 10) { edges { node { id lastName } } } }"
CREATE_PATIENT = """
mutation ($input: CreatePatientInput!) {
  createPatient(input: $input) { __typename ... on PatientCreated { patient { id } } }
}
"""
SEND_INVITATION = "mutation ($id: ID!) { sendInvitation(patientId: $id) { __typename } }"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_postgres_database(TEST_DATABASE_URL, "outage") as url:
        yield url


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, database: str) -> Path:
    """The database, migrated, with a practice and its admin."""
    directory = tmp_path_factory.mktemp("outage")
    Cluster(directory, database, smtp_port=1).set_up(PRACTICE, {ADMIN_EMAIL: "ADMIN"}, PASSWORD)
    return directory


@pytest.fixture
def cluster(prepared: Path, database: str, smtp_server: SmtpServer) -> Iterator[Cluster]:
    cluster = Cluster(prepared, database, smtp_server.port)
    yield cluster
    cluster.stop_all()
    # Nothing one test leaves behind reaches the next (locks, sessions, mail).
    end_lock_holders(database)
    psql(
        database,
        "DELETE FROM outbox_message; DELETE FROM invitation; DELETE FROM session;"
        " BEGIN; INSERT INTO audit_prune_permit (granted_at) VALUES (now());"
        " DELETE FROM audit_event; DELETE FROM audit_chain; DELETE FROM audit_prune_permit;"
        " COMMIT; DELETE FROM throttle_counter; DELETE FROM patient;",
    )


@pytest.fixture
def proxy(database: str) -> Iterator[TcpProxy]:
    target = urlsplit(database)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    yield proxy
    proxy.close()


def through(proxy: TcpProxy, database: str) -> str:
    return urlsplit(database)._replace(netloc=f"postgres@127.0.0.1:{proxy.port}").geturl()


async def post(
    web: httpx.AsyncClient, url: str, query: str, token: str | None = None, **variables: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await web.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, headers=headers
    )


def succeeded(response: httpx.Response) -> bool:
    body = graphql_body(response)
    return response.status_code == 200 and "errors" not in body


def assert_unavailable(response: httpx.Response) -> None:
    """A 503 a client can act on: GraphQL's JSON shape, a code, when to retry,
    and the edge's headers like any other response."""
    body = graphql_body(response)
    assert response.status_code == 503, (response.status_code, body)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"], body
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def sign_in(web: httpx.AsyncClient, url: str) -> str:
    response = await post(web, url, LOGIN, practice=PRACTICE, email=ADMIN_EMAIL, password=PASSWORD)
    assert succeeded(response), response.text
    login = graphql_body(response)["data"]["login"]
    assert login["__typename"] == "LoginSuccess", login
    token: str = login["token"]
    return token


async def create_patient(web: httpx.AsyncClient, url: str, token: str, last_name: str) -> str:
    response = await post(
        web,
        url,
        CREATE_PATIENT,
        token,
        input={"firstName": "Ada", "lastName": last_name, "email": f"{last_name}@mail.example"},
    )
    assert succeeded(response), response.text
    patient_id: str = graphql_body(response)["data"]["createPatient"]["patient"]["id"]
    return patient_id


async def health(web: httpx.AsyncClient, url: str) -> tuple[int, dict[str, Any]]:
    response = await web.get(f"{url}/health")
    return response.status_code, response.json()


async def until_healthy(web: httpx.AsyncClient, url: str) -> None:
    deadline = time.monotonic() + RECOVERY_SECONDS
    while (await health(web, url))[0] != 200:
        assert time.monotonic() < deadline, "the service did not recover by itself"
        await asyncio.sleep(0.2)


async def until_delivered(mailbox: Mailbox, address: str) -> None:
    deadline = time.monotonic() + RECOVERY_SECONDS
    while not mailbox.to(address):
        assert time.monotonic() < deadline, f"nothing was delivered to {address}"
        await asyncio.sleep(0.2)


async def invite_until_sent(web: httpx.AsyncClient, url: str, token: str, patient_id: str) -> None:
    """Sends an invitation, again while the answer is a retryable 503."""
    for _ in range(20):
        response = await post(web, url, SEND_INVITATION, token, id=patient_id)
        if succeeded(response):
            assert (
                graphql_body(response)["data"]["sendInvitation"]["__typename"] == "InvitationSent"
            )
            return
        assert_unavailable(response)
    raise AssertionError("the invitation was never sent")


def stop_database(proxy: TcpProxy, database: str) -> None:
    """As PostgreSQL stopping looks from outside: open sessions are ended
    (FATAL 57P01), new connections are refused."""
    proxy.refuse()
    name = urlsplit(database).path.lstrip("/")
    psql(
        database,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        f" WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )


def hold_lock(database: str, table: str) -> subprocess.Popen[bytes]:
    """Another session takes an exclusive lock on `table` and keeps it."""
    holder = subprocess.Popen(
        [
            "psql",
            database,
            "-c",
            f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);",
        ],
        env={**os.environ, "PGAPPNAME": LOCK_HOLDER},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not psql(
        database,
        "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        f" WHERE a.application_name = '{LOCK_HOLDER}' AND l.granted"
        " AND l.mode = 'AccessExclusiveLock'",
    ).strip():
        assert time.monotonic() < deadline, "the lock was not taken"
        time.sleep(0.05)
    return holder


def end_lock_holders(database: str) -> None:
    psql(
        database,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        f" WHERE application_name = '{LOCK_HOLDER}'",
    )


def waiting_on_locks(database: str) -> int:
    name = urlsplit(database).path.lstrip("/")
    return int(
        psql(
            database,
            "SELECT count(*) FROM pg_stat_activity"
            f" WHERE wait_event_type = 'Lock' AND datname = '{name}'",
        )
    )


async def test_an_outage_answers_503_to_every_caller_and_the_service_recovers_by_itself(
    cluster: Cluster, proxy: TcpProxy, database: str, web: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    proxy.accept()
    server, url = cluster.serve(DATABASE_URL=through(proxy, database), PORTAL_MAIL_WORKER="on")
    token = await sign_in(web, url)
    answers: list[tuple[str, httpx.Response]] = []
    names = (f"Load{n}" for n in itertools.count())
    stop_load = asyncio.Event()

    async def load() -> None:
        # Reads and writes, signed in, about 20 a second, through the outage.
        while not stop_load.is_set():
            name = next(names)
            batch = await asyncio.gather(
                post(web, url, ME, token),
                post(web, url, PATIENTS, token),
                post(
                    web,
                    url,
                    CREATE_PATIENT,
                    token,
                    input={"firstName": "Ada", "lastName": name},
                ),
            )
            answers.extend(zip(("me", "patients", name), batch, strict=True))
            await asyncio.sleep(0.15)

    loader = asyncio.create_task(load())
    await asyncio.sleep(1)

    stop_database(proxy, database)
    await asyncio.sleep(1.5)
    during = [
        await post(web, url, LOGIN, practice=PRACTICE, email=ADMIN_EMAIL, password=PASSWORD),
        await post(web, url, ME, token),
        await post(web, url, PATIENTS, token),
        await post(web, url, CREATE_PATIENT, token, input={"firstName": "Ada", "lastName": "X"}),
    ]
    status, report = await health(web, url)
    proxy.accept()
    await until_healthy(web, url)
    await asyncio.sleep(0.5)
    stop_load.set()
    await loader

    for response in during:
        assert_unavailable(response)
    assert (status, report["checks"]["database"]) == (503, "unavailable")
    # Before, during and after: a success, or a 503 to retry; never a bare 500.
    outcomes = {succeeded(r) for _, r in answers}
    assert outcomes == {True, False}, "the load did not span the outage"
    for _, response in answers:
        if not succeeded(response):
            assert_unavailable(response)
    # Every write that answered success is stored; none that answered 503 is.
    created = {name for name, r in answers if name.startswith("Load") and succeeded(r)}
    refused = {name for name, r in answers if name.startswith("Load") and not succeeded(r)}
    stored = set(
        psql(database, "SELECT last_name FROM patient WHERE last_name LIKE 'Load%'").split()
    )
    assert stored == created
    assert not stored & refused
    # Mail queued after the outage goes out: the worker came back too.
    patient_id = await create_patient(web, url, token, "after")
    await invite_until_sent(web, url, token, patient_id)
    await until_delivered(mailbox, "after@mail.example")
    log = await logged(cluster, server, ANSWERING_AGAIN)
    assert log.count(NOT_ANSWERING) == 1, log
    assert log.count(ANSWERING_AGAIN) == 1, log
    assert "Traceback" not in log


async def test_connections_that_go_silent_are_given_up_and_mail_keeps_flowing(
    cluster: Cluster, proxy: TcpProxy, database: str, web: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    proxy.accept()
    server, url = cluster.serve(
        DATABASE_URL=through(proxy, database),
        PORTAL_MAIL_WORKER="on",
        PORTAL_DB_STATEMENT_TIMEOUT_MS="1000",
        # Small enough that a connection lost for good would soon be all of them.
        PORTAL_DB_POOL_SIZE="2",
    )
    token = await sign_in(web, url)
    patient_id = await create_patient(web, url, token, "silent")
    await asyncio.gather(*(post(web, url, PATIENTS, token) for _ in range(4)))  # both open

    proxy.go_silent()
    # Alone with the pool, the worker's rounds meet both silent connections,
    # in the BEGIN of their transaction (2 s each to give up on, a second between).
    await asyncio.sleep(7)
    await invite_until_sent(web, url, token, patient_id)

    await until_delivered(mailbox, "silent@mail.example")
    await until_healthy(web, url)
    assert succeeded(await post(web, url, PATIENTS, token))
    assert "Traceback" not in cluster.log_of(server)


async def test_a_service_started_without_its_database_says_so_once_and_recovers(
    cluster: Cluster, proxy: TcpProxy, database: str, web: httpx.AsyncClient
) -> None:
    # Nothing listens at the database's address yet.
    server, url = cluster.serve(healthy=False, DATABASE_URL=through(proxy, database))

    status, report = await health(web, url)
    signed_in = await post(web, url, ME, "a-token-from-before-the-restart")
    login = await post(web, url, LOGIN, practice=PRACTICE, email=ADMIN_EMAIL, password=PASSWORD)
    await health(web, url)
    proxy.accept()
    await until_healthy(web, url)

    assert (status, report["checks"]["database"]) == (503, "unavailable")
    assert_unavailable(signed_in)
    assert_unavailable(login)
    assert await sign_in(web, url)
    log = await logged(cluster, server, ANSWERING_AGAIN)
    assert log.count(NOT_ANSWERING) == 1, log
    assert "keeps retrying" in log
    assert log.count(ANSWERING_AGAIN) == 1, log


async def test_a_locked_table_costs_its_own_requests_not_everyone_elses(
    cluster: Cluster, database: str, web: httpx.AsyncClient
) -> None:
    _, url = cluster.serve(
        PORTAL_DB_POOL_SIZE="2",
        PORTAL_DB_STATEMENT_TIMEOUT_MS="3000",
        PORTAL_REQUEST_TIMEOUT_SECONDS="8",
    )
    token = await sign_in(web, url)
    holder = hold_lock(database, "patient")

    # Two requests wait on the lock, holding both pooled connections.
    blocked = [asyncio.create_task(post(web, url, PATIENTS, token)) for _ in range(2)]
    deadline = time.monotonic() + 10
    while waiting_on_locks(database) < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    status, report = await health(web, url)
    still_waiting = not any(task.done() for task in blocked)
    others = await asyncio.gather(*(post(web, url, ME, token) for _ in range(3)))
    waited = await asyncio.gather(*blocked)
    holder.terminate()
    end_lock_holders(database)

    # /health gave up on a connection within its second, while they still waited.
    assert (status, report["checks"]["database"]) == (503, "unavailable")
    assert still_waiting
    # The statement timeout freed the connections: requests that never touch
    # the table were answered, the blocked ones got a 503 to retry.
    assert all(succeeded(response) for response in others), [r.text for r in others]
    for response in waited:
        assert_unavailable(response)
    assert succeeded(await post(web, url, PATIENTS, token))


async def test_a_stuck_mail_worker_shows_in_health_and_once_in_the_log(
    cluster: Cluster, database: str, web: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    server, url = cluster.serve(
        PORTAL_MAIL_WORKER="on",
        PORTAL_SMTP_TIMEOUT_SECONDS="1",
        PORTAL_MAIL_LEASE_SECONDS="5",
        PORTAL_DB_STATEMENT_TIMEOUT_MS="500",
    )
    token = await sign_in(web, url)
    patient_id = await create_patient(web, url, token, "stuck")
    holder = hold_lock(database, "outbox_message")

    # Every round now fails on the lock; the heartbeat ages.
    deadline = time.monotonic() + RECOVERY_SECONDS
    while (report := await health(web, url))[0] == 200:
        assert time.monotonic() < deadline, "a stuck worker never showed in /health"
        await asyncio.sleep(0.3)
    reports = [report] + [await health(web, url) for _ in range(3)]
    holder.terminate()
    end_lock_holders(database)
    await until_healthy(web, url)
    await invite_until_sent(web, url, token, patient_id)
    await until_delivered(mailbox, "stuck@mail.example")

    for status, body in reports:
        assert status == 503
        assert body["checks"] == {"database": "ok", "mail_worker": "stale"}
    log = cluster.log_of(server)
    assert log.count("mail delivery failed") == 1, log
    assert log.count("mail worker has made no progress") == 1, log
    assert log.count("mail delivery works again") == 1, log
    # A slow table is not the database going away.
    assert NOT_ANSWERING not in log


async def test_a_transaction_whose_begin_fails_gives_back_its_connection(
    app: Starlette, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def dropped(*args: Any, **kwargs: Any) -> None:
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")

    monkeypatch.setattr(asyncpg.transaction.Transaction, "start", dropped)
    # More failures than the pool has connections: a leak would empty it.
    for _ in range(settings.db_pool_size + 1):
        with pytest.raises(DatabaseUnavailable):
            async with in_transaction():
                pass
    monkeypatch.undo()

    # This task is not left inside the transaction that never began, and the
    # pool still has a connection for everyone else.
    assert not isinstance(connections.get("default"), TransactionWrapper)
    assert (await connections.get("default").execute_query("SELECT 1"))[0] == 1
    assert await asyncio.create_task(connections.get("default").execute_query("SELECT 1"))


PID_AND_NAME = Sql("SELECT pg_backend_pid() AS pid, current_setting('application_name') AS name")


async def test_a_connection_is_reset_when_a_statement_on_it_was_cut_short(app: Starlette) -> None:
    # Completed statements leave nothing to reset (no round trip for it);
    # a statement cut short (a request out of time, a resolver cancelled)
    # may leave the connection mid-way: it is reset before anyone reuses it.
    async with reading() as reader:
        [marked] = await reader.fetch(
            Sql("SELECT pg_backend_pid() AS pid, set_config('application_name', 'marked', false)")
        )
    async with reading() as reader:
        [clean] = await reader.fetch(PID_AND_NAME)

    async def sleep_on_a_reader() -> None:
        async with reading() as reader:
            await reader.fetch(Sql("SELECT pg_sleep(5)"))

    sleeping = asyncio.create_task(sleep_on_a_reader())
    await asyncio.sleep(0.2)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    # Not kept ready for the next reader (portal.postgres): asyncpg's pool has it.
    assert connections.get("default").ready_count() == 0
    async with reading() as reader:
        [after] = await reader.fetch(PID_AND_NAME)

    assert clean["pid"] == marked["pid"] == after["pid"]  # the pool hands back the last one
    assert clean["name"] == "marked"
    assert after["name"] != "marked"
