"""Two `portal serve` processes on one PostgreSQL database, spoken to over real
HTTP: throttling, single-use tokens and codes, and mail delivery hold across
processes, because their state lives in the database and not in a process.

Runs only when TEST_DATABASE_URL is a PostgreSQL database; it creates a fresh
database of its own next to it (`mp_<random>`) and drops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Mailbox, SmtpServer
from tests.mail import code_in, token_in

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgres"),
    reason="needs TEST_DATABASE_URL pointing at PostgreSQL",
)

PORTAL = Path(sys.executable).parent / "portal"
SECRET_KEY = "multiprocess-test-only-key-" + "m" * 30
PRACTICE = "multi"
PASSWORD = "lunar-teapot-orchestra-91"
ADMIN_EMAIL = "admin@multi.example"
THROTTLED_EMAIL = "locked@multi.example"
CODES_EMAIL = "codes@multi.example"
STARTUP_SECONDS = 30
COMMAND_SECONDS = 60
MAIL_SECONDS = 60
SIMULTANEOUS_PER_SERVER = 4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def psql(database_url: str, sql: str) -> str:
    result = subprocess.run(
        ["psql", database_url, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    assert result.returncode == 0, (sql, result.stderr)
    return result.stdout


class Cluster:
    """The environment every `portal` process of the test shares."""

    def __init__(self, directory: Path, database_url: str, smtp_port: int) -> None:
        self.directory = directory
        self.database_url = database_url
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("PORTAL_") and name not in ("DATABASE_URL", "SMTP_URL")
        }
        self.env.update(
            DATABASE_URL=database_url,
            PORTAL_SECRET_KEY=SECRET_KEY,
            PORTAL_BASE_URL="https://portal.test",
            PORTAL_MAIL_WORKER="off",
            PORTAL_MAIL_POLL_SECONDS="1",
            PORTAL_RECOVERY_RESPONSE_FLOOR_MS="0",
            PORTAL_ARGON2_MEMORY_KIB="1024",
            PORTAL_ARGON2_TIME_COST="1",
            SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        )
        self.processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        self.urls: list[str] = []

    def run(self, *args: str, **extra: str) -> str:
        result = subprocess.run(
            [str(PORTAL), *args],
            cwd=self.directory,
            env={**self.env, **extra},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{args[0]}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [str(PORTAL), *args],
            cwd=self.directory,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((process, log))
        return process

    def serve(self) -> None:
        port = _free_port()
        process = self.start("serve", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert process.poll() is None, self.logs()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    self.urls.append(url)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"portal serve did not answer in {STARTUP_SECONDS}s:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
            for path in sorted(self.directory.glob("*.log"))
        )

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        """Asks a process to stop (SIGTERM), kills it after 10 seconds; its exit code."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        return process.returncode

    def stop_all(self) -> None:
        for process, log in self.processes:
            self.stop(process)
            log.close()


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh database next to TEST_DATABASE_URL's, dropped at the end."""
    name = f"mp_{secrets.token_hex(6)}"
    admin_url = _with_database(TEST_DATABASE_URL, "postgres")
    psql(admin_url, f"CREATE DATABASE {name}")
    try:
        yield _with_database(TEST_DATABASE_URL, name)
    finally:
        psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, database: str, smtp_server: SmtpServer
) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("multiprocess"), database, smtp_server.port)
    try:
        cluster.run("migrate")
        cluster.run("create-practice", "--name", "Multi Practice", "--slug", PRACTICE)
        for email, role in (
            (ADMIN_EMAIL, "ADMIN"),
            (THROTTLED_EMAIL, "CLINICIAN"),
            (CODES_EMAIL, "CLINICIAN"),
        ):
            cluster.run(
                "create-user",
                *("--practice", PRACTICE, "--email", email, "--role", role),
                PORTAL_PASSWORD=PASSWORD,
            )
        cluster.serve()
        cluster.serve()
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
async def web() -> AsyncIterator[httpx.AsyncClient]:
    """A client over real HTTP (the suite's `http` goes through ASGI in-process)."""
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


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
