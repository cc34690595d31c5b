"""An admin invites a patient to the portal; the status follows the invitation."""

from __future__ import annotations

from models import Account, Invitation, OutboxMessage, Patient, Practice, Role
from portal.settings import Settings
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient, Mailbox
from tests.mail import html_of, link_in, text_of, token_in

SEND_INVITATION = """
mutation Send($id: ID!) {
  sendInvitation(patientId: $id) {
    __typename
    ... on InvitationSent { sentTo expiresAt patient { id portal { status } } }
    ... on Error { code message }
  }
}
"""

PORTAL = """
query Portal($id: ID!) {
  patient(id: $id) { portal { status invitedAt invitationExpiresAt signedUpAt } }
}
"""

CHANGE_EMAIL = """
mutation($id: ID!, $email: String) {
  updatePatient(id: $id, input: {email: $email}) { __typename }
}
"""

PREVIEW = """
query Preview($token: String!) {
  invitation(token: $token) { practiceName email expiresAt usable }
}
"""


async def test_the_invitation_email_reaches_the_profile_address_with_a_working_link(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: object,
) -> None:
    result = await admin.data(SEND_INVITATION, id=str(patient_profile.id))

    sent = result["sendInvitation"]
    assert sent["__typename"] == "InvitationSent"
    assert sent["sentTo"] == "grace@mail.example"
    assert sent["patient"]["portal"]["status"] == "INITIATED"
    await deliver_mail()  # type: ignore[operator]
    [message] = mailbox.to("grace@mail.example")
    assert link_in(message).startswith("https://portal.test/north/sign-up?token=")
    assert token_in(message) in html_of(message)
    assert "Grace" in text_of(message)
    preview = await anonymous.data(PREVIEW, token=token_in(message))
    assert preview["invitation"] == {
        "practiceName": "North Street Practice",
        "email": "grace@mail.example",
        "expiresAt": sent["expiresAt"],
        "usable": True,
    }


async def test_the_email_stays_neutral_and_holds_no_patient_data_beyond_a_first_name(
    admin: GraphQLClient, patient_profile: Patient, mailbox: Mailbox, deliver_mail: object
) -> None:
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await deliver_mail()  # type: ignore[operator]

    [message] = mailbox.messages
    assert message["From"] == "Client Portal <no-reply@portal.test>"
    headers = " ".join(f"{k} {v}" for k, v in message.items()).lower()
    for revealing in ("therap", "counsel", "clinic", "health", "patient", "hopper", "north"):
        assert revealing not in headers
    body = text_of(message) + html_of(message)
    assert "Hopper" not in body
    assert "1990" not in body and "555" not in body


async def test_the_invitation_is_valid_seven_days_and_its_token_kept_only_as_an_hmac(
    clock: FrozenClock,
    admin: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: object,
) -> None:
    result = await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await deliver_mail()  # type: ignore[operator]

    invitation = await Invitation.get(patient_id=patient_profile.id)
    assert invitation.expires_at == clock.now().replace(
        microsecond=invitation.expires_at.microsecond
    ) + (invitation.expires_at - invitation.created_at)
    assert (invitation.expires_at - invitation.created_at).days == 7
    assert result["sendInvitation"]["expiresAt"] == invitation.expires_at.isoformat()
    token = token_in(mailbox.messages[0])
    assert len(token) >= 43
    assert token not in invitation.token_hash
    outbox = await OutboxMessage.get(kind="invitation")
    assert token not in outbox.text_body + outbox.html_body  # erased once sent


async def test_status_is_yet_to_sign_up_then_initiated_then_expired_back(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    admin_account: Account,
    patient_profile: Patient,
) -> None:
    admin = await anonymous.login("north", admin_account.email, factories.PASSWORD)
    before = await admin.data(PORTAL, id=str(patient_profile.id))
    assert before["patient"]["portal"] == {
        "status": "YET_TO_SIGN_UP",
        "invitedAt": None,
        "invitationExpiresAt": None,
        "signedUpAt": None,
    }

    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    invited = (await admin.data(PORTAL, id=str(patient_profile.id)))["patient"]["portal"]
    assert invited["status"] == "INITIATED"
    assert invited["invitedAt"] == clock.now().isoformat()

    clock.advance(days=7, seconds=1)
    admin = await anonymous.login("north", admin_account.email, factories.PASSWORD)
    expired = (await admin.data(PORTAL, id=str(patient_profile.id)))["patient"]["portal"]
    assert expired["status"] == "YET_TO_SIGN_UP"
    assert expired["invitedAt"] == invited["invitedAt"]


