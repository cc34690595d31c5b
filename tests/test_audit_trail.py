"""The audit trail: one event per action, with who, to which patient, from
where; never a secret or a name; read by ADMINs of the practice, newest first."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest

from models import Account, AuditAction, AuditEvent, Patient, Practice, Role
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient, Mailbox
from tests.mail import another_code, code_in, token_in

DeliverMail = Callable[[], Awaitable[object]]

USER_AGENT = "AuditTrailTest/1.0 (+https://browser.test)"
CLIENT_IP = "127.0.0.1"  # httpx.ASGITransport's client address
GRACE = "grace@mail.example"
WRONG = "not-the-password-at-all"
NEW_PASSWORD = "velvet-harbour-quantum-57"
OTHER_PASSWORD = "copper-meadow-lantern-83"
THIRD_PASSWORD = "amber-glacier-violin-64"

CREATE_PATIENT = """
mutation Create($input: CreatePatientInput!) {
  createPatient(input: $input) {
    __typename
    ... on PatientCreated { patient { id } }
    ... on Error { code }
  }
}
"""
UPDATE_PATIENT = """
mutation Update($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { __typename ... on Error { code } }
}
"""
SEND_INVITATION = """
mutation Send($id: ID!) { sendInvitation(patientId: $id) { __typename ... on Error { code } } }
"""
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
  verifyResetCode(practice: "north", email: $email, code: $code) {
    __typename
    ... on ResetCodeVerified { token }
  }
}
"""
RESET_PASSWORD = """
mutation Reset($token: String!, $password: String!) {
  resetPassword(token: $token, password: $password, passwordConfirmation: $password) {
    __typename
  }
}
"""
GENERATE_LINK = """
mutation Link($id: ID!, $expiresAt: DateTime!) {
  generateResetLink(patientId: $id, expiresAt: $expiresAt) {
    __typename
    ... on ResetLinkGenerated { url }
  }
}
"""
CHANGE_PASSWORD = """
mutation Change($current: String!, $password: String!) {
  changePassword(currentPassword: $current, password: $password, passwordConfirmation: $password) {
    __typename
  }
}
"""
LOGOUT = "mutation { logout }"
PATIENT_PORTAL = "query Patient($id: ID!) { patient(id: $id) { id portal { status } } }"
AUDIT_EVENTS = """
query Audit($patientId: ID, $first: Int!, $after: String) {
  auditEvents(patientId: $patientId, first: $first, after: $after) {
    edges {
      cursor
      node {
        id action occurredAt actorAccountId actorRole actorEmail patientId patientName
        clientIp userAgent
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

NEW_PATIENT = {
    "firstName": "Katherine",
    "lastName": "Johnson",
    "dateOfBirth": "1968-08-26",
    "email": "katherine@mail.example",
    "phone": "+1 555 0177",
}


@pytest.fixture(autouse=True)
def browser_user_agent(http: httpx.AsyncClient) -> None:
    """Every request of the test, the role fixtures' sign-ins too, names a browser."""
    http.headers["User-Agent"] = USER_AGENT


async def events(action: AuditAction) -> list[AuditEvent]:
    return await AuditEvent.filter(action=action).order_by("occurred_at")


async def only(action: AuditAction) -> AuditEvent:
    found = await events(action)
    assert len(found) == 1, [(e.action, e.account_id) for e in found]
    return found[0]


def assert_event(
    event: AuditEvent,
    *,
    practice: Practice | None,
    account_id: uuid.UUID | None,
    role: Role | None,
    patient_id: uuid.UUID | None = None,
) -> None:
    assert event.practice_id == (practice.id if practice else None)
    assert event.account_id == account_id
    assert event.role == role
    assert event.patient_id == patient_id
    assert event.client_ip == CLIENT_IP
    assert event.user_agent == USER_AGENT


async def account_of(email: str) -> Account:
    return await Account.get(email=email)


async def login_answer(
    client: GraphQLClient, email: str, password: str, practice: str = "north"
) -> str:
    result = await client.data(LOGIN, practice=practice, email=email, password=password)
    typename: str = result["login"]["__typename"]
    return typename


