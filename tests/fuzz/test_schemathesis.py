"""Fuzzing the GraphQL API with schemathesis, from the published `schema.graphql`.

Every query and mutation of the SDL file (not introspection) is called with
generated arguments and selections, valid ones and invalid ones the server must
refuse, signed out and as an ADMIN, against a real `portal serve` with a
database of its own. Whatever comes in, the answer is never a 5xx and never an
unmasked exception: every top-level error carries one of our `extensions.code`s,
never INTERNAL_SERVER_ERROR, and an error raised while resolving is one of ours.

`FUZZ_EXAMPLES` sets the examples per operation and identity (small by default
so that `make test` stays quick; `.ci/run` runs more). `FUZZ_DATABASE_URL`
fuzzes a server on that (empty, disposable) database instead of a fresh SQLite
file, PostgreSQL for instance.
"""

from __future__ import annotations

import atexit
import os
import random
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

from tests.processes import Cluster  # noqa: E402

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
PRACTICE = "fuzz"
ADMIN_EMAIL = "admin@fuzz.example"
PASSWORD = "lunar-teapot-orchestra-91"
# Fuzzed sign-ins and recovery requests aim at this account, never at the
# ADMIN's: a lockout of the ADMIN would end the fuzzing as ADMIN.
CLINICIAN_EMAIL = "clin@fuzz.example"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or "8")
FUZZ_DATABASE_URL = os.environ.get("FUZZ_DATABASE_URL", "")

# The server trusts X-Forwarded-For from the test, so each identity has an
# address of its own and the throttling one earns does not stop the other.
ANONYMOUS_IP = "10.0.0.1"
ADMIN_IP = "10.0.0.2"
SIGN_IN_IP = "10.0.0.3"

# Hypothesis keeps a cache in the working directory by default; not in this repository.
_hypothesis_home = tempfile.mkdtemp(prefix="portal-fuzz-hypothesis-")
atexit.register(shutil.rmtree, _hypothesis_home, True)
set_hypothesis_home_dir(_hypothesis_home)

schema = schemathesis.graphql.from_path(ROOT / "schema.graphql")

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


# --- what an acceptable answer is ---

OUR_CODES = {"BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN"}
# Messages of the errors resolvers raise on purpose (graph/errors.py): the
# permission refusals, and bad paging arguments, which name the argument.
OUR_RESOLVER_MESSAGES = {
    "UNAUTHENTICATED": re.compile(r"Sign in first\."),
    "FORBIDDEN": re.compile(r"You are not allowed to do this\."),
    "BAD_USER_INPUT": re.compile(r"`\w+` [^\n]{1,100}\."),
}


def problems_with(response: httpx.Response | Any) -> list[str]:
    """Why this answer shows a bug (an empty list when it does not)."""
    if response.status_code >= 500:
        return [f"status {response.status_code}"]
    try:
        body = response.json()
    except ValueError:
        return ["the body is not JSON"]
    if not isinstance(body, dict) or not ({"data", "errors"} & body.keys()):
        return ["the body is not a GraphQL response"]
    found = []
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        message = str(error.get("message"))
        if code == "INTERNAL_SERVER_ERROR":
            found.append(f"INTERNAL_SERVER_ERROR at {error.get('path')}")
        elif code not in OUR_CODES:
            found.append(f"unknown code {code!r}: {message}")
        elif "path" in error and not OUR_RESOLVER_MESSAGES[code].fullmatch(message):
            # Raised while resolving but not by us: an exception that escaped masking.
            found.append(f"unmasked error at {error['path']}: {message}")
        elif "path" not in error and code != "BAD_USER_INPUT":
            found.append(f"{code} outside any field: {message}")
    return found


# --- the server under test ---


class LiveServer:
    """`portal serve` in a directory of its own, on a database of its own."""

    def __init__(self, directory: Path) -> None:
        self.cluster = Cluster(
            directory,
            FUZZ_DATABASE_URL or f"sqlite://{directory / 'fuzz.sqlite3'}",
            smtp_port=1,  # mail stays queued in the outbox: nothing here reads it
            PORTAL_MAIL_DIR=str(directory / "mail"),
            PORTAL_TRUSTED_PROXIES="127.0.0.1",
        )
        self.run = self.cluster.run
        self.url = ""

    def start(self) -> None:
        _, self.url = self.cluster.serve()

    def output(self) -> str:
        return self.cluster.logs()

    def stop(self) -> None:
        self.cluster.stop_all()

    def data(self, query: str, ip: str, token: str | None = None, **variables: Any) -> Any:
        headers = {"X-Forwarded-For": ip}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
            timeout=30,
        )
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]


LOGIN = """
mutation ($practice: String!, $email: String!, $password: String!) {
  login(practice: $practice, email: $email, password: $password) {
    __typename ... on LoginSuccess { token }
  }
}
"""
CREATE_PATIENT = """
mutation ($input: CreatePatientInput!) {
  createPatient(input: $input) { ... on PatientCreated { patient { id } } }
}
"""


