"""updatePatient changing the email: a pending invitation is cancelled; a
signed-up patient signs in with the new address and the old one is told; a
failure changes nothing and queues no mail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from models import Account, Invitation, OutboxMessage, Patient, Practice, Role
from portal.mail.delivery import DeliveryRound
from tests import factories
from tests.conftest import LOGIN, GraphQLClient, Mailbox
from tests.mail import code_in, html_of, text_of, token_in

Deliver = Callable[[], Awaitable[DeliveryRound]]

UPDATE_PATIENT = """
mutation UpdatePatient($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) {
    __typename
    ... on PatientUpdated { patient { id email phone } }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}
"""

SEND_INVITATION = """
mutation Send($id: ID!) {
  sendInvitation(patientId: $id) { __typename ... on InvitationSent { sentTo } }
}
"""

PORTAL_STATUS = "query($id: ID!) { patient(id: $id) { portal { status } } }"

PREVIEW = "query($token: String!) { invitation(token: $token) { email usable } }"

REVEALING_WORDS = ("therap", "counsel", "clinic", "health", "patient", "psych", "treatment")


async def login_result(anonymous: GraphQLClient, email: str) -> str:
    result = await anonymous.data(LOGIN, practice="north", email=email, password=factories.PASSWORD)
    typename: str = result["login"]["__typename"]
    return typename


async def emails_of(patient: Patient) -> tuple[Any, ...]:
    """The profile's email and, where there is one, the sign-in email."""
    stored = await Patient.get(id=patient.id)
    account = await Account.get_or_none(patient_id=patient.id)
    return stored.email, account.email if account else None


async def test_changing_the_email_cancels_a_pending_invitation_and_sends_nothing(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await deliver_mail()
    old_token = token_in(mailbox.messages[0])
    mailbox.messages.clear()

    result = await admin.data(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"email": "grace.h@mail.example"}
    )

    assert result["updatePatient"]["patient"]["email"] == "grace.h@mail.example"
    portal = await admin.data(PORTAL_STATUS, id=str(patient_profile.id))
    assert portal["patient"]["portal"]["status"] == "YET_TO_SIGN_UP"
    preview = await anonymous.data(PREVIEW, token=old_token)
    # An unusable link no longer reveals the whole address.
    assert preview["invitation"] == {"email": "g•••@mail.example", "usable": False}
    assert (await Invitation.get(patient_id=patient_profile.id)).revoked_at is not None
    assert await OutboxMessage.filter(status="PENDING").count() == 0
    assert (await deliver_mail()).claimed == 0
    assert mailbox.messages == []
    # A new invitation goes to the new address.
    again = await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    assert again["sendInvitation"]["sentTo"] == "grace.h@mail.example"


async def test_other_changes_leave_a_pending_invitation_usable(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await deliver_mail()
    token = token_in(mailbox.messages[0])

    await admin.data(
        UPDATE_PATIENT,
        id=str(patient_profile.id),
        input={"phone": "+1 555 0199", "email": " GRACE@Mail.Example "},
    )

    assert (await anonymous.data(PREVIEW, token=token))["invitation"]["usable"] is True


async def test_a_signed_up_patient_signs_in_with_the_new_email_and_the_old_one_is_told(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    await factories.make_patient_account(patient_profile)

    result = await admin.data(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"email": "Grace.New@Mail.Example"}
    )

    assert result["updatePatient"]["__typename"] == "PatientUpdated"
    assert result["updatePatient"]["patient"]["email"] == "grace.new@mail.example"
    assert await emails_of(patient_profile) == ("grace.new@mail.example", "grace.new@mail.example")
    assert await login_result(anonymous, "grace.new@mail.example") == "LoginSuccess"
    assert await login_result(anonymous, "grace@mail.example") == "InvalidCredentialsError"

    outcome = await deliver_mail()

    assert outcome.sent == 1
    [notice] = mailbox.messages
    assert notice["To"] == "grace@mail.example"
    subject = str(notice["Subject"])
    assert subject == "Your sign-in email address was changed"
    headers = " ".join(f"{name} {value}" for name, value in notice.items()).lower()
    for word in (*REVEALING_WORDS, "hopper", "north"):
        assert word not in headers
    body = text_of(notice) + html_of(notice)
    assert "Grace" in body
    assert "grace.new" not in body  # the old address does not learn the new one
    assert "Hopper" not in body
    assert mailbox.to("grace.new@mail.example") == []


@pytest.mark.parametrize("taken_by", ["staff", "another patient"], ids=["staff", "another-patient"])
async def test_an_email_of_another_account_of_the_practice_is_taken_and_nothing_changes(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    practice: Practice,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
    taken_by: str,
) -> None:
    await factories.make_patient_account(patient_profile)
    if taken_by == "staff":
        await factories.make_staff(practice, Role.CLINICIAN, email="taken@mail.example")
    else:
        other = await factories.make_patient(practice, email="taken@mail.example")
        await factories.make_patient_account(other)

    result = await admin.data(
        UPDATE_PATIENT,
        id=str(patient_profile.id),
        input={"email": "Taken@Mail.Example", "phone": "+1 555 0199"},
    )

    assert result["updatePatient"]["__typename"] == "EmailTakenError"
    assert result["updatePatient"]["code"] == "EMAIL_TAKEN"
    assert await emails_of(patient_profile) == ("grace@mail.example", "grace@mail.example")
    assert (await Patient.get(id=patient_profile.id)).phone == patient_profile.phone
    assert await OutboxMessage.all().count() == 0
    assert await login_result(anonymous, "grace@mail.example") == "LoginSuccess"
    assert (await deliver_mail()).claimed == 0
    assert mailbox.messages == []


async def test_an_email_used_in_another_practice_is_not_taken(
    admin: GraphQLClient, other_practice: Practice, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)
    await factories.make_staff(other_practice, Role.ADMIN, email="shared@mail.example")

    result = await admin.data(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"email": "shared@mail.example"}
    )

    assert result["updatePatient"]["__typename"] == "PatientUpdated"
    assert await emails_of(patient_profile) == ("shared@mail.example", "shared@mail.example")