async def invite_and_sign_up(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> str:
    """Invites the patient and creates their account; returns the invitation token."""
    await admin.data(SEND_INVITATION, id=str(patient.id))
    await deliver_mail()
    token = token_in(mailbox.to(patient.email or "")[-1])
    created = await anonymous.data(CREATE_ACCOUNT, token=token, password=NEW_PASSWORD)
    assert created["createAccount"]["__typename"] == "AccountCreated"
    return token


async def emailed_code(
    client: GraphQLClient, mailbox: Mailbox, deliver_mail: DeliverMail, email: str = GRACE
) -> str:
    result = await client.data(REQUEST_CODE, email=email)
    assert result["requestVerificationCode"]["__typename"] == "VerificationCodeSent"
    await deliver_mail()
    return code_in(mailbox.to(email)[-1])


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


# --- one event per action ---


async def test_a_staff_sign_in_is_recorded(
    anonymous: GraphQLClient, admin_account: Account, practice: Practice
) -> None:
    response = await anonymous.http.post(
        "/graphql",
        json={
            "query": LOGIN,
            "variables": {
                "practice": "north",
                "email": admin_account.email,
                "password": factories.PASSWORD,
            },
        },
        headers={"X-Forwarded-For": "203.0.113.66"},  # no trusted proxy: ignored
    )
    assert response.json()["data"]["login"]["__typename"] == "LoginSuccess"

    event = await only(AuditAction.LOGIN_SUCCEEDED)

    assert_event(event, practice=practice, account_id=admin_account.id, role=Role.ADMIN)


async def test_a_patient_s_sign_in_names_the_patient(
    patient: GraphQLClient, patient_profile: Patient, practice: Practice
) -> None:
    event = await only(AuditAction.LOGIN_SUCCEEDED)

    account = await account_of(GRACE)
    assert_event(
        event,
        practice=practice,
        account_id=account.id,
        role=Role.PATIENT,
        patient_id=patient_profile.id,
    )


async def test_a_failed_sign_in_names_the_account_only_when_there_is_one(
    anonymous: GraphQLClient, admin_account: Account, practice: Practice
) -> None:
    assert await login_answer(anonymous, admin_account.email, WRONG) == "InvalidCredentialsError"
    assert await login_answer(anonymous, "ghost@north.example", WRONG) == (
        "InvalidCredentialsError"
    )

    known, unknown = await events(AuditAction.LOGIN_FAILED)

    assert_event(known, practice=practice, account_id=admin_account.id, role=Role.ADMIN)
    assert_event(unknown, practice=practice, account_id=None, role=None)
    assert await AuditEvent.filter(action=AuditAction.LOGIN_SUCCEEDED).count() == 0


async def test_a_failed_sign_in_at_an_unknown_practice_belongs_to_no_practice(
    anonymous: GraphQLClient, admin_account: Account
) -> None:
    await login_answer(anonymous, admin_account.email, factories.PASSWORD, practice="nowhere")

    event = await only(AuditAction.LOGIN_FAILED)

    assert_event(event, practice=None, account_id=None, role=None)


async def test_a_throttled_sign_in_is_recorded(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account, practice: Practice
) -> None:
    for _ in range(10):
        await login_answer(anonymous, admin_account.email, WRONG)

    answer = await login_answer(anonymous, admin_account.email, factories.PASSWORD)

    assert answer == "RateLimitedError"
    event = await only(AuditAction.LOGIN_THROTTLED)
    assert event.practice_id == practice.id
    assert event.account_id in (None, admin_account.id)
    assert event.patient_id is None
    assert (event.client_ip, event.user_agent) == (CLIENT_IP, USER_AGENT)
    assert len(await events(AuditAction.LOGIN_FAILED)) == 10
    assert await AuditEvent.filter(action=AuditAction.LOGIN_SUCCEEDED).count() == 0


async def test_signing_out_is_recorded_once(
    admin: GraphQLClient, admin_account: Account, practice: Practice
) -> None:
    assert (await admin.data(LOGOUT))["logout"] is True
    assert (await admin.data(LOGOUT))["logout"] is False  # nothing ended: nothing recorded

    event = await only(AuditAction.LOGOUT)

    assert_event(event, practice=practice, account_id=admin_account.id, role=Role.ADMIN)


async def test_creating_a_patient_is_recorded(
    admin: GraphQLClient, admin_account: Account, practice: Practice
) -> None:
    result = await admin.data(CREATE_PATIENT, input=NEW_PATIENT)
    patient_id = uuid.UUID(result["createPatient"]["patient"]["id"])

    event = await only(AuditAction.PATIENT_CREATED)

    assert_event(
        event,
        practice=practice,
        account_id=admin_account.id,
        role=Role.ADMIN,
        patient_id=patient_id,
    )


async def test_a_refused_creation_records_no_patient_created(
    admin: GraphQLClient, practice: Practice
) -> None:
    for bad in ({"lastName": " "}, {"email": "not an email"}, {"dateOfBirth": "2999-01-01"}):
        result = await admin.data(CREATE_PATIENT, input={**NEW_PATIENT, **bad})
        assert result["createPatient"]["code"] == "VALIDATION", bad

    assert await events(AuditAction.PATIENT_CREATED) == []
    assert await Patient.all().count() == 0


async def test_updating_a_patient_is_recorded_and_a_refused_update_is_not(
    admin: GraphQLClient, admin_account: Account, patient_profile: Patient, practice: Practice
) -> None:
    refused = await admin.data(UPDATE_PATIENT, id=str(patient_profile.id), input={"phone": "x"})
    assert refused["updatePatient"]["code"] == "VALIDATION"
    assert await events(AuditAction.PATIENT_UPDATED) == []

    done = await admin.data(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"phone": "+1 555 0199"}
    )
    assert done["updatePatient"]["__typename"] == "PatientUpdated"

    event = await only(AuditAction.PATIENT_UPDATED)
    assert_event(
        event,
        practice=practice,
        account_id=admin_account.id,
        role=Role.ADMIN,
        patient_id=patient_profile.id,
    )
    assert await events(AuditAction.INVITATION_CANCELLED) == []


