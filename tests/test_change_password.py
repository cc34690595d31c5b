"""A signed-in person changes their own password."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from models import Account, OutboxMessage, Patient, ResetToken, Session, VerificationCode
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient, Mailbox
from tests.mail import code_in, html_of, text_of

CHANGE = """
mutation Change($current: String!, $password: String!, $confirmation: String!) {
  changePassword(
    currentPassword: $current, password: $password, passwordConfirmation: $confirmation
  ) {
    __typename
    ... on PasswordChanged { email }
    ... on Error { code message }
  }
}
"""

ME = "query { me { email } }"

REQUEST_CODE = """
mutation($email: String!) {
  requestVerificationCode(practice: "north", email: $email) { __typename }
}
"""

VERIFY_CODE = """
mutation($email: String!, $code: String!) {
  verifyResetCode(practice: "north", email: $email, code: $code) {
    __typename
    ... on ResetCodeVerified { token }
    ... on Error { code }
  }
}
"""

GENERATE = """
mutation($id: ID!, $expiresAt: DateTime!) {
  generateResetLink(patientId: $id, expiresAt: $expiresAt) {
    ... on ResetLinkGenerated { url }
  }
}
"""

RESET = """
mutation($token: String!, $password: String!) {
  resetPassword(token: $token, password: $password, passwordConfirmation: $password) {
    __typename
    ... on Error { code }
  }
}
"""

GRACE = "grace@mail.example"
NEW_PASSWORD = "velvet-harbour-quantum-57"
Deliver = Callable[[], Awaitable[object]]


async def change(
    client: GraphQLClient, current: str, password: str, confirmation: str | None = None
) -> dict[str, Any]:
    result = await client.data(
        CHANGE,
        current=current,
        password=password,
        confirmation=password if confirmation is None else confirmation,
    )
    answer: dict[str, Any] = result["changePassword"]
    return answer


async def signs_in(anonymous: GraphQLClient, email: str, password: str) -> bool:
    result = await anonymous.data(LOGIN, practice="north", email=email, password=password)
    return bool(result["login"]["__typename"] == "LoginSuccess")


async def me(client: GraphQLClient) -> Any:
    return (await client.data(ME))["me"]


async def emailed_code(anonymous: GraphQLClient, mailbox: Mailbox, deliver: Deliver) -> str:
    await anonymous.data(REQUEST_CODE, email=GRACE)
    await deliver()
    return code_in(mailbox.to(GRACE)[-1])


async def test_the_password_changes_and_only_the_other_sessions_end(
    patient: GraphQLClient, anonymous: GraphQLClient, mailbox: Mailbox, deliver_mail: Deliver
) -> None:
    elsewhere = await anonymous.login("north", GRACE, factories.PASSWORD)
    account = await Account.get(email=GRACE)
    before = account.password_hash

    answer = await change(patient, factories.PASSWORD, NEW_PASSWORD)

    assert answer == {"__typename": "PasswordChanged", "email": GRACE}
    assert (await Account.get(id=account.id)).password_hash != before
    assert await me(patient) == {"email": GRACE}
    assert await me(elsewhere) is None
    assert await Session.filter(account_id=account.id, ended_at__isnull=True).count() == 1
    assert await signs_in(anonymous, GRACE, NEW_PASSWORD)
    assert not await signs_in(anonymous, GRACE, factories.PASSWORD)


async def test_outstanding_reset_tokens_and_codes_stop_working(
    clock: FrozenClock,
    patient: GraphQLClient,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    first_code = await emailed_code(anonymous, mailbox, deliver_mail)
    verified = await anonymous.data(VERIFY_CODE, email=GRACE, code=first_code)
    code_token = verified["verifyResetCode"]["token"]
    pending_code = await emailed_code(anonymous, mailbox, deliver_mail)
    expiry = clock.now() + timedelta(days=3)
    link = await admin.data(GENERATE, id=str(patient_profile.id), expiresAt=expiry.isoformat())
    link_token = link["generateResetLink"]["url"].split("token=", 1)[1]

    answer = await change(patient, factories.PASSWORD, NEW_PASSWORD)

    assert answer["__typename"] == "PasswordChanged"
    for token in [code_token, link_token]:
        refused = await anonymous.data(RESET, token=token, password="copper-meadow-lantern-83")
        assert refused["resetPassword"]["code"] == "INVALID_TOKEN"
    wrong = await anonymous.data(VERIFY_CODE, email=GRACE, code=pending_code)
    assert wrong["verifyResetCode"]["code"] == "INVALID_CODE"
    assert await ResetToken.filter(used_at__isnull=True, revoked_at__isnull=True).count() == 0
    live_codes = VerificationCode.filter(used_at__isnull=True, revoked_at__isnull=True)
    assert await live_codes.count() == 0
    assert await signs_in(anonymous, GRACE, NEW_PASSWORD)


async def test_the_account_owner_is_told_without_the_password_in_the_mail(
    patient: GraphQLClient, mailbox: Mailbox, deliver_mail: Deliver
) -> None:
    await change(patient, factories.PASSWORD, NEW_PASSWORD)
    await deliver_mail()

    received = mailbox.to(GRACE)
    assert len(received) == 1
    notice = received[0]
    subject = notice["Subject"]
    assert "password" in subject.lower()
    for secret in [NEW_PASSWORD, factories.PASSWORD, "Grace", "Hopper"]:
        assert secret not in subject
    text, html = text_of(notice), html_of(notice)
    assert "North Street Practice" in text
    for secret in [NEW_PASSWORD, factories.PASSWORD, "token", str(patient.token)]:
        assert secret not in text
        assert secret not in html
    assert "https://" not in text


async def test_a_wrong_current_password_changes_nothing(
    patient: GraphQLClient, anonymous: GraphQLClient
) -> None:
    elsewhere = await anonymous.login("north", GRACE, factories.PASSWORD)
    before = await Account.get(email=GRACE)

    answer = await change(patient, "not-the-password-at-all", NEW_PASSWORD)

    assert answer["__typename"] == "InvalidCredentialsError"
    assert answer["code"] == "INVALID_CREDENTIALS"
    after = await Account.get(id=before.id)
    assert after.password_hash == before.password_hash
    assert after.password_changed_at == before.password_changed_at
    assert await me(elsewhere) == {"email": GRACE}
    assert await me(patient) == {"email": GRACE}
    assert await OutboxMessage.all().count() == 0
    assert await signs_in(anonymous, GRACE, factories.PASSWORD)
    assert not await signs_in(anonymous, GRACE, NEW_PASSWORD)


async def test_a_mismatched_or_weak_new_password_changes_nothing(
    patient: GraphQLClient, anonymous: GraphQLClient
) -> None:
    elsewhere = await anonymous.login("north", GRACE, factories.PASSWORD)
    before = await Account.get(email=GRACE)
    refused = [
        (NEW_PASSWORD, NEW_PASSWORD + "x", "PASSWORD_MISMATCH"),
        ("short-pw1", None, "WEAK_PASSWORD"),
        ("password123", None, "WEAK_PASSWORD"),
        ("GraceHopper1990!", None, "WEAK_PASSWORD"),
        ("hopper-grace-hopper", None, "WEAK_PASSWORD"),
    ]

    for password, confirmation, code in refused:
        answer = await change(patient, factories.PASSWORD, password, confirmation)
        assert answer["code"] == code, (password, answer)
        assert answer["message"]

    after = await Account.get(id=before.id)
    assert after.password_hash == before.password_hash
    assert after.password_changed_at == before.password_changed_at
    assert await me(elsewhere) == {"email": GRACE}
    assert await OutboxMessage.all().count() == 0
    assert await signs_in(anonymous, GRACE, factories.PASSWORD)


async def test_staff_change_their_password_too(
    admin: GraphQLClient,
    admin_account: Account,
    anonymous: GraphQLClient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    elsewhere = await anonymous.login("north", admin_account.email, factories.PASSWORD)

    answer = await change(admin, factories.PASSWORD, NEW_PASSWORD)

    assert answer == {"__typename": "PasswordChanged", "email": "admin@north.example"}
    assert await me(admin) == {"email": "admin@north.example"}
    assert await me(elsewhere) is None
    assert await signs_in(anonymous, admin_account.email, NEW_PASSWORD)
    assert not await signs_in(anonymous, admin_account.email, factories.PASSWORD)
    await deliver_mail()
    assert len(mailbox.to("admin@north.example")) == 1


async def test_signing_in_is_required(anonymous: GraphQLClient, patient_profile: Patient) -> None:
    await factories.make_patient_account(patient_profile)
    before = await Account.get(email=GRACE)

    body = await anonymous.post(
        CHANGE, current=factories.PASSWORD, password=NEW_PASSWORD, confirmation=NEW_PASSWORD
    )

    assert body["data"] is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert (await Account.get(id=before.id)).password_hash == before.password_hash
    assert await OutboxMessage.all().count() == 0