class Admin:
    """An ADMIN's bearer token, renewed after a fuzzed `logout` ended it."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.token = ""
        self.sign_in()

    def sign_in(self) -> None:
        result = self.server.data(
            LOGIN, SIGN_IN_IP, practice=PRACTICE, email=ADMIN_EMAIL, password=PASSWORD
        )["login"]
        assert result["__typename"] == "LoginSuccess", result
        self.token = result["token"]


@pytest.fixture(autouse=True)
def clean_database() -> Iterator[None]:
    """The fuzzed server has a database of its own: the suite's needs no cleaning."""
    yield


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("fuzz"))
    live.cluster.set_up(PRACTICE, {ADMIN_EMAIL: "ADMIN", CLINICIAN_EMAIL: "CLINICIAN"}, PASSWORD)
    try:
        live.start()
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Admin:
    return Admin(server)


@pytest.fixture(scope="module")
def patient_ids(server: LiveServer, admin: Admin) -> list[str]:
    """Patients of the ADMIN's practice, so that some cases reach a real record."""
    ids = []
    for n, email in enumerate(["ada@mail.example", None, "grace@mail.example"]):
        data = server.data(
            CREATE_PATIENT,
            ADMIN_IP,
            admin.token,
            input={"firstName": "Ada", "lastName": f"Fuzz{n}", "email": email},
        )
        ids.append(data["createPatient"]["patient"]["id"])
    return ids


# An argument or input field with a string or number literal, as
# hypothesis-graphql prints it.
ARGUMENT = re.compile(r'\b(\w+): ("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*)')
# Lengths around the limits of names, slugs and emails, and well past them.
LONG_LENGTHS = (64, 101, 255, 4000)


def steered(query: str, patient_ids: list[str]) -> str:
    """Half of the cases get some of their arguments steered: real values (a
    patient of the practice, its slug, a staff email, a page size in range), so
    they get past "not found" to the code behind it, or strings just past a
    length limit, which random text seldom reaches. The choices are drawn from
    the query itself, so a failing example replays the same."""
    chooser = random.Random(query)  # noqa: S311 - test data, not secrets
    if chooser.random() < 0.5:
        return query
    real = {
        "id": lambda: f'"{chooser.choice(patient_ids)}"',
        "patientId": lambda: f'"{chooser.choice(patient_ids)}"',
        "practice": lambda: f'"{PRACTICE}"',
        "email": lambda: f'"{CLINICIAN_EMAIL}"',
        "first": lambda: str(chooser.randint(1, 100)),
    }

    def replace(match: re.Match[str]) -> str:
        name, value = match.groups()
        roll = chooser.random()
        if name in real and roll < 0.5:
            value = real[name]()
        elif value.startswith('"') and roll < 0.7:
            value = f'"{"a" * chooser.choice(LONG_LENGTHS)}"'
        return f"{name}: {value}"

    return ARGUMENT.sub(replace, query)


def send(case: Any, server: LiveServer, ip: str, token: str | None, ids: list[str]) -> None:
    if isinstance(case.body, str):
        case.body = steered(case.body, ids)
    headers = {"X-Forwarded-For": ip}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = case.call(base_url=f"{server.url}/graphql", headers=headers, timeout=30)
    found = problems_with(response)
    assert not found, (
        f"{case.operation.label} as {'ADMIN' if token else 'anonymous'}: {found}\n"
        f"query:\n{case.body}\nresponse: {response.status_code} {response.text[:2000]}\n"
        f"server log (tail):\n{server.output()}"
    )


@schema.parametrize()
@fuzz_settings
def test_anonymous(case: Any, server: LiveServer, patient_ids: list[str]) -> None:
    send(case, server, ANONYMOUS_IP, None, patient_ids)


@schema.parametrize()
@fuzz_settings
def test_admin(case: Any, server: LiveServer, admin: Admin, patient_ids: list[str]) -> None:
    send(case, server, ADMIN_IP, admin.token, patient_ids)
    if case.operation.label == "Mutation.logout":
        admin.sign_in()


def test_the_checks_catch_what_they_are_for() -> None:
    """The judge itself: a masked bug, a foreign code, an unmasked message and a
    5xx are reported; our own refusals are not."""

    class Answer:
        def __init__(self, body: Any, status_code: int = 200) -> None:
            self.status_code = status_code
            self.body = body

        def json(self) -> Any:
            return self.body

    def error(message: str, code: str | None, path: list[str] | None = None) -> Any:
        entry: dict[str, Any] = {"message": message, "extensions": {"code": code} if code else {}}
        if path:
            entry["path"] = path
        return {"data": None, "errors": [entry]}

    assert problems_with(Answer({}, 502)) == ["status 502"]
    assert problems_with(Answer(error("Something went wrong on our side.", None)))
    assert problems_with(Answer(error("x", "INTERNAL_SERVER_ERROR", ["patients"])))
    assert problems_with(Answer(error("boom", "BAD_USER_INPUT", ["patients"])))
    assert problems_with(Answer(error("Nope.", "TEAPOT")))
    assert not problems_with(Answer(error("Sign in first.", "UNAUTHENTICATED", ["me"])))
    assert not problems_with(
        Answer(error("`first` must be between 1 and 100.", "BAD_USER_INPUT", ["patients"]))
    )
    assert not problems_with(Answer(error("Syntax Error: x", "BAD_USER_INPUT")))
