"""The patient types the emailed code and receives a short-lived reset token."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from models import Account, Patient, Practice, ResetSource, ResetToken, VerificationCode
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient, Mailbox
from tests.mail import another_code
from tests.test_request_verification_code import (
    GRACE,
    VERIFY_CODE,
    DeliverMail,
    request_code,
    verify,
)

NEW_PASSWORD = "velvet-harbour-quantum-57"

RESET_PASSWORD = """
mutation Reset($token: String!, $password: String!, $confirmation: String!) {
  resetPassword(token: $token, password: $password, passwordConfirmation: $confirmation) {
    __typename
    ... on PasswordReset { email }
    ... on Error { code message }
  }
}
"""

INVALID_CODE = {
    "__typename": "InvalidCodeError",
    "code": "INVALID_CODE",
    "message": "That code is not valid. Check the latest email, or ask for a new code.",
}


async def reset(client: GraphQLClient, token: str, password: str = NEW_PASSWORD) -> str:
    result = await client.data(
        RESET_PASSWORD, token=token, password=password, confirmation=password
    )
    outcome: str = result["resetPassword"]["__typename"]
    return outcome


async def test_the_right_code_gives_a_token_valid_15_minutes_that_works_once(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    code = await request_code(anonymous, mailbox, deliver_mail)

    verified = await verify(anonymous, code)

    assert verified["__typename"] == "ResetCodeVerified"
    assert set(verified) == {"__typename", "token", "expiresAt"}
    assert datetime.fromisoformat(verified["expiresAt"]) == clock.now() + timedelta(minutes=15)
    assert len(verified["token"]) >= 43
    [row] = await VerificationCode.filter(account_id=account.id)
    assert row.used_at is not None and row.attempts == 1
    [token_row] = await ResetToken.filter(account_id=account.id)
    assert token_row.source is ResetSource.CODE
    assert verified["token"] not in token_row.token_hash
    assert await reset(anonymous, verified["token"]) == "PasswordReset"
    assert await reset(anonymous, verified["token"], "other-orchard-lantern-42") == (
        "InvalidTokenError"
    )


async def test_every_invalid_code_gets_one_identical_answer(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    other_practice: Practice,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)
    # The same email in another practice belongs to another account.
    await factories.make_patient_account(
        await factories.make_patient(other_practice, email=GRACE, last_name="Other")
    )
    answers = {}

    replaced = await request_code(anonymous, mailbox, deliver_mail)
    current = await request_code(anonymous, mailbox, deliver_mail)
    answers["wrong"] = await verify(anonymous, another_code(current))
    answers["replaced"] = await verify(anonymous, replaced)
    answers["unknown email"] = await verify(anonymous, current, email="nobody@mail.example")
    answers["unknown practice"] = await verify(anonymous, current, practice="nowhere")
    answers["other practice"] = await verify(anonymous, current, practice="south")
    answers["not digits"] = await verify(anonymous, "abcdef")
    assert (await verify(anonymous, current))["__typename"] == "ResetCodeVerified"
    answers["used"] = await verify(anonymous, current)
    expiring = await request_code(anonymous, mailbox, deliver_mail)
    clock.advance(minutes=15, seconds=1)
    answers["expired"] = await verify(anonymous, expiring)

    for case, answer in answers.items():
        assert answer == INVALID_CODE, case


async def test_a_code_works_only_for_its_own_account(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    practice: Practice,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)
    await factories.make_patient_account(
        await factories.make_patient(practice, email="alan@mail.example")
    )
    graces = await request_code(anonymous, mailbox, deliver_mail)
    alans = await request_code(anonymous, mailbox, deliver_mail, email="alan@mail.example")
    if graces == alans:  # one chance in a million
        graces = await request_code(anonymous, mailbox, deliver_mail)

    assert await verify(anonymous, graces, email="alan@mail.example") == INVALID_CODE
    assert (await verify(anonymous, graces))["__typename"] == "ResetCodeVerified"


async def test_five_wrong_tries_kill_the_code_even_if_the_right_one_comes_next(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    code = await request_code(anonymous, mailbox, deliver_mail)
    for _ in range(5):
        assert await verify(anonymous, another_code(code)) == INVALID_CODE

    sixth = await verify(anonymous, code)

    assert sixth == INVALID_CODE
    [row] = await VerificationCode.filter(account_id=account.id)
    assert row.attempts == 5
    assert row.used_at is None
    assert await ResetToken.filter(account_id=account.id).count() == 0


async def test_the_right_code_on_the_fifth_try_still_works(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)
    code = await request_code(anonymous, mailbox, deliver_mail)
    for _ in range(4):
        assert await verify(anonymous, another_code(code)) == INVALID_CODE

    fifth = await verify(anonymous, code)

    assert fifth["__typename"] == "ResetCodeVerified"
    assert await reset(anonymous, fifth["token"]) == "PasswordReset"


async def test_concurrent_wrong_guesses_are_counted_atomically(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    code = await request_code(anonymous, mailbox, deliver_mail)
    # More guesses than the 5 attempts, yet with the right code after them
    # still under the separate per-email throttle of code checks.
    guesses = [f"{(int(code) + n) % 10**6:06d}" for n in range(1, 9)]

    results = await asyncio.gather(
        *(
            anonymous.data(VERIFY_CODE, practice="north", email=GRACE, code=guess)
            for guess in guesses
        )
    )

    assert all(r["verifyResetCode"] == INVALID_CODE for r in results)
    [row] = await VerificationCode.filter(account_id=account.id)
    assert row.attempts == 5
    assert await verify(anonymous, code) == INVALID_CODE
    assert (await VerificationCode.get(id=row.id)).attempts == 5


async def test_a_new_code_after_the_attempts_ran_out_works(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)
    code = await request_code(anonymous, mailbox, deliver_mail)
    for _ in range(5):
        await verify(anonymous, another_code(code))

    fresh = await request_code(anonymous, mailbox, deliver_mail)

    assert (await verify(anonymous, fresh))["__typename"] == "ResetCodeVerified"


async def test_verifying_does_not_change_the_password(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    code = await request_code(anonymous, mailbox, deliver_mail)

    await verify(anonymous, code)

    assert (await Account.get(id=account.id)).password_hash == account.password_hash
    await anonymous.login("north", GRACE, factories.PASSWORD)


async def test_simultaneous_verifications_of_the_right_code_give_one_token(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    code = await request_code(anonymous, mailbox, deliver_mail)

    results = await asyncio.gather(
        *(anonymous.data(VERIFY_CODE, practice="north", email=GRACE, code=code) for _ in range(4))
    )

    outcomes = [r["verifyResetCode"]["__typename"] for r in results]
    assert outcomes.count("ResetCodeVerified") == 1, results
    assert outcomes.count("InvalidCodeError") == 3, results
    assert await ResetToken.filter(account_id=account.id).count() == 1
