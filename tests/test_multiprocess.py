"""Two `portal serve` processes on one PostgreSQL database, spoken to over real
HTTP: throttling, single-use tokens and codes, and mail delivery hold across
processes, because their state lives in the database and not in a process.

Runs only when TEST_DATABASE_URL is a PostgreSQL database; it creates a fresh
database of its own next to it (`mp_<random>`) and drops it at the end.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Mailbox, SmtpServer
from tests.mail import code_in, token_in
from tests.processes import (
    TEST_DATABASE_URL,
    Cluster,
    fresh_postgres_database,
    postgres_only,
    psql,
)

pytestmark = postgres_only

PRACTICE = "multi"
PASSWORD = "lunar-teapot-orchestra-91"
ADMIN_EMAIL = "admin@multi.example"
THROTTLED_EMAIL = "locked@multi.example"
CODES_EMAIL = "codes@multi.example"
MAIL_SECONDS = 60
SIMULTANEOUS_PER_SERVER = 4


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_postgres_database(TEST_DATABASE_URL, "mp") as url:
        yield url


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, database: str, smtp_server: SmtpServer
) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("multiprocess"), database, smtp_server.port)
    try:
        cluster.set_up(
            PRACTICE,
            {ADMIN_EMAIL: "ADMIN", THROTTLED_EMAIL: "CLINICIAN", CODES_EMAIL: "CLINICIAN"},
            PASSWORD,
        )
        cluster.serve()
        cluster.serve()
        yield cluster
    finally:
        cluster.stop_all()


async def call(
    http: httpx.AsyncClient, url: str, query: str, bearer: str | None = None, **variables: Any
) -> Any:
    """The single result of a one-field operation, which must not fail at the top level."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    response = await http.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    [result] = body["data"].values()
    return result


LOGIN = """
mutation ($practice: String!, $email: String!, $password: String!) {
  login(practice: $practice, email: $email, password: $password) {
    __typename
    ... on LoginSuccess { token }
    ... on Error { code }
  }
}
"""
CREATE_PATIENT = """
mutation ($input: CreatePatientInput!) {
  createPatient(input: $input) { __typename ... on PatientCreated { patient { id } } }
}
"""
SEND_INVITATION = """
mutation ($id: ID!) { sendInvitation(patientId: $id) { __typename } }
"""
CREATE_ACCOUNT = """
mutation ($token: String!, $password: String!) {
  createAccount(token: $token, password: $password, passwordConfirmation: $password) {
    __typename
  }
}
"""
REQUEST_CODE = """
mutation ($practice: String!, $email: String!) {
  requestVerificationCode(practice: $practice, email: $email) { __typename }
}
"""
VERIFY_CODE = """
mutation ($practice: String!, $email: String!, $code: String!) {
  verifyResetCode(practice: $practice, email: $email, code: $code) { __typename }
}
"""


async def login(http: httpx.AsyncClient, url: str, email: str, password: str) -> Any:
    return await call(http, url, LOGIN, practice=PRACTICE, email=email, password=password)


async def admin_token(http: httpx.AsyncClient, cluster: Cluster) -> str:
    result = await login(http, cluster.urls[0], ADMIN_EMAIL, PASSWORD)
    assert result["__typename"] == "LoginSuccess", result
    token: str = result["token"]
    return token


async def create_patient(
    http: httpx.AsyncClient, url: str, token: str, last_name: str, email: str
) -> str:
    result = await call(
        http,
        url,
        CREATE_PATIENT,
        token,
        input={"firstName": "Ada", "lastName": last_name, "email": email},
    )
    assert result["__typename"] == "PatientCreated", result
    patient_id: str = result["patient"]["id"]
    return patient_id


async def send_invitation(http: httpx.AsyncClient, url: str, token: str, patient_id: str) -> None:
    result = await call(http, url, SEND_INVITATION, token, id=patient_id)
    assert result["__typename"] == "InvitationSent", result


def both_servers_at_once(cluster: Cluster) -> list[str]:
    """Each server's address several times over, interleaved."""
    return cluster.urls * SIMULTANEOUS_PER_SERVER


async def test_sign_in_throttling_holds_across_servers(
    cluster: Cluster, web: httpx.AsyncClient
) -> None:
    for attempt in range(10):
        url = cluster.urls[attempt % 2]
        result = await login(web, url, THROTTLED_EMAIL, "not-the-password-at-all")
        assert result == {"__typename": "InvalidCredentialsError", "code": "INVALID_CREDENTIALS"}

    # The 11th, to either server, is refused even with the right password.
    for url in cluster.urls:
        result = await login(web, url, THROTTLED_EMAIL, PASSWORD)
        assert result == {"__typename": "RateLimitedError", "code": "RATE_LIMITED"}


