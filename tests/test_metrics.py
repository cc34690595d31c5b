"""Prometheus metrics: scraped from their own listener after a run of the
flows, parsed with prometheus_client's parser; operation names are bounded
labels; `portal serve --workers 2` and a separate `portal deliver-mail` add
up in one scrape, never on the public port."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from models import Account, Patient, Role
from portal import gauges, metrics
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient, Mailbox, SmtpServer, free_port
from tests.mail import code_in, token_in
from tests.processes import TEST_DATABASE_URL, Cluster

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
DeliverMail = Callable[[], Awaitable[object]]

WRONG = "not-the-password-at-all"
NEW_PASSWORD = "velvet-harbour-quantum-57"
SEND_INVITATION = "mutation Send($id: ID!) { sendInvitation(patientId: $id) { __typename } }"
CREATE_ACCOUNT = """
mutation Create($token: String!, $password: String!) {
  createAccount(token: $token, password: $password, passwordConfirmation: $password) {
    __typename
  }
}
"""
REQUEST_CODE = """
mutation Request($email: String!) {
  requestVerificationCode(practice: "north", email: $email) { __typename }
}
"""
VERIFY_CODE = """
mutation Verify($email: String!, $code: String!) {
  verifyResetCode(practice: "north", email: $email, code: $code) { __typename }
}
"""
DISABLE = "mutation D($id: ID!) { disableAccount(accountId: $id) { __typename } }"


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def listener() -> str:
    """The metrics listener of this (test) process, on a port of its own."""
    port = free_port()
    metrics.serve(("127.0.0.1", port))
    return f"http://127.0.0.1:{port}/metrics"


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    return parse(response.text)


async def test_a_run_of_the_flows_shows_in_the_scrape(
    listener: str,
    anonymous: GraphQLClient,
    admin: GraphQLClient,
    admin_account: Account,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
    clock: FrozenClock,
) -> None:
    before = await scrape(listener)
    clinician = await factories.make_staff(
        admin_account.practice, Role.CLINICIAN, email="clin@north.example"
    )

    # Sign-ins: one good, one wrong password, a streak until throttled, a disabled account.
    await anonymous.login("north", clinician.email, factories.PASSWORD)
    for _ in range(11):
        await anonymous.post(LOGIN, practice="north", email="nobody@north.example", password=WRONG)
    await admin.data(DISABLE, id=str(clinician.id))
    await anonymous.post(
        LOGIN, practice="north", email=clinician.email, password=factories.PASSWORD
    )
    # An invitation sent and redeemed.
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    gauges_before = await asyncio.gather(gauges.sample_outbox())
    assert gauges_before
    await deliver_mail()
    [invitation] = mailbox.to("grace@mail.example")
    created = await anonymous.data(
        CREATE_ACCOUNT, token=token_in(invitation), password=NEW_PASSWORD
    )
    assert created["createAccount"]["__typename"] == "AccountCreated"
    # A code sent, a wrong one, then the right one.
    await anonymous.data(REQUEST_CODE, email=admin_account.email)
    await gauges.sample_outbox()
    backlog = await scrape(listener)
    await deliver_mail()
    [message] = mailbox.to(admin_account.email)
    code = code_in(message)
    wrong = "000000" if code != "000000" else "111111"
    await anonymous.data(VERIFY_CODE, email=admin_account.email, code=wrong)
    await anonymous.data(VERIFY_CODE, email=admin_account.email, code=code)

    after = await scrape(listener)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("portal_sign_ins_total", result="ok") == 1
    assert grew("portal_sign_ins_total", result="invalid") == 10
    assert grew("portal_sign_ins_total", result="throttled") == 1
    assert grew("portal_sign_ins_total", result="disabled") == 1
    assert grew("portal_invitations_sent_total", kind="patient") == 1
    assert grew("portal_invitations_redeemed_total") == 1
    assert grew("portal_verification_codes_total", event="sent") == 1
    assert grew("portal_verification_codes_total", event="failed") == 1
    assert grew("portal_verification_codes_total", event="verified") == 1
    assert grew("portal_mail_deliveries_total", result="sent") == 2
    assert grew("portal_graphql_requests_total", operation="Login", outcome="ok") == 13
    assert grew("portal_graphql_request_duration_seconds_count", operation="Login") == 13
    assert grew("portal_graphql_requests_total", operation="Verify", outcome="ok") == 2
    # Not the throttled one: it is refused before the hash.
    assert grew("portal_password_hash_seconds_count", operation="verify") == 12
    assert grew("portal_password_hash_seconds_count", operation="hash") >= 1
    # The code's email was queued when sampled, and is delivered now.
    assert value(backlog, "portal_outbox_backlog_messages") == 1
    assert value(after, "portal_outbox_oldest_due_age_seconds") >= 0
    assert ("portal_event_loop_lag_seconds", ()) in after
    assert ("portal_db_pool_connections_in_use", ()) in after
    # No label names a practice, an account, an email or a patient.
    for name, labels in after:
        if not name.startswith("portal_"):
            continue  # the library's own (python_gc_*, process_*)
        assert {key for key, _ in labels} <= {
            "operation",
            "outcome",
            "result",
            "kind",
            "event",
            "le",
        }
        assert not any("@" in text or "north" in text for _, text in labels)


async def test_the_public_port_serves_no_metrics(http: httpx.AsyncClient) -> None:
    response = await http.get("/metrics")

    assert response.status_code == 404


@pytest.fixture
def fresh_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_trusted_names", set())
    monkeypatch.setattr(metrics, "_only_trusted", False)
    monkeypatch.setattr(metrics, "_admitted", set())
    monkeypatch.setattr(metrics, "MAX_OPERATION_NAMES", 3)


def test_client_chosen_operation_names_are_capped(fresh_labels: None) -> None:
    labels = [metrics.operation_label(f"Op{n}") for n in range(5)]

    assert labels == ["Op0", "Op1", "Op2", "other", "other"]
    assert metrics.operation_label("Op1") == "Op1"
    assert metrics.operation_label(None) == "anonymous"
    assert metrics.operation_label("not a name; DROP") == "other"


def test_the_web_apps_names_are_labels_beside_the_first_others(fresh_labels: None) -> None:
    metrics.trust_operation_names({"SignIn"})

    assert [metrics.operation_label(n) for n in ("SignIn", "Op0", "Op1", "Op2", "Op3")] == [
        "SignIn",
        "Op0",
        "Op1",
        "Op2",
        "other",
    ]


def test_with_trusted_documents_only_their_names_are_labels(fresh_labels: None) -> None:
    metrics.trust_operation_names({"Login", "Patients"}, only=True)

    assert [metrics.operation_label(n) for n in ("Login", "Patients", "Mine")] == [
        "Login",
        "Patients",
        "other",
    ]


def test_stale_files_of_ended_processes_are_removed(tmp_path: Path) -> None:
    ended = tmp_path / "counter_999999999.db"
    alive = tmp_path / f"counter_{os.getpid()}.db"
    for path in (ended, alive):
        path.write_bytes(b"")

    metrics.remove_stale_files(tmp_path)

    assert not ended.exists() and alive.exists()


def test_a_directory_is_made_when_the_operator_names_none(tmp_path: Path) -> None:
    environ = {"PORTAL_METRICS_ADDRESS": "127.0.0.1:9100"}

    directory = metrics.prepare_multiprocess_directory(environ)

    assert directory is not None and directory.is_dir()
    assert environ[metrics.MULTIPROC_VARIABLE] == str(directory)
    metrics.remove_owned_directory(directory)
    assert not directory.exists()
    assert metrics.prepare_multiprocess_directory({}) is None
    named = {"PORTAL_METRICS_ADDRESS": "x:1", metrics.MULTIPROC_VARIABLE: str(tmp_path)}
    assert metrics.prepare_multiprocess_directory(named) == tmp_path
    metrics.remove_owned_directory(tmp_path)
    assert tmp_path.exists()  # the operator's directory is never removed


# --- real processes -------------------------------------------------------------

PROCESS_PASSWORD = "lunar-teapot-orchestra-91"


@pytest.fixture
def cluster(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[Cluster]:
    database = TEST_DATABASE_URL or f"sqlite://{tmp_path / 'metrics.sqlite3'}"
    if TEST_DATABASE_URL:
        from tests.processes import fresh_postgres_database

        with fresh_postgres_database(TEST_DATABASE_URL, "metrics") as url:
            cluster = Cluster(tmp_path, url, smtp_server.port)
            yield cluster
            cluster.stop_all()
        return
    cluster = Cluster(tmp_path, database, smtp_server.port)
    yield cluster
    cluster.stop_all()


def signed_in_per_process(directory: Path) -> dict[str, float]:
    """How many good sign-ins each process wrote to the multi-process directory."""
    counts: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        for key, found, *_ in MmapedDict.read_all_values_from_file(str(path)):
            _, name, labels, _ = json.loads(key)
            if name == "portal_sign_ins_total" and labels == {"result": "ok"} and found:
                counts[path.stem.rsplit("_", 1)[-1]] = found
    return counts


async def test_two_workers_and_a_mail_worker_add_up_in_one_scrape(
    cluster: Cluster, tmp_path: Path, mailbox: Mailbox
) -> None:
    cluster.set_up("multi", {"admin@multi.example": "ADMIN"}, PROCESS_PASSWORD)
    shared = tmp_path / "prometheus"
    address = f"127.0.0.1:{free_port()}"
    _, url = cluster.serve(
        "--workers", "2", PORTAL_METRICS_ADDRESS=address, PROMETHEUS_MULTIPROC_DIR=str(shared)
    )
    # A separate mail worker on the same host, writing to the same directory.
    mailer = cluster.start("deliver-mail", PROMETHEUS_MULTIPROC_DIR=str(shared))
    sign_ins = 0
    async with httpx.AsyncClient(timeout=30) as client:
        # New connections until both workers have answered some.
        while len(signed_in_per_process(shared)) < 2 and sign_ins < 200:
            response = await client.post(
                f"{url}/graphql",
                json={
                    "query": LOGIN,
                    "variables": {
                        "practice": "multi",
                        "email": "admin@multi.example",
                        "password": PROCESS_PASSWORD,
                    },
                },
                headers={"Connection": "close"},
            )
            assert response.json()["data"]["login"]["__typename"] == "LoginSuccess"
            sign_ins += 1
        response = await client.post(
            f"{url}/graphql",
            json={
                "query": 'mutation { requestVerificationCode(practice: "multi",'
                ' email: "admin@multi.example") { __typename } }'
            },
        )
        assert response.status_code == 200
        public = await client.get(f"{url}/metrics")
        async with asyncio.timeout(60):
            while True:
                samples = parse((await client.get(f"http://{address}/metrics")).text)
                if value(samples, "portal_mail_deliveries_total", result="sent") >= 1:
                    break
                await asyncio.sleep(0.2)

    assert len(signed_in_per_process(shared)) == 2
    assert value(samples, "portal_sign_ins_total", result="ok") == sign_ins
    assert value(samples, "portal_graphql_requests_total", operation="anonymous", outcome="ok") == 1
    assert value(samples, "portal_verification_codes_total", event="sent") == 1
    assert len(mailbox.to("admin@multi.example")) == 1
    assert public.status_code == 404  # never on the public port
    assert mailer.poll() is None