async def test_sending_again_replaces_the_earlier_link(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: object,
) -> None:
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await deliver_mail()  # type: ignore[operator]

    first, second = (token_in(m) for m in mailbox.to("grace@mail.example"))
    assert first != second
    old = await anonymous.data(PREVIEW, token=first)
    assert old["invitation"]["usable"] is False
    assert (await anonymous.data(PREVIEW, token=second))["invitation"]["usable"] is True


async def test_a_patient_without_email_cannot_be_invited(
    admin: GraphQLClient, practice: Practice
) -> None:
    no_email = await factories.make_patient(practice, email=None)

    result = await admin.data(SEND_INVITATION, id=str(no_email.id))

    assert result["sendInvitation"]["code"] == "MISSING_EMAIL"
    assert await Invitation.all().count() == 0
    assert await OutboxMessage.all().count() == 0


async def test_a_signed_up_patient_cannot_be_invited_again(
    admin: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)

    result = await admin.data(SEND_INVITATION, id=str(patient_profile.id))

    assert result["sendInvitation"]["code"] == "ALREADY_SIGNED_UP"
    assert await OutboxMessage.all().count() == 0


async def test_an_email_used_by_another_account_of_the_practice_is_taken(
    admin: GraphQLClient, practice: Practice
) -> None:
    await factories.make_staff(practice, Role.CLINICIAN, email="shared@mail.example")
    sharing = await factories.make_patient(practice, email="shared@mail.example")

    result = await admin.data(SEND_INVITATION, id=str(sharing.id))

    assert result["sendInvitation"]["code"] == "EMAIL_TAKEN"
    assert await Invitation.all().count() == 0
    assert await OutboxMessage.all().count() == 0


async def test_another_practice_cannot_invite_or_learn_of_the_patient(
    other_admin: GraphQLClient, patient_profile: Patient
) -> None:
    result = await other_admin.data(SEND_INVITATION, id=str(patient_profile.id))

    assert result["sendInvitation"]["code"] == "NOT_FOUND"
    assert await OutboxMessage.all().count() == 0


async def test_an_unknown_or_malformed_patient_id_is_not_found(admin: GraphQLClient) -> None:
    for patient_id in ["3f2b0c1e-0000-4000-8000-000000000000", "not-an-id"]:
        result = await admin.data(SEND_INVITATION, id=patient_id)
        assert result["sendInvitation"]["code"] == "NOT_FOUND"


async def test_only_admins_send_invitations(
    clinician: GraphQLClient,
    patient: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
) -> None:
    for client, code in [
        (clinician, "FORBIDDEN"),
        (patient, "FORBIDDEN"),
        (anonymous, "UNAUTHENTICATED"),
    ]:
        body = await client.post(SEND_INVITATION, id=str(patient_profile.id))
        assert body["errors"][0]["extensions"]["code"] == code
    assert await Invitation.all().count() == 0


async def test_an_unknown_token_has_no_preview(anonymous: GraphQLClient) -> None:
    for token in ["", "unknown-token"]:
        assert (await anonymous.data(PREVIEW, token=token))["invitation"] is None


async def test_changing_the_email_cancels_a_pending_invitation(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: object,
) -> None:
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await deliver_mail()  # type: ignore[operator]
    token = token_in(mailbox.messages[0])

    await admin.data(CHANGE_EMAIL, id=str(patient_profile.id), email="new@mail.example")

    status = (await admin.data(PORTAL, id=str(patient_profile.id)))["patient"]["portal"]["status"]
    assert status == "YET_TO_SIGN_UP"
    assert (await anonymous.data(PREVIEW, token=token))["invitation"]["usable"] is False


async def test_the_list_with_portal_status_costs_the_same_queries_for_2_or_100_patients(
    admin: GraphQLClient, practice: Practice, sql_queries: object, settings: Settings
) -> None:
    list_query = "query($n: Int!) { patients(first: $n) { edges { node { portal { status } } } } }"
    for _ in range(100):
        patient = await factories.make_patient(practice)
        await Invitation.create(
            practice=practice,
            patient=patient,
            token_hash=f"h{patient.id.hex}",
            sent_to="x@mail.example",
            created_at=practice.created_at,
            expires_at=practice.created_at,
        )

    counts = []
    for size in (2, 100):
        before = sql_queries.count  # type: ignore[attr-defined]
        await admin.data(list_query, n=size)
        counts.append(sql_queries.count - before)  # type: ignore[attr-defined]

    assert counts[0] == counts[1]
