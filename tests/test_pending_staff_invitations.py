"""pendingStaffInvitations: an ADMIN sees the staff invitations that can
still be used, so the staff page can show who has not signed up yet."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from portal.settings import Settings
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient, Mailbox
from tests.mail import token_in

PENDING = "query { pendingStaffInvitations { email role invitedAt expiresAt } }"
INVITE_STAFF = """
mutation Invite($email: String!, $role: Role!) {
  inviteStaff(email: $email, role: $role) { __typename }
}
"""
SEND_INVITATION = "mutation ($id: ID!) { sendInvitation(patientId: $id) { __typename } }"
CREATE_ACCOUNT = """
mutation($token: String!, $password: String!) {
  createAccount(token: $token, password: $password, passwordConfirmation: $password) {
    __typename
  }
}
"""
PASSWORD = "harbour-velvet-quantum-57"


async def pending(client: GraphQLClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (await client.data(PENDING))["pendingStaffInvitations"]
    return result


async def test_an_admin_sees_each_invitation_once_with_its_role_and_dates(
    clock: FrozenClock, settings: Settings, admin: GraphQLClient
) -> None:
    await admin.data(INVITE_STAFF, email="lin@north.example", role="CLINICIAN")
    clock.advance(minutes=1)
    await admin.data(INVITE_STAFF, email="kim@north.example", role="CLINICIAN")
    clock.advance(minutes=1)
    # Invited again with another role: the newer invitation replaces the first.
    await admin.data(INVITE_STAFF, email="lin@north.example", role="ADMIN")

    assert await pending(admin) == [
        {
            "email": "lin@north.example",
            "role": "ADMIN",
            "invitedAt": clock.now().isoformat(),
            "expiresAt": (clock.now() + settings.invitation_ttl).isoformat(),
        },
        {
            "email": "kim@north.example",
            "role": "CLINICIAN",
            "invitedAt": (clock.now() - timedelta(minutes=1)).isoformat(),
            "expiresAt": (clock.now() - timedelta(minutes=1) + settings.invitation_ttl).isoformat(),
        },
    ]


async def test_a_used_or_expired_invitation_and_a_patient_s_are_not_pending(
    clock: FrozenClock,
    settings: Settings,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Any,
    mailbox: Mailbox,
    deliver_mail: Any,
) -> None:
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await admin.data(INVITE_STAFF, email="used@north.example", role="CLINICIAN")
    await deliver_mail()
    token = token_in(mailbox.to("used@north.example")[-1])
    created = await anonymous.data(CREATE_ACCOUNT, token=token, password=PASSWORD)
    assert created["createAccount"]["__typename"] == "AccountCreated"
    await admin.data(INVITE_STAFF, email="late@north.example", role="CLINICIAN")
    assert [i["email"] for i in await pending(admin)] == ["late@north.example"]

    # Days later (signed in again): pending until the moment it expires.
    clock.advance(seconds=settings.invitation_ttl.total_seconds() - 1)
    again = await anonymous.login("north", "admin@north.example", factories.PASSWORD)
    assert [i["email"] for i in await pending(again)] == ["late@north.example"]
    clock.advance(seconds=1)

    assert await pending(again) == []


async def test_another_practice_s_invitations_are_not_seen(
    admin: GraphQLClient, other_admin: GraphQLClient
) -> None:
    await other_admin.data(INVITE_STAFF, email="new@south.example", role="CLINICIAN")

    assert await pending(admin) == []
    assert [i["email"] for i in await pending(other_admin)] == ["new@south.example"]


async def test_only_admins_see_invitations(
    admin: GraphQLClient,
    clinician: GraphQLClient,
    patient: GraphQLClient,
    anonymous: GraphQLClient,
) -> None:
    await admin.data(INVITE_STAFF, email="lin@north.example", role="CLINICIAN")

    for client, code in [
        (clinician, "FORBIDDEN"),
        (patient, "FORBIDDEN"),
        (anonymous, "UNAUTHENTICATED"),
    ]:
        body = await client.post(PENDING)
        assert body["data"] == {"pendingStaffInvitations": None}, body
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
