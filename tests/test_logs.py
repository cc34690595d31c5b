"""One structured log line per request, and no secret in any log record: not
passwords, tokens, codes, nor any patient's name, email, phone or search."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from models import Practice, Role
from portal.logs import JsonFormatter, TextFormatter
from portal.services import patients as patients_service
from tests import factories
from tests.conftest import Mailbox
from tests.mail import code_in, token_in

DeliverMail = Callable[[], Awaitable[object]]

# Loggers the scan listens to at DEBUG. Never "tortoise.db_client": at DEBUG
# it prints every SQL statement with its values, and must never run so.
SCANNED_LOGGERS = ("portal", "graph", "strawberry", "uvicorn")

# LogRecord attributes that only ever hold numbers the logging module sets
# (times, ids, line numbers): left out so that a six-digit code cannot match
# the digits of a timestamp by chance.
NUMERIC_ATTRIBUTES = {
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "process",
    "lineno",
    "levelno",
}


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "portal.request"]


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    operation: str | None = None,
    token: str | None = None,
) -> httpx.Response:
    payload: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation is not None:
        payload["operationName"] = operation
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.post("/graphql", json=payload, headers=headers)


# --- One line per request -----------------------------------------------------


async def test_one_structured_line_per_request(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portal.request")

    response = await post(http, "query WhoAmI { me { email } }", operation="WhoAmI")

    [line] = request_lines(caplog)
    assert line.levelno == logging.INFO
    assert line.request_id == response.headers["x-request-id"]  # type: ignore[attr-defined]
    assert line.operation == "WhoAmI"  # type: ignore[attr-defined]
    assert line.status == 200  # type: ignore[attr-defined]
    assert line.outcome == "ok"  # type: ignore[attr-defined]
    duration = line.duration_ms  # type: ignore[attr-defined]
    assert isinstance(duration, int | float) and 0 <= duration < 10_000


async def test_a_request_with_errors_is_logged_as_errors_with_their_codes(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portal.request")

    await post(http, "query Patients { patients { totalCount } }", operation="Patients")

    [line] = request_lines(caplog)
    assert line.operation == "Patients"  # type: ignore[attr-defined]
    assert line.status == 200  # type: ignore[attr-defined]
    assert line.outcome == "errors"  # type: ignore[attr-defined]
    assert line.error_codes == ["UNAUTHENTICATED"]  # type: ignore[attr-defined]


async def test_a_request_without_an_operation_name_logs_none(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portal.request")

    await post(http, "{ __typename }")

    [line] = request_lines(caplog)
    assert line.operation is None  # type: ignore[attr-defined]
    assert line.outcome == "ok"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("send", "status"),
    [
        pytest.param(
            lambda http: http.post(
                "/graphql", content=b" " * 70_000, headers={"Content-Type": "application/json"}
            ),
            413,
            id="too-large",
        ),
        pytest.param(
            lambda http: http.post("/graphql", data={"query": "{ __typename }"}), 415, id="form"
        ),
        pytest.param(lambda http: http.get("/health"), 200, id="health"),
        pytest.param(
            lambda http: http.post("/graphql", json=[{"query": "{ __typename }"}] * 3),
            400,
            id="batch",
        ),
    ],
)
async def test_every_kind_of_request_gets_exactly_one_line(
    send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    status: int,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="portal.request")

    response = await send(http)

    assert response.status_code == status
    [line] = request_lines(caplog)
    assert line.status == status  # type: ignore[attr-defined]
    assert line.request_id == response.headers["x-request-id"]  # type: ignore[attr-defined]
    assert line.outcome == ("ok" if status < 400 else "rejected")  # type: ignore[attr-defined]


async def test_the_json_formatter_renders_the_line_as_one_json_object(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portal.request")
    response = await post(http, "query Broken { nope }", operation="Broken")
    [line] = request_lines(caplog)

    rendered = JsonFormatter().format(line)

    assert "\n" not in rendered
    entry = json.loads(rendered)
    assert entry["logger"] == "portal.request"
    assert entry["level"] == "INFO"
    assert entry["request_id"] == response.headers["x-request-id"]
    assert entry["operation"] == "Broken"
    assert entry["status"] == 200
    assert entry["outcome"] == "errors"
    assert entry["error_codes"] == ["BAD_USER_INPUT"]
    assert isinstance(entry["duration_ms"], int | float)
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None


# --- No secret in any log record ----------------------------------------------

LOGIN = """
mutation Login($practice: String!, $email: String!, $password: String!) {
  login(practice: $practice, email: $email, password: $password) {
    __typename
    ... on LoginSuccess { token }
    ... on Error { code }
  }
}
"""
CREATE_PATIENT = """
mutation CreatePatient($input: CreatePatientInput!) {
  createPatient(input: $input) {
    __typename
    ... on PatientCreated { patient { id } }
    ... on Error { code message }
  }
}
"""
UPDATE_PATIENT = """
mutation UpdatePatient($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { __typename ... on Error { code message } }
}
"""
SEARCH = """
query Search($search: String) { patients(search: $search) { totalCount edges { node { id } } } }
"""
SEND_INVITATION = """
mutation SendInvitation($id: ID!) {
  sendInvitation(patientId: $id) { __typename ... on Error { code } }
}
"""
PREVIEW = "query Preview($token: String!) { invitation(token: $token) { email usable } }"
CREATE_ACCOUNT = """
mutation CreateAccount($token: String!, $password: String!) {
  createAccount(token: $token, password: $password, passwordConfirmation: $password) {
    __typename ... on Error { code message }
  }
}
"""
REQUEST_CODE = """
mutation RequestCode($practice: String!, $email: String!) {
  requestVerificationCode(practice: $practice, email: $email) { __typename }
}
"""
VERIFY_CODE = """
mutation VerifyCode($practice: String!, $email: String!, $code: String!) {
  verifyResetCode(practice: $practice, email: $email, code: $code) {
    __typename ... on ResetCodeVerified { token } ... on Error { code }
  }
}
"""
RESET_PASSWORD = """
mutation ResetPassword($token: String!, $password: String!) {
  resetPassword(token: $token, password: $password, passwordConfirmation: $password) {
    __typename ... on Error { code message }
  }
}
"""
GENERATE_LINK = """
mutation GenerateLink($id: ID!, $expiresAt: DateTime!) {
  generateResetLink(patientId: $id, expiresAt: $expiresAt) {
    __typename ... on ResetLinkGenerated { url } ... on Error { code }
  }
}
"""
CHANGE_PASSWORD = """
mutation ChangePassword($current: String!, $password: String!) {
  changePassword(currentPassword: $current, password: $password, passwordConfirmation: $password) {
    __typename ... on Error { code message }
  }
}
"""
LOGOUT = "mutation Logout { logout }"

ADMIN_EMAIL = "wystan.admin@north.example"
WRONG_PASSWORD = "gravel-nightjar-umbrella-40"
UNKNOWN_EMAIL = "nobody.ozymandias@north.example"
FIRST_NAME = "Zenobia"
LAST_NAME = "Quillfeather"
NEW_LAST_NAME = "Marchbanks"
PATIENT_EMAIL = "zenobia.quill@mail.example"
NEW_PATIENT_EMAIL = "z.marchbanks@mail.example"
PHONE = "+1 555 867 5309"
NEW_PHONE = "+44 20 7946 0958"
DATE_OF_BIRTH = "1987-03-14"
SEARCH_TERM = "quillfea"
ACCOUNT_PASSWORD = "amber-falcon-whisper-64"
RESET_PASSWORD_VALUE = "cobalt-meadow-river-19"
ADMIN_NEW_PASSWORD = "indigo-lantern-sparrow-33"
FAILURE_DETAIL = f"duplicate key value ({PATIENT_EMAIL}) for {LAST_NAME}"


class Flow:
    """The requests of the full run, and every secret that went through them."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.secrets: set[str] = {
            factories.PASSWORD,
            ADMIN_EMAIL,
            WRONG_PASSWORD,
            UNKNOWN_EMAIL,
            FIRST_NAME,
            LAST_NAME,
            NEW_LAST_NAME,
            PATIENT_EMAIL,
            NEW_PATIENT_EMAIL,
            PHONE,
            NEW_PHONE,
            "8675309",
            "79460958",
            DATE_OF_BIRTH,
            SEARCH_TERM,
            ACCOUNT_PASSWORD,
            RESET_PASSWORD_VALUE,
            ADMIN_NEW_PASSWORD,
        }
        self.requests = 0

    def keep(self, *values: str) -> None:
        for value in values:
            assert value, "a secret the flow relies on came back empty"
            self.secrets.add(value)

    async def data(
        self, query: str, operation: str, bearer: str | None = None, **variables: Any
    ) -> dict[str, Any]:
        self.requests += 1
        response = await post(self.http, query, variables, operation, bearer)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        result: dict[str, Any] = body["data"]
        return result

    async def login(self, email: str, password: str) -> str:
        result = await self.data(LOGIN, "Login", practice="north", email=email, password=password)
        assert result["login"]["__typename"] == "LoginSuccess", result
        token: str = result["login"]["token"]
        self.keep(token)
        return token