async def test_sending_an_invitation_is_recorded(
    admin: GraphQLClient, admin_account: Account, patient_profile: Patient, practice: Practice
) -> None:
    result = await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    assert result["sendInvitation"]["__typename"] == "InvitationSent"

    event = await only(AuditAction.INVITATION_SENT)

    assert_event(
        event,
        practice=practice,
        account_id=admin_account.id,
        role=Role.ADMIN,
        patient_id=patient_profile.id,
    )


async def test_an_email_change_that_cancels_an_invitation_records_both(
    admin: GraphQLClient, admin_account: Account, patient_profile: Patient, practice: Practice
) -> None:
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))

    result = await admin.data(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"email": "grace.h@mail.example"}
    )

    assert result["updatePatient"]["__typename"] == "PatientUpdated"
    for action in (AuditAction.INVITATION_CANCELLED, AuditAction.PATIENT_UPDATED):
        assert_event(
            await only(action),
            practice=practice,
            account_id=admin_account.id,
            role=Role.ADMIN,
            patient_id=patient_profile.id,
        )


async def test_creating_an_account_is_recorded_as_the_new_account(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    practice: Practice,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await invite_and_sign_up(admin, anonymous, patient_profile, mailbox, deliver_mail)

    event = await only(AuditAction.ACCOUNT_CREATED)

    account = await account_of(GRACE)
    assert_event(
        event,
        practice=practice,
        account_id=account.id,
        role=Role.PATIENT,
        patient_id=patient_profile.id,
    )


async def test_the_code_path_records_request_failure_verification_and_reset(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    practice: Practice,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    code = await emailed_code(anonymous, mailbox, deliver_mail)
    failed = await anonymous.data(VERIFY_CODE, email=GRACE, code=another_code(code))
    assert failed["verifyResetCode"]["__typename"] == "InvalidCodeError"
    verified = await anonymous.data(VERIFY_CODE, email=GRACE, code=code)
    token = verified["verifyResetCode"]["token"]
    reset = await anonymous.data(RESET_PASSWORD, token=token, password=NEW_PASSWORD)
    assert reset["resetPassword"]["__typename"] == "PasswordReset"

    for action in (
        AuditAction.CODE_REQUESTED,
        AuditAction.CODE_FAILED,
        AuditAction.CODE_VERIFIED,
        AuditAction.PASSWORD_RESET_BY_CODE,
    ):
        assert_event(
            await only(action),
            practice=practice,
            account_id=account.id,
            role=Role.PATIENT,
            patient_id=patient_profile.id,
        )
    assert await events(AuditAction.PASSWORD_RESET_BY_LINK) == []


async def test_unknown_emails_on_the_code_path_name_no_account(
    anonymous: GraphQLClient, practice: Practice
) -> None:
    await anonymous.data(REQUEST_CODE, email="nobody@mail.example")
    await anonymous.data(VERIFY_CODE, email="nobody@mail.example", code="123456")

    assert await AuditEvent.filter(account_id__not_isnull=True).count() == 0


async def test_the_link_path_records_the_generation_and_the_reset(
    admin: GraphQLClient,
    admin_account: Account,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    practice: Practice,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    generated = await admin.data(GENERATE_LINK, id=str(patient_profile.id), expiresAt=tomorrow())
    url = generated["generateResetLink"]["url"]
    token = parse_qs(urlsplit(url).query)["token"][0]
    reset = await anonymous.data(RESET_PASSWORD, token=token, password=NEW_PASSWORD)
    assert reset["resetPassword"]["__typename"] == "PasswordReset"

    assert_event(
        await only(AuditAction.RESET_LINK_GENERATED),
        practice=practice,
        account_id=admin_account.id,
        role=Role.ADMIN,
        patient_id=patient_profile.id,
    )
    assert_event(
        await only(AuditAction.PASSWORD_RESET_BY_LINK),
        practice=practice,
        account_id=account.id,
        role=Role.PATIENT,
        patient_id=patient_profile.id,
    )
    assert await events(AuditAction.PASSWORD_RESET_BY_CODE) == []


async def test_changing_one_s_password_is_recorded_and_a_wrong_current_one_is_not(
    patient: GraphQLClient, patient_profile: Patient, practice: Practice
) -> None:
    refused = await patient.data(CHANGE_PASSWORD, current=WRONG, password=NEW_PASSWORD)
    assert refused["changePassword"]["__typename"] == "InvalidCredentialsError"
    assert await events(AuditAction.PASSWORD_CHANGED) == []

    changed = await patient.data(CHANGE_PASSWORD, current=factories.PASSWORD, password=NEW_PASSWORD)
    assert changed["changePassword"]["__typename"] == "PasswordChanged"

    account = await account_of(GRACE)
    assert_event(
        await only(AuditAction.PASSWORD_CHANGED),
        practice=practice,
        account_id=account.id,
        role=Role.PATIENT,
        patient_id=patient_profile.id,
    )


async def test_a_refusal_is_recorded_as_permission_denied(
    clinician: GraphQLClient, practice: Practice
) -> None:
    body = await clinician.post(CREATE_PATIENT, input=NEW_PATIENT)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    event = await only(AuditAction.PERMISSION_DENIED)

    account = await account_of("clin@north.example")
    assert_event(event, practice=practice, account_id=account.id, role=Role.CLINICIAN)
    assert await events(AuditAction.PATIENT_CREATED) == []


async def test_a_refused_field_of_a_patient_names_the_patient(
    clinician: GraphQLClient, patient_profile: Patient, practice: Practice
) -> None:
    body = await clinician.post(PATIENT_PORTAL, id=str(patient_profile.id))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    event = await only(AuditAction.PERMISSION_DENIED)

    account = await account_of("clin@north.example")
    assert_event(
        event,
        practice=practice,
        account_id=account.id,
        role=Role.CLINICIAN,
        patient_id=patient_profile.id,
    )


async def test_a_signed_out_caller_s_refusal_records_nothing(anonymous: GraphQLClient) -> None:
    body = await anonymous.post(CREATE_PATIENT, input=NEW_PATIENT)

    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await AuditEvent.all().count() == 0


async def test_a_very_long_user_agent_is_cut_to_200_characters(
    anonymous: GraphQLClient, admin_account: Account
) -> None:
    anonymous.http.headers["User-Agent"] = "A" * 1000

    assert await login_answer(anonymous, admin_account.email, factories.PASSWORD) == (
        "LoginSuccess"
    )

    event = await only(AuditAction.LOGIN_SUCCEEDED)
    assert event.user_agent == "A" * 200


# --- no secrets, no names ---


async def test_no_event_holds_a_password_token_code_email_or_name(
    clock: FrozenClock,
    admin: GraphQLClient,
    admin_account: Account,
    clinician: GraphQLClient,
    anonymous: GraphQLClient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
    practice: Practice,
) -> None:
    secrets: list[str] = [factories.PASSWORD, WRONG, NEW_PASSWORD, OTHER_PASSWORD, THIRD_PASSWORD]
    secrets += [admin.token or "", clinician.token or ""]
    secrets += [admin_account.email, "clin@north.example", "ghost@north.example", GRACE]
    # Sign-in failures and a throttled sign-in.
    await login_answer(anonymous, admin_account.email, WRONG)
    await login_answer(anonymous, "ghost@north.example", WRONG)
    for _ in range(10):
        await login_answer(anonymous, "ghost@north.example", WRONG)
    # A patient created, changed, invited; the invitation cancelled by an email change.
    created = await admin.data(CREATE_PATIENT, input=NEW_PATIENT)
    katherine = created["createPatient"]["patient"]["id"]
    await admin.data(SEND_INVITATION, id=katherine)
    await admin.data(UPDATE_PATIENT, id=katherine, input={"email": "kj@mail.example"})
    await deliver_mail()
    secrets += [token_in(mailbox.to("katherine@mail.example")[-1])]
    secrets += ["Katherine", "Johnson", "katherine@mail.example", "kj@mail.example"]
    secrets += ["Grace", "Hopper", "Gracie"]
    # Grace signs up, signs in, changes her name's spelling via the admin.
    grace = await factories.make_patient(
        practice, first_name="Grace", last_name="Hopper", email=GRACE
    )
    secrets += [await invite_and_sign_up(admin, anonymous, grace, mailbox, deliver_mail)]
    await admin.data(UPDATE_PATIENT, id=str(grace.id), input={"firstName": "Gracie"})
    signed_in = await anonymous.login("north", GRACE, NEW_PASSWORD)
    secrets += [signed_in.token or ""]
    # The code path: a wrong code, the right code, a reset.
    code = await emailed_code(anonymous, mailbox, deliver_mail)
    codes = [code, another_code(code)]
    await anonymous.data(VERIFY_CODE, email=GRACE, code=another_code(code))
    verified = await anonymous.data(VERIFY_CODE, email=GRACE, code=code)
    reset_token = verified["verifyResetCode"]["token"]
    secrets += [reset_token]
    await anonymous.data(RESET_PASSWORD, token=reset_token, password=OTHER_PASSWORD)
    # The link path.
    generated = await admin.data(GENERATE_LINK, id=str(grace.id), expiresAt=tomorrow())
    url = generated["generateResetLink"]["url"]
    link_token = parse_qs(urlsplit(url).query)["token"][0]
    secrets += [url, link_token]
    await anonymous.data(RESET_PASSWORD, token=link_token, password=THIRD_PASSWORD)
    # Changing the password while signed in, then signing out.
    patient = await anonymous.login("north", GRACE, THIRD_PASSWORD)
    secrets += [patient.token or ""]
    # Another device signed out by its id, then a third by "everywhere else".
    second = await anonymous.login("north", GRACE, THIRD_PASSWORD)
    third = await anonymous.login("north", GRACE, THIRD_PASSWORD)
    secrets += [second.token or "", third.token or ""]
    sessions = (await patient.data("query { mySessions { id current } }"))["mySessions"]
    other_id = next(s["id"] for s in sessions if not s["current"])
    await patient.data("mutation($id: ID!) { endSession(id: $id) }", id=other_id)
    await patient.data("mutation { endOtherSessions }")
    await patient.data(CHANGE_PASSWORD, current=THIRD_PASSWORD, password=NEW_PASSWORD + "x")
    secrets += [NEW_PASSWORD + "x"]
    await patient.data(LOGOUT)
    # Portal access revoked, a sign-in refused for it with the right password, restored.
    await admin.data(REVOKE_ACCESS, id=str(grace.id))
    await login_answer(anonymous, GRACE, NEW_PASSWORD + "x")
    await admin.data(RESTORE_ACCESS, id=str(grace.id))
    # A member of staff invited; another disabled, then enabled.
    await admin.data(INVITE_STAFF, email="newhire@north.example")
    secrets += ["newhire@north.example"]
    bea = await factories.make_staff(practice, Role.CLINICIAN, email="bea@north.example")
    await admin.data(DISABLE_ACCOUNT, id=str(bea.id))
    await admin.data(ENABLE_ACCOUNT, id=str(bea.id))
    # Two-step verification: turned on, a wrong code, a recovery code.
    cleo_account = await factories.make_staff(practice, Role.CLINICIAN, email="cleo@north.example")
    cleo = await anonymous.login("north", cleo_account.email, factories.PASSWORD)
    secret = (await cleo.data("mutation { beginMfaEnrollment { secret } }"))["beginMfaEnrollment"][
        "secret"
    ]
    enabled = await cleo.data(CONFIRM_MFA, c=pyotp.TOTP(secret).at(clock.now()))
    recovery = enabled["confirmMfaEnrollment"]["recoveryCodes"]
    stepped = await anonymous.data(
        LOGIN_STEP, email=cleo_account.email, password=factories.PASSWORD
    )
    challenge = stepped["login"]["challenge"]
    await anonymous.data(SECOND_STEP, challenge=challenge, code="000000")
    await anonymous.data(SECOND_STEP, challenge=challenge, code=recovery[0])
    secrets += [secret, challenge, *recovery]
    # Cleo turns it off; the admin turns it on, requires it of staff and
    # stops requiring it, and resets Dora's after she turned hers on.
    await cleo.data(
        "mutation($p: String!) { disableMfa(password: $p) { __typename } }",
        p=factories.PASSWORD,
    )
    admin_secret = (await admin.data("mutation { beginMfaEnrollment { secret } }"))[
        "beginMfaEnrollment"
    ]["secret"]
    await admin.data(CONFIRM_MFA, c=pyotp.TOTP(admin_secret).at(clock.now()))
    await admin.data(SET_REQUIRED, r=True)
    await admin.data(SET_REQUIRED, r=False)
    dora_account = await factories.make_staff(practice, Role.CLINICIAN, email="dora@north.example")
    dora = await anonymous.login("north", dora_account.email, factories.PASSWORD)
    dora_secret = (await dora.data("mutation { beginMfaEnrollment { secret } }"))[
        "beginMfaEnrollment"
    ]["secret"]
    await dora.data(CONFIRM_MFA, c=pyotp.TOTP(dora_secret).at(clock.now()))
    await admin.data(
        "mutation($id: ID!) { resetStaffMfa(accountId: $id) { __typename } }",
        id=str(dora_account.id),
    )
    secrets += [admin_secret, dora_secret]
    # A refusal.
    await clinician.post(CREATE_PATIENT, input=NEW_PATIENT)

    rows = await AuditEvent.all().values()

    assert {row["action"] for row in rows} >= set(AuditAction), "the run covers every action"
    secrets = [s for s in secrets if s]
    for row in rows:
        texts = [str(value).lower() for value in row.values() if value is not None]
        for secret in secrets:
            assert not any(secret.lower() in text for text in texts), (secret, row)
        # A six-digit code could match digits of an id or a timestamp by chance.
        plain = [
            str(value)
            for value in row.values()
            if value is not None and not isinstance(value, (uuid.UUID, datetime, date))
        ]
        for digits in codes:
            assert not any(digits in text for text in plain), (digits, row)


# --- reading the trail: auditEvents ---


async def audit_page(client: GraphQLClient, **variables: Any) -> dict[str, Any]:
    variables.setdefault("first", 100)
    page: dict[str, Any] = (await client.data(AUDIT_EVENTS, **variables))["auditEvents"]
    return page


def nodes(page: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in page["edges"]]


LOGIN_STEP = """
mutation($email: String!, $password: String!) {
  login(practice: "north", email: $email, password: $password) {
    ... on MfaRequired { challenge }
  }
}
"""
SET_REQUIRED = "mutation($r: Boolean!) { setStaffMfaRequired(required: $r) { __typename } }"
CONFIRM_MFA = """
mutation($c: String!) { confirmMfaEnrollment(code: $c) { ... on MfaEnabled { recoveryCodes } } }
"""
SECOND_STEP = """
mutation($challenge: String!, $code: String!) {
  completeMfaLogin(challenge: $challenge, code: $code) { __typename }
}
"""
INVITE_STAFF = (
    "mutation($email: String!) { inviteStaff(email: $email, role: CLINICIAN) { __typename } }"
)
DISABLE_ACCOUNT = "mutation($id: ID!) { disableAccount(accountId: $id) { __typename } }"
ENABLE_ACCOUNT = "mutation($id: ID!) { enableAccount(accountId: $id) { __typename } }"
REVOKE_ACCESS = "mutation($id: ID!) { revokePortalAccess(patientId: $id) { __typename } }"
RESTORE_ACCESS = "mutation($id: ID!) { restorePortalAccess(patientId: $id) { __typename } }"


def error_code(body: dict[str, Any]) -> str:
    """The code of a refused or failed `auditEvents`, which is then null."""
    assert body.get("data") in (None, {"auditEvents": None}), body
    code: str = body["errors"][0]["extensions"]["code"]
    return code


async def test_an_admin_reads_the_events_with_every_field(
    clock: FrozenClock,
    admin: GraphQLClient,
    admin_account: Account,
    patient_profile: Patient,
) -> None:
    clock.advance(seconds=1)
    await admin.data(UPDATE_PATIENT, id=str(patient_profile.id), input={"phone": "+1 555 0199"})

    updated, signed_in = nodes(await audit_page(admin))

    assert updated == {
        "id": updated["id"],
        "action": "PATIENT_UPDATED",
        "occurredAt": clock.now().isoformat(),
        "actorAccountId": str(admin_account.id),
        "actorRole": "ADMIN",
        "actorEmail": admin_account.email,
        "patientId": str(patient_profile.id),
        "patientName": f"{patient_profile.first_name} {patient_profile.last_name}",
        "clientIp": CLIENT_IP,
        "userAgent": USER_AGENT,
    }
    assert signed_in["action"] == "LOGIN_SUCCEEDED"
    assert signed_in["patientId"] is None
    assert signed_in["patientName"] is None
    assert signed_in["actorEmail"] == admin_account.email
    assert uuid.UUID(updated["id"]) != uuid.UUID(signed_in["id"])


async def test_only_admins_read_the_trail(
    clinician: GraphQLClient, patient: GraphQLClient, anonymous: GraphQLClient
) -> None:
    assert error_code(await clinician.post(AUDIT_EVENTS, first=10)) == "FORBIDDEN"
    assert error_code(await patient.post(AUDIT_EVENTS, first=10)) == "FORBIDDEN"
    assert error_code(await anonymous.post(AUDIT_EVENTS, first=10)) == "UNAUTHENTICATED"

    denied = await events(AuditAction.PERMISSION_DENIED)
    assert [event.role for event in denied] == [Role.CLINICIAN, Role.PATIENT]


async def test_newest_first(
    clock: FrozenClock, admin: GraphQLClient, admin_account: Account, practice: Practice
) -> None:
    clock.advance(seconds=1)
    created = await admin.data(CREATE_PATIENT, input=NEW_PATIENT)
    patient_id = created["createPatient"]["patient"]["id"]
    clock.advance(seconds=1)
    await admin.data(UPDATE_PATIENT, id=patient_id, input={"phone": "+1 555 0100"})
    clock.advance(seconds=1)
    await admin.data(SEND_INVITATION, id=patient_id)
    clock.advance(seconds=1)
    await login_answer(admin, admin_account.email, WRONG)

    listed = nodes(await audit_page(admin))

    assert [n["action"] for n in listed] == [
        "LOGIN_FAILED",
        "INVITATION_SENT",
        "PATIENT_UPDATED",
        "PATIENT_CREATED",
        "LOGIN_SUCCEEDED",
    ]
    moments = [datetime.fromisoformat(n["occurredAt"]) for n in listed]
    assert moments == sorted(moments, reverse=True)
    assert len(set(moments)) == len(moments)


async def test_a_practice_sees_only_its_own_events(
    admin: GraphQLClient, other_admin: GraphQLClient, patient_profile: Patient
) -> None:
    await admin.data(UPDATE_PATIENT, id=str(patient_profile.id), input={"phone": "+1 555 0199"})

    north = nodes(await audit_page(admin))
    south = nodes(await audit_page(other_admin))

    assert {n["action"] for n in north} == {"LOGIN_SUCCEEDED", "PATIENT_UPDATED"}
    assert [n["action"] for n in south] == ["LOGIN_SUCCEEDED"]
    assert not {n["id"] for n in north} & {n["id"] for n in south}
    south_account = await account_of("admin@south.example")
    assert south[0]["actorAccountId"] == str(south_account.id)
    about_north = await audit_page(other_admin, patientId=str(patient_profile.id))
    assert about_north["edges"] == []
    assert about_north["pageInfo"] == {"hasNextPage": False, "endCursor": None}


async def test_events_filtered_by_patient(
    clock: FrozenClock, admin: GraphQLClient, practice: Practice
) -> None:
    ada = await factories.make_patient(practice)
    alan = await factories.make_patient(practice, first_name="Alan")
    for patient in (ada, alan, ada):
        clock.advance(seconds=1)
        await admin.data(UPDATE_PATIENT, id=str(patient.id), input={"phone": "+1 555 0123"})
    clock.advance(seconds=1)
    await admin.data(SEND_INVITATION, id=str(ada.id))

    about_ada = nodes(await audit_page(admin, patientId=str(ada.id)))
    about_alan = nodes(await audit_page(admin, patientId=str(alan.id)))
    nobody = nodes(await audit_page(admin, patientId=str(uuid.uuid4())))

    assert [n["action"] for n in about_ada] == [
        "INVITATION_SENT",
        "PATIENT_UPDATED",
        "PATIENT_UPDATED",
    ]
    assert {n["patientId"] for n in about_ada} == {str(ada.id)}
    assert [(n["action"], n["patientId"]) for n in about_alan] == [
        ("PATIENT_UPDATED", str(alan.id))
    ]
    assert nobody == []


async def many_events(client: GraphQLClient, count: int) -> None:
    """`count` failed sign-ins of the practice at the current moment, in one request."""
    fields = [
        f'a{i}: login(practice: "north", email: "guess{i}@north.example", '
        f"password: {json.dumps(WRONG)}) {{ __typename }}"
        for i in range(count)
    ]
    await client.data("mutation {\n" + "\n".join(fields) + "\n}")


async def walk(client: GraphQLClient, first: int, **variables: Any) -> list[dict[str, Any]]:
    walked: list[dict[str, Any]] = []
    after = None
    for _ in range(100):
        page = await audit_page(client, first=first, after=after, **variables)
        assert len(page["edges"]) <= first
        walked += nodes(page)
        if not page["pageInfo"]["hasNextPage"]:
            assert page["pageInfo"]["endCursor"] == (
                page["edges"][-1]["cursor"] if page["edges"] else None
            )
            return walked
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    raise AssertionError("the walk did not end")


async def test_pages_walk_every_event_once_even_within_one_moment(
    clock: FrozenClock, admin: GraphQLClient
) -> None:
    await many_events(admin, 12)  # twelve events at the same instant
    clock.advance(seconds=1)
    await many_events(admin, 3)
    clock.advance(seconds=1)
    await many_events(admin, 1)

    everything = nodes(await audit_page(admin))
    assert len(everything) == 17

    for first in (1, 2, 5, 16, 17):
        walked = await walk(admin, first)
        assert [n["id"] for n in walked] == [n["id"] for n in everything], first


async def test_pages_of_one_patient_s_events(clock: FrozenClock, admin: GraphQLClient) -> None:
    created = await admin.data(CREATE_PATIENT, input=NEW_PATIENT)
    patient_id = created["createPatient"]["patient"]["id"]
    for n in range(6):
        await admin.data(UPDATE_PATIENT, id=patient_id, input={"phone": f"+1 555 010{n}"})
    await many_events(admin, 4)

    walked = await walk(admin, 3, patientId=patient_id)

    assert len(walked) == 7
    assert len({n["id"] for n in walked}) == 7
    assert {n["patientId"] for n in walked} == {patient_id}


@pytest.mark.parametrize("first", [0, -1, 101, 1000])
async def test_first_must_be_between_1_and_100(admin: GraphQLClient, first: int) -> None:
    assert error_code(await admin.post(AUDIT_EVENTS, first=first)) == "BAD_USER_INPUT"


async def test_first_may_be_1_or_100(admin: GraphQLClient) -> None:
    assert len((await audit_page(admin, first=1))["edges"]) == 1
    assert len((await audit_page(admin, first=100))["edges"]) == 1


def encoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_a_cursor_not_from_this_list_is_bad_input(
    admin: GraphQLClient, other_admin: GraphQLClient, practice: Practice
) -> None:
    south_page = await audit_page(other_admin, first=1)
    south_cursor = south_page["edges"][0]["cursor"]
    north_patient = await factories.make_patient(practice)
    bad_cursors = [
        "garbage",
        "!!!",
        "",
        encoded("audit:not-a-uuid"),
        encoded(f"patient:{north_patient.id}"),
        encoded(f"audit:{uuid.uuid4()}"),
        south_cursor,  # another practice's event
    ]

    for cursor in bad_cursors:
        body = await admin.post(AUDIT_EVENTS, first=10, after=cursor)
        assert error_code(body) == "BAD_USER_INPUT", cursor


async def test_refusals_repeated_by_aliases_are_written_once_per_request(
    patient: GraphQLClient,
) -> None:
    # Patient.portal is for admins; `patient` is nullable, so each alias fails alone.
    denied = " ".join(f"a{n}: me {{ patient {{ portal {{ status }} }} }}" for n in range(10))

    body = await patient.post(f"{{ {denied} }}")

    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert len(body["errors"]) == 10
    assert await AuditEvent.filter(action=AuditAction.PERMISSION_DENIED).count() == 1
    await patient.post(f"{{ {denied} }}")
    assert await AuditEvent.filter(action=AuditAction.PERMISSION_DENIED).count() == 2
