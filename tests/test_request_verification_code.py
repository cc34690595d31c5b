"""A patient who forgot their password asks for a verification code by email."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from models import Account, OutboxMessage, Patient, Practice, Session, VerificationCode
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient, Mailbox
from tests.mail import code_in, html_of, text_of

DeliverMail = Callable[[], Awaitable[object]]

GRACE = "grace@mail.example"


REQUEST_CODE = """
mutation Request($practice: String!, $email: String!) {
  requestVerificationCode(practice: $practice, email: $email) {
    __typename
    ... on VerificationCodeSent { message }
    ... on Error { code message }
  }
}
"""

VERIFY_CODE = """
mutation Verify($practice: String!, $email: String!, $code: String!) {
  verifyResetCode(practice: $practice, email: $email, code: $code) {
    __typename
    ... on ResetCodeVerified { token expiresAt }
    ... on Error { code message }
  }
}
"""

SENT_MESSAGE = "If an account with that email address exists, we have sent it a verification code."

REVEALING_WORDS = ("therap", "counsel", "clinic", "health", "patient", "medic", "psych", "hopper")


async def request_code(
    client: GraphQLClient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
    email: str = GRACE,
    practice: str = "north",
) -> str:
    """Asks for a code and returns the one in the latest email that arrives."""
    result = await client.data(REQUEST_CODE, practice=practice, email=email)
    assert result["requestVerificationCode"]["__typename"] == "VerificationCodeSent"
    await deliver_mail()
    return code_in(mailbox.to(email.strip().lower())[-1])


async def verify(
    client: GraphQLClient, code: str, email: str = GRACE, practice: str = "north"
) -> dict[str, Any]:
    result = await client.data(VERIFY_CODE, practice=practice, email=email, code=code)
    verified: dict[str, Any] = result["verifyResetCode"]
    return verified


async def account_state(account_id: object) -> tuple[object, ...]:
    """What a code request must never change: the password and the sessions."""
    account = await Account.get(id=account_id)
    sessions = (
        await Session.filter(account_id=account_id)
        .order_by("id")
        .values_list("id", "ended_at", "expires_at")
    )
    return (account.password_hash, account.password_changed_at, sessions)


async def test_a_known_an_unknown_email_and_an_unknown_practice_get_the_same_answer(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    other_practice: Practice,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)

    unknown = [
        await anonymous.post(REQUEST_CODE, practice="north", email="nobody@mail.example"),
        await anonymous.post(REQUEST_CODE, practice="nowhere", email=GRACE),
        await anonymous.post(REQUEST_CODE, practice="south", email=GRACE),
        await anonymous.post(REQUEST_CODE, practice="north", email="not an email"),
    ]

    assert await OutboxMessage.all().count() == 0
    assert await VerificationCode.all().count() == 0
    await deliver_mail()
    assert mailbox.messages == []

    known = await anonymous.post(REQUEST_CODE, practice="north", email=GRACE)

    expected = {
        "data": {
            "requestVerificationCode": {
                "__typename": "VerificationCodeSent",
                "message": SENT_MESSAGE,
            }
        }
    }
    assert known == expected
    assert all(answer == known for answer in unknown)
    assert await VerificationCode.filter(account_id=account.id).count() == 1
    await deliver_mail()
    assert len(mailbox.to(GRACE)) == 1
    assert len(mailbox.messages) == 1


async def test_asking_for_a_code_never_changes_the_account(
    patient: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await Account.get(patient_id=patient_profile.id)
    before = await account_state(account.id)

    await request_code(anonymous, mailbox, deliver_mail)
    await request_code(anonymous, mailbox, deliver_mail)

    assert await account_state(account.id) == before
    me = await patient.data("{ me { email } }")
    assert me["me"] == {"email": GRACE}
    signed_in = await anonymous.data(
        LOGIN, practice="north", email=GRACE, password=factories.PASSWORD
    )
    assert signed_in["login"]["__typename"] == "LoginSuccess"


async def test_the_email_is_matched_ignoring_case_and_surrounding_space(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)

    await anonymous.data(REQUEST_CODE, practice="north", email="  GRACE@Mail.Example ")
    await deliver_mail()

    [message] = mailbox.to(GRACE)
    code = code_in(message)
    verified = await verify(anonymous, code, email=" Grace@MAIL.example  ")
    assert verified["__typename"] == "ResetCodeVerified"


async def test_the_email_says_how_long_the_code_is_valid_and_stays_neutral(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)

    code = await request_code(anonymous, mailbox, deliver_mail)

    [message] = mailbox.messages
    assert message["To"] == GRACE
    assert message["From"] == "Client Portal <no-reply@portal.test>"
    headers = " ".join(f"{k} {v}" for k, v in message.items()).lower()
    for revealing in REVEALING_WORDS:
        assert revealing not in headers, revealing
    text = text_of(message)
    assert "15 minutes" in text
    assert code in html_of(message)
    # The random code itself may hold any digits: the rest must not.
    body = (text + html_of(message)).replace(code, "")
    assert "Hopper" not in body and "hopper" not in body.lower()
    assert "1990" not in body and "555" not in body
    for revealing in REVEALING_WORDS:
        assert revealing not in body.lower(), revealing


async def test_the_code_is_kept_only_as_an_hmac(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)

    code = await request_code(anonymous, mailbox, deliver_mail)

    [row] = await VerificationCode.all().values()
    for column, value in row.items():
        if not isinstance(value, datetime):
            assert code not in str(value), column
    assert re.fullmatch(r"[0-9a-f]{64}", row["code_hash"])
    assert row["code_hash"] != hashlib.sha256(code.encode()).hexdigest()
    outbox = await OutboxMessage.get(kind="verification_code")
    assert code not in outbox.text_body + outbox.html_body  # erased once sent


async def test_a_code_is_valid_for_15_minutes(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)
    code = await request_code(anonymous, mailbox, deliver_mail)

    clock.advance(minutes=15, seconds=1)

    assert (await verify(anonymous, code))["code"] == "INVALID_CODE"


async def test_a_code_still_works_just_before_15_minutes(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)
    code = await request_code(anonymous, mailbox, deliver_mail)

    clock.advance(minutes=14, seconds=59)

    assert (await verify(anonymous, code))["__typename"] == "ResetCodeVerified"


async def test_a_new_code_replaces_the_older_one(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    old_code = await request_code(anonymous, mailbox, deliver_mail)
    new_code = await request_code(anonymous, mailbox, deliver_mail)

    old = await verify(anonymous, old_code)

    assert old["code"] == "INVALID_CODE"
    rows = await VerificationCode.filter(account_id=account.id).order_by("created_at", "id")
    assert len(rows) == 2
    assert sum(row.revoked_at is not None for row in rows) == 1
    assert (await verify(anonymous, new_code))["__typename"] == "ResetCodeVerified"


async def test_at_most_three_codes_an_hour_per_account(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    practice: Practice,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    other = await factories.make_patient_account(
        await factories.make_patient(practice, email="alan@mail.example")
    )
    answers = []
    for _ in range(3):
        answers.append(await anonymous.post(REQUEST_CODE, practice="north", email=GRACE))
        clock.advance(minutes=1)
    await deliver_mail()
    third_code = code_in(mailbox.to(GRACE)[-1])

    fourth = await anonymous.post(REQUEST_CODE, practice="north", email=GRACE)

    assert all(answer == fourth for answer in answers)
    assert await VerificationCode.filter(account_id=account.id).count() == 3
    await deliver_mail()
    assert len(mailbox.to(GRACE)) == 3
    # The limit is per account, and the refused request did not replace the last code.
    await request_code(anonymous, mailbox, deliver_mail, email="alan@mail.example")
    assert await VerificationCode.filter(account_id=other.id).count() == 1
    assert (await verify(anonymous, third_code))["__typename"] == "ResetCodeVerified"

    clock.advance(hours=1)
    new_code = await request_code(anonymous, mailbox, deliver_mail)

    assert len(mailbox.to(GRACE)) == 4
    assert await VerificationCode.filter(account_id=account.id).count() == 4
    assert (await verify(anonymous, new_code))["__typename"] == "ResetCodeVerified"


async def test_simultaneous_requests_still_make_at_most_three_codes(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)

    answers = await asyncio.gather(
        *(anonymous.post(REQUEST_CODE, practice="north", email=GRACE) for _ in range(8))
    )

    assert all(answer == answers[0] for answer in answers)
    rows = await VerificationCode.filter(account_id=account.id)
    assert len(rows) == 3
    assert sum(row.revoked_at is None for row in rows) == 1  # only the latest is live
    await deliver_mail()
    assert len(mailbox.to(GRACE)) == 3
