"""inviteStaff: an ADMIN invites a new member of staff by email; they open
the link, choose a password, and sign in with the role they were given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from models import Account, AuditAction, AuditEvent, Invitation, Patient, Role
from tests.conftest import LOGIN, GraphQLClient, Mailbox
from tests.mail import link_in, text_of, token_in

INVITE_STAFF = """
mutation Invite($email: String!, $role: Role!) {
  inviteStaff(email: $email, role: $role) {
    __typename
    ... on StaffInvitationSent { email role expiresAt }
    ... on ValidationError { field }
    ... on Error { code message }
  }
}
"""
PREVIEW = "query($token: String!) { invitation(token: $token) { practiceName email usable } }"
CREATE_ACCOUNT = """
mutation($token: String!, $password: String!) {
  createAccount(token: $token, password: $password, passwordConfirmation: $password) {
    __typename ... on AccountCreated { email patientId } ... on Error { code }
  }
}
"""
PASSWORD = "harbour-velvet-quantum-57"
Deliver = Callable[[], Awaitable[Any]]


async def invite(admin: GraphQLClient, email: str, role: str) -> dict[str, Any]:
    result: dict[str, Any] = (await admin.data(INVITE_STAFF, email=email, role=role))["inviteStaff"]
    return result


async def test_an_invited_clinician_creates_their_account_and_signs_in(
    admin: GraphQLClient, anonymous: GraphQLClient, mailbox: Mailbox, deliver_mail: Deliver
) -> None:
    sent = await invite(admin, " New.Clinician@North.Example ", "CLINICIAN")
    await deliver_mail()

    assert sent["__typename"] == "StaffInvitationSent"
    assert (sent["email"], sent["role"]) == ("new.clinician@north.example", "CLINICIAN")
    [mail] = mailbox.to("new.clinician@north.example")
    assert mail["Subject"] == "Your invitation to create an account"
    assert "staff account" in text_of(mail)
    assert link_in(mail).startswith("https://portal.test/north/sign-up?token=")
    token = token_in(mail)
    preview = await anonymous.data(PREVIEW, token=token)
    assert preview["invitation"]["email"] == "new.clinician@north.example"
    assert preview["invitation"]["usable"] is True

    created = await anonymous.data(CREATE_ACCOUNT, token=token, password=PASSWORD)
    signed_in = await anonymous.data(
        LOGIN, practice="north", email="new.clinician@north.example", password=PASSWORD
    )

    assert created["createAccount"] == {
        "__typename": "AccountCreated",
        "email": "new.clinician@north.example",
        "patientId": None,
    }
    assert signed_in["login"]["account"]["role"] == "CLINICIAN"
    account = await Account.get(email="new.clinician@north.example")
    assert (account.role, account.patient_id) == (Role.CLINICIAN, None)
    again = await anonymous.data(CREATE_ACCOUNT, token=token, password=PASSWORD)
    assert again["createAccount"]["code"] == "INVALID_TOKEN"  # single use
    assert await AuditEvent.filter(action=AuditAction.STAFF_INVITED).count() == 1


async def test_inviting_the_same_address_again_replaces_the_earlier_link(
    admin: GraphQLClient, anonymous: GraphQLClient, mailbox: Mailbox, deliver_mail: Deliver
) -> None:
    await invite(admin, "new@north.example", "ADMIN")
    await invite(admin, "new@north.example", "CLINICIAN")
    await deliver_mail()
    first, second = mailbox.to("new@north.example")

    stale = await anonymous.data(CREATE_ACCOUNT, token=token_in(first), password=PASSWORD)
    fresh = await anonymous.data(CREATE_ACCOUNT, token=token_in(second), password=PASSWORD)

    assert stale["createAccount"]["code"] == "INVALID_TOKEN"
    assert fresh["createAccount"]["__typename"] == "AccountCreated"
    assert (await Account.get(email="new@north.example")).role is Role.CLINICIAN


async def test_bad_invitations_are_refused_and_send_nothing(
    admin: GraphQLClient,
    admin_account: Account,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    answers = [
        await invite(admin, "someone@north.example", "PATIENT"),
        await invite(admin, "not an address", "CLINICIAN"),
        await invite(admin, admin_account.email, "CLINICIAN"),
        await invite(admin, str(patient_profile.email).upper(), "ADMIN"),
    ]
    await deliver_mail()

    assert [(a.get("code"), a.get("field")) for a in answers] == [
        ("VALIDATION", "role"),
        ("VALIDATION", "email"),
        ("EMAIL_TAKEN", None),
        ("EMAIL_TAKEN", None),
    ]
    assert mailbox.messages == []
    assert await Invitation.filter(patient_id__isnull=True).count() == 0


async def test_only_an_admin_invites_staff(
    clinician: GraphQLClient, patient: GraphQLClient, anonymous: GraphQLClient
) -> None:
    for caller, code in (
        (clinician, "FORBIDDEN"),
        (patient, "FORBIDDEN"),
        (anonymous, "UNAUTHENTICATED"),
    ):
        body = await caller.post(INVITE_STAFF, email="x@north.example", role="ADMIN")
        assert body["errors"][0]["extensions"]["code"] == code
    assert await Invitation.all().count() == 0