@pytest.mark.parametrize("cleared", [None, "   "], ids=["null", "blank"])
async def test_a_signed_up_patient_keeps_an_email_to_sign_in_with(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
    cleared: str | None,
) -> None:
    await factories.make_patient_account(patient_profile)

    result = await admin.data(
        UPDATE_PATIENT,
        id=str(patient_profile.id),
        input={"email": cleared, "phone": "+1 555 0199"},
    )

    assert result["updatePatient"]["__typename"] == "ValidationError"
    assert result["updatePatient"]["code"] == "VALIDATION"
    assert result["updatePatient"]["field"] == "email"
    assert await emails_of(patient_profile) == ("grace@mail.example", "grace@mail.example")
    assert (await Patient.get(id=patient_profile.id)).phone == patient_profile.phone
    assert await OutboxMessage.all().count() == 0
    assert await login_result(anonymous, "grace@mail.example") == "LoginSuccess"
    assert (await deliver_mail()).claimed == 0


async def test_the_email_of_a_patient_without_account_or_invitation_changes_silently(
    admin: GraphQLClient, patient_profile: Patient, mailbox: Mailbox, deliver_mail: Deliver
) -> None:
    result = await admin.data(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"email": "grace.h@mail.example"}
    )

    assert result["updatePatient"]["patient"]["email"] == "grace.h@mail.example"
    assert await emails_of(patient_profile) == ("grace.h@mail.example", None)
    assert await OutboxMessage.all().count() == 0
    assert (await deliver_mail()).claimed == 0
    assert mailbox.messages == []


async def test_the_same_email_in_other_case_is_no_change_and_sends_no_notice(
    admin: GraphQLClient, anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)

    result = await admin.data(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"email": "GRACE@mail.example"}
    )

    assert result["updatePatient"]["patient"]["email"] == "grace@mail.example"
    assert await OutboxMessage.all().count() == 0
    assert await login_result(anonymous, "grace@mail.example") == "LoginSuccess"


async def test_codes_sent_to_the_old_address_die_with_the_change(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    await factories.make_patient_account(patient_profile)
    await anonymous.data(
        'mutation { requestVerificationCode(practice: "north", email: "grace@mail.example") '
        "{ __typename } }"
    )
    await deliver_mail()
    code = code_in(mailbox.to("grace@mail.example")[0])

    await admin.data(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"email": "new@mail.example"}
    )

    for email in ("grace@mail.example", "new@mail.example"):
        result = await anonymous.data(
            """mutation($email: String!, $code: String!) {
                 verifyResetCode(practice: "north", email: $email, code: $code) {
                   __typename ... on Error { code }
                 }
               }""",
            email=email,
            code=code,
        )
        assert result["verifyResetCode"]["code"] == "INVALID_CODE"