async def run_every_flow(
    flow: Flow,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Staff sign in, once wrongly.
    admin = await flow.login(ADMIN_EMAIL, factories.PASSWORD)
    failed = await flow.data(
        LOGIN, "Login", practice="north", email=ADMIN_EMAIL, password=WRONG_PASSWORD
    )
    assert failed["login"]["__typename"] == "InvalidCredentialsError"
    unknown = await flow.data(
        LOGIN, "Login", practice="north", email=UNKNOWN_EMAIL, password=WRONG_PASSWORD
    )
    assert unknown["login"]["__typename"] == "InvalidCredentialsError"

    # A patient profile is created, changed and searched for.
    created = await flow.data(
        CREATE_PATIENT,
        "CreatePatient",
        admin,
        input={
            "firstName": FIRST_NAME,
            "lastName": LAST_NAME,
            "email": PATIENT_EMAIL,
            "phone": PHONE,
            "dateOfBirth": DATE_OF_BIRTH,
        },
    )
    assert created["createPatient"]["__typename"] == "PatientCreated", created
    patient_id = created["createPatient"]["patient"]["id"]
    invalid = await flow.data(
        CREATE_PATIENT,
        "CreatePatient",
        admin,
        input={"firstName": FIRST_NAME, "lastName": LAST_NAME, "email": "not-an-email" + LAST_NAME},
    )
    assert invalid["createPatient"]["__typename"] == "ValidationError"
    found = await flow.data(SEARCH, "Search", admin, search=SEARCH_TERM)
    assert found["patients"]["totalCount"] == 1
    updated = await flow.data(
        UPDATE_PATIENT,
        "UpdatePatient",
        admin,
        id=patient_id,
        input={"lastName": NEW_LAST_NAME, "phone": NEW_PHONE, "email": NEW_PATIENT_EMAIL},
    )
    assert updated["updatePatient"]["__typename"] == "PatientUpdated", updated

    # The patient is invited, previews the link and signs up.
    sent = await flow.data(SEND_INVITATION, "SendInvitation", admin, id=patient_id)
    assert sent["sendInvitation"]["__typename"] == "InvitationSent", sent
    await deliver_mail()
    invitation_token = token_in(mailbox.to(NEW_PATIENT_EMAIL)[-1])
    flow.keep(invitation_token)
    preview = await flow.data(PREVIEW, "Preview", token=invitation_token)
    assert preview["invitation"] == {"email": NEW_PATIENT_EMAIL, "usable": True}
    account = await flow.data(
        CREATE_ACCOUNT, "CreateAccount", token=invitation_token, password=ACCOUNT_PASSWORD
    )
    assert account["createAccount"]["__typename"] == "AccountCreated", account
    await flow.login(NEW_PATIENT_EMAIL, ACCOUNT_PASSWORD)

    # The patient forgets the password and recovers with an emailed code.
    requested = await flow.data(
        REQUEST_CODE, "RequestCode", practice="north", email=NEW_PATIENT_EMAIL
    )
    assert requested["requestVerificationCode"]["__typename"] == "VerificationCodeSent"
    await deliver_mail()
    code = code_in(mailbox.to(NEW_PATIENT_EMAIL)[-1])
    flow.keep(code)
    verified = await flow.data(
        VERIFY_CODE, "VerifyCode", practice="north", email=NEW_PATIENT_EMAIL, code=code
    )
    assert verified["verifyResetCode"]["__typename"] == "ResetCodeVerified", verified
    reset_token = verified["verifyResetCode"]["token"]
    flow.keep(reset_token)
    reset = await flow.data(
        RESET_PASSWORD, "ResetPassword", token=reset_token, password=RESET_PASSWORD_VALUE
    )
    assert reset["resetPassword"]["__typename"] == "PasswordReset", reset
    await flow.login(NEW_PATIENT_EMAIL, RESET_PASSWORD_VALUE)

    # An admin makes a reset link for the patient.
    expires_at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    link = await flow.data(
        GENERATE_LINK, "GenerateLink", admin, id=patient_id, expiresAt=expires_at
    )
    assert link["generateResetLink"]["__typename"] == "ResetLinkGenerated", link
    url = link["generateResetLink"]["url"]
    flow.keep(url, parse_qs(urlsplit(url).query)["token"][0])
    await deliver_mail()  # the password-changed notice, among others

    # The admin changes their own password, then signs out.
    changed = await flow.data(
        CHANGE_PASSWORD,
        "ChangePassword",
        admin,
        current=factories.PASSWORD,
        password=ADMIN_NEW_PASSWORD,
    )
    assert changed["changePassword"]["__typename"] == "PasswordChanged", changed
    admin = await flow.login(ADMIN_EMAIL, ADMIN_NEW_PASSWORD)
    assert (await flow.data(LOGOUT, "Logout", admin))["logout"] is True

    # A bug whose exception message quotes patient data.
    other_admin = await flow.login(ADMIN_EMAIL, ADMIN_NEW_PASSWORD)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(FAILURE_DETAIL)

    monkeypatch.setattr(patients_service, "list_patients", broken)
    flow.requests += 1
    response = await post(flow.http, SEARCH, {"search": SEARCH_TERM}, "Search", other_admin)
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    flow.keep(FAILURE_DETAIL)


def texts_of(record: logging.LogRecord) -> Iterator[tuple[str, str]]:
    """Every rendering of a record a log reader could see, with its source."""
    yield "message", record.getMessage()
    yield "text", TextFormatter().format(record)
    yield "json", JsonFormatter().format(record)
    yield "default", logging.Formatter().format(record)
    for key, value in vars(record).items():
        if key not in NUMERIC_ATTRIBUTES:
            yield key, repr(value)
            yield key, str(value)


@pytest.fixture
async def staff(practice: Practice) -> None:
    await factories.make_staff(practice, Role.ADMIN, email=ADMIN_EMAIL)


async def test_no_secret_of_any_flow_reaches_the_logs(
    staff: None,
    http: httpx.AsyncClient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert not logging.getLogger("tortoise.db_client").isEnabledFor(logging.DEBUG)
    for name in SCANNED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    flow = Flow(http)

    await run_every_flow(flow, mailbox, deliver_mail, monkeypatch)

    assert not logging.getLogger("tortoise.db_client").isEnabledFor(logging.DEBUG)
    records = caplog.records
    assert len(request_lines(caplog)) == flow.requests
    assert any(r.levelno >= logging.ERROR and "RuntimeError" in r.getMessage() for r in records), (
        "the bug is still logged, by its type"
    )
    secrets = sorted(flow.secrets)
    leaks = [
        (record.name, source, secret)
        for record in records
        for source, text in texts_of(record)
        for secret in secrets
        if secret.lower() in text.lower()
    ]
    assert leaks == []