async def test_an_invitation_token_creates_one_account_across_servers(
    cluster: Cluster, web: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    first, second = cluster.urls
    token = await admin_token(web, cluster)
    patient_id = await create_patient(web, first, token, "Invited", "invited@mail.example")
    await send_invitation(web, second, token, patient_id)
    cluster.run("deliver-mail", "--once")
    [message] = mailbox.to("invited@mail.example")
    invitation = token_in(message)

    results = await asyncio.gather(
        *(
            call(web, url, CREATE_ACCOUNT, token=invitation, password=PASSWORD)
            for url in both_servers_at_once(cluster)
        )
    )

    outcomes = Counter(result["__typename"] for result in results)
    assert outcomes == {"AccountCreated": 1, "InvalidTokenError": len(results) - 1}
    signed_in = await login(web, second, "invited@mail.example", PASSWORD)
    assert signed_in["__typename"] == "LoginSuccess", signed_in


async def test_a_verification_code_verifies_once_across_servers(
    cluster: Cluster, web: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    first, _ = cluster.urls
    requested = await call(web, first, REQUEST_CODE, practice=PRACTICE, email=CODES_EMAIL)
    assert requested["__typename"] == "VerificationCodeSent", requested
    cluster.run("deliver-mail", "--once")
    [message] = mailbox.to(CODES_EMAIL)
    code = code_in(message)

    results = await asyncio.gather(
        *(
            call(web, url, VERIFY_CODE, practice=PRACTICE, email=CODES_EMAIL, code=code)
            for url in both_servers_at_once(cluster)
        )
    )

    outcomes = Counter(result["__typename"] for result in results)
    assert outcomes == {"ResetCodeVerified": 1, "InvalidCodeError": len(results) - 1}


async def test_two_mail_workers_deliver_each_message_exactly_once(
    cluster: Cluster, web: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    workers = [cluster.start("deliver-mail"), cluster.start("deliver-mail")]
    token = await admin_token(web, cluster)
    addresses = [f"patient{n}@mail.example" for n in range(20)]
    patient_ids = await asyncio.gather(
        *(
            create_patient(web, cluster.urls[n % 2], token, f"Mailed{n}", address)
            for n, address in enumerate(addresses)
        )
    )
    await asyncio.gather(
        *(
            send_invitation(web, cluster.urls[n % 2], token, patient_id)
            for n, patient_id in enumerate(patient_ids)
        )
    )

    def ours() -> list[Any]:
        return [m for m in list(mailbox.messages) if m["To"] in addresses]

    deadline = time.monotonic() + MAIL_SECONDS
    while len(ours()) < len(addresses) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    # Two more polling rounds of both workers, for a duplicate to show up.
    await asyncio.sleep(2.5)
    assert all(worker.poll() is None for worker in workers), cluster.logs()
    exit_codes = [cluster.stop(worker) for worker in workers]

    delivered = ours()
    assert Counter(m["To"] for m in delivered) == Counter(addresses), cluster.logs()
    assert len({m["Message-ID"] for m in delivered}) == len(addresses)
    assert exit_codes == [0, 0], cluster.logs()
    rows = psql(
        cluster.database_url,
        "SELECT status, attempts, count(*) FROM outbox_message"
        " WHERE to_address LIKE 'patient%@mail.example' GROUP BY status, attempts",
    )
    assert rows.split() == [f"SENT|1|{len(addresses)}"]


async def test_a_forwarded_address_from_an_untrusted_peer_is_not_believed(
    cluster: Cluster, database: str, web: httpx.AsyncClient
) -> None:
    # No PORTAL_TRUSTED_PROXIES: the peer (127.0.0.1) is the client, whatever
    # it claims; the server in front of the edge must not rewrite it first.
    response = await web.post(
        f"{cluster.urls[0]}/graphql",
        json={
            "query": LOGIN,
            "variables": {"practice": PRACTICE, "email": "nobody@multi.example", "password": "x"},
        },
        headers={"X-Forwarded-For": "203.0.113.9"},
    )

    assert response.status_code == 200
    assert "server" not in response.headers
    recorded = psql(
        database,
        "SELECT DISTINCT client_ip FROM audit_event WHERE action = 'LOGIN_FAILED'",
    ).split()
    assert "127.0.0.1" in recorded
    assert "203.0.113.9" not in recorded
