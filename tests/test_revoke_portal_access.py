"""revokePortalAccess: an ADMIN takes a patient's portal access away, in one
transaction, and everything that let the patient in stops working at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from models import (
    Account,
    AuditAction,
    AuditEvent,
    Invitation,
    OutboxMessage,
    Patient,
    ResetToken,
    Session,
    VerificationCode,
)
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient
from tests.mail import code_in

REVOKE = """
mutation Revoke($id: ID!) {
  revokePortalAccess(patientId: $id) {
    __typename
    ... on PortalAccessRevoked { patient { id portal { status revokedAt signedUpAt } } }
    ... on Error { code message }
  }
}
"""
ME = "query { me { id active } }"
SEND_INVITATION = "mutation($id: ID!) { sendInvitation(patientId: $id) { __typename } }"
SEND_INVITATION_OR_ERROR = """
mutation($id: ID!) { sendInvitation(patientId: $id) { __typename ... on Error { code } } }
"""
PREVIEW = "query($token: String!) { invitation(token: $token) { usable } }"
REQUEST_CODE = """
mutation($email: String!) {
  requestVerificationCode(practice: "north", email: $email) { __typename }
}
"""
GENERATE_LINK = """
mutation($id: ID!, $expiresAt: DateTime!) {
  generateResetLink(patientId: $id, expiresAt: $expiresAt) {
    __typename ... on ResetLinkGenerated { url } ... on Error { code }
  }
}
"""


async def revoke(admin: GraphQLClient, patient: Patient) -> dict[str, Any]:
    result: dict[str, Any] = (await admin.data(REVOKE, id=str(patient.id)))["revokePortalAccess"]
    return result


async def sign_in(anonymous: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    result = await anonymous.data(LOGIN, practice="north", email=email, password=password)
    login: dict[str, Any] = result["login"]
    return login


async def test_a_signed_up_patient_is_signed_out_and_everything_of_theirs_dies(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient: GraphQLClient,
    patient_profile: Patient,
) -> None:
    account = await Account.get(patient_id=patient_profile.id)
    await anonymous.data(REQUEST_CODE, email=account.email)  # a code waiting
    link = await admin.data(
        GENERATE_LINK,
        id=str(patient_profile.id),
        expiresAt=(clock.now() + timedelta(days=1)).isoformat(),
    )
    assert link["generateResetLink"]["__typename"] == "ResetLinkGenerated"
    mail_before = await OutboxMessage.all().count()
    assert (await patient.data(ME))["me"]["active"] is True

    revoked = await revoke(admin, patient_profile)

    assert revoked == {
        "__typename": "PortalAccessRevoked",
        "patient": {
            "id": str(patient_profile.id),
            "portal": {
                "status": "REVOKED",
                "revokedAt": clock.now().isoformat(),
                "signedUpAt": revoked["patient"]["portal"]["signedUpAt"],
            },
        },
    }
    # The very next request with the patient's token is signed out.
    assert (await patient.data(ME))["me"] is None
    assert await Session.filter(account_id=account.id, ended_at__isnull=True).count() == 0
    assert (await Account.get(id=account.id)).disabled_at == clock.now()
    live_codes = VerificationCode.filter(account_id=account.id, revoked_at__isnull=True)
    assert await live_codes.count() == 0
    assert await ResetToken.filter(account_id=account.id, revoked_at__isnull=True).count() == 0
    # No mail: a custody or safety situation may be why.
    assert await OutboxMessage.all().count() == mail_before
    [event] = await AuditEvent.filter(action=AuditAction.PORTAL_ACCESS_REVOKED)
    assert (event.patient_id, event.role) == (patient_profile.id, "ADMIN")


async def test_a_pending_invitation_is_cancelled_and_the_status_is_yet_to_sign_up(
    admin: GraphQLClient, anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))

    revoked = await revoke(admin, patient_profile)

    assert revoked["patient"]["portal"] == {
        "status": "YET_TO_SIGN_UP",
        "revokedAt": None,
        "signedUpAt": None,
    }
    invitation = await Invitation.get(patient_id=patient_profile.id)
    assert invitation.revoked_at is not None


async def test_revoking_again_changes_nothing_and_succeeds(
    clock: FrozenClock, admin: GraphQLClient, patient: GraphQLClient, patient_profile: Patient
) -> None:
    first = await revoke(admin, patient_profile)
    clock.advance(minutes=5)

    again = await revoke(admin, patient_profile)

    assert again == first
    assert await AuditEvent.filter(action=AuditAction.PORTAL_ACCESS_REVOKED).count() == 1


async def test_only_an_admin_of_the_patients_practice_may_revoke(
    clinician: GraphQLClient,
    patient: GraphQLClient,
    other_admin: GraphQLClient,
    patient_profile: Patient,
) -> None:
    for refused in (clinician, patient):
        body = await refused.post(REVOKE, id=str(patient_profile.id))
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    elsewhere = (await other_admin.data(REVOKE, id=str(patient_profile.id)))["revokePortalAccess"]
    assert elsewhere["code"] == "NOT_FOUND"
    account = await Account.get(patient_id=patient_profile.id)
    assert account.disabled_at is None


async def test_a_revoked_patient_with_the_right_password_is_told_to_ask_the_practice(
    admin: GraphQLClient, anonymous: GraphQLClient, patient: GraphQLClient, patient_profile: Patient
) -> None:
    await revoke(admin, patient_profile)
    email = (await Account.get(patient_id=patient_profile.id)).email

    right = await sign_in(anonymous, email, factories.PASSWORD)
    wrong = await sign_in(anonymous, email, "not-the-password-at-all")

    assert right["code"] == "ACCOUNT_DISABLED"
    assert "contact your practice" in right["message"].lower()
    # Without the password nothing is learnt: the usual answer.
    assert wrong["code"] == "INVALID_CREDENTIALS"
    assert (
        await Session.filter(account__patient_id=patient_profile.id, ended_at__isnull=True).count()
        == 0
    )
    assert await AuditEvent.filter(action=AuditAction.LOGIN_DISABLED).count() == 1


async def test_a_revoked_patient_cannot_recover_the_password_and_admins_are_told_why(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient: GraphQLClient,
    patient_profile: Patient,
) -> None:
    await revoke(admin, patient_profile)
    email = (await Account.get(patient_id=patient_profile.id)).email
    mail_before = await OutboxMessage.all().count()

    asked = await anonymous.data(REQUEST_CODE, email=email)
    link = await admin.data(
        GENERATE_LINK,
        id=str(patient_profile.id),
        expiresAt=(clock.now() + timedelta(days=1)).isoformat(),
    )
    invited = await admin.data(SEND_INVITATION_OR_ERROR, id=str(patient_profile.id))

    assert asked["requestVerificationCode"]["__typename"] == "VerificationCodeSent"
    assert await OutboxMessage.all().count() == mail_before  # answered alike, sent nothing
    assert link["generateResetLink"]["code"] == "ACCOUNT_DISABLED"
    assert invited["sendInvitation"]["code"] == "ACCOUNT_DISABLED"


async def test_a_revoke_racing_a_sign_in_leaves_no_live_session(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Any
) -> None:
    for round_number in range(4):
        patient = await factories.make_patient(practice, first_name=f"Race{round_number}")
        account = await factories.make_patient_account(patient)

        signed_in, _ = await asyncio.gather(
            sign_in(anonymous, account.email, factories.PASSWORD), revoke(admin, patient)
        )

        assert await Session.filter(account_id=account.id, ended_at__isnull=True).count() == 0
        if signed_in["__typename"] == "LoginSuccess":
            late = GraphQLClient(anonymous.http, signed_in["token"])
            assert (await late.data(ME))["me"] is None
        else:
            assert signed_in["code"] == "ACCOUNT_DISABLED"


VERIFY_CODE = """
mutation($email: String!, $code: String!) {
  verifyResetCode(practice: "north", email: $email, code: $code) {
    __typename ... on Error { code }
  }
}
"""
RESET_PASSWORD = """
mutation($token: String!) {
  resetPassword(token: $token, password: "harbour-velvet-quantum-57",
                passwordConfirmation: "harbour-velvet-quantum-57") {
    __typename ... on Error { code }
  }
}
"""


async def test_a_code_and_a_link_issued_before_the_revoke_no_longer_work(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient: GraphQLClient,
    patient_profile: Patient,
    mailbox: Any,
    deliver_mail: Any,
) -> None:
    email = (await Account.get(patient_id=patient_profile.id)).email
    await anonymous.data(REQUEST_CODE, email=email)
    await deliver_mail()
    code = code_in(mailbox.to(email)[-1])
    link = await admin.data(
        GENERATE_LINK,
        id=str(patient_profile.id),
        expiresAt=(clock.now() + timedelta(days=1)).isoformat(),
    )
    link_token = parse_qs(urlsplit(link["generateResetLink"]["url"]).query)["token"][0]

    await revoke(admin, patient_profile)

    verified = await anonymous.data(VERIFY_CODE, email=email, code=code)
    reset = await anonymous.data(RESET_PASSWORD, token=link_token)
    assert verified["verifyResetCode"]["code"] == "INVALID_CODE"
    assert reset["resetPassword"]["code"] == "INVALID_TOKEN"
