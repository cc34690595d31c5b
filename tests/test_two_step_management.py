"""Turning two-step verification off (one's own, with the password; a member
of staff's, by an ADMIN) and the practice policy that requires it for staff."""

from __future__ import annotations

from typing import Any

import pyotp

from models import Account, AuditAction, AuditEvent, MfaRecoveryCode, OutboxMessage, Role
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient

BEGIN = "mutation { beginMfaEnrollment { secret } }"
CONFIRM = "mutation($code: String!) { confirmMfaEnrollment(code: $code) { __typename } }"
DISABLE_MFA = """
mutation($password: String!) {
  disableMfa(password: $password) {
    __typename ... on MfaDisabled { account { mfaEnabled } } ... on Error { code }
  }
}
"""
RESET_STAFF_MFA = """
mutation($id: ID!) {
  resetStaffMfa(accountId: $id) {
    __typename ... on MfaDisabled { account { id mfaEnabled } } ... on Error { code }
  }
}
"""
SET_REQUIRED = """
mutation($required: Boolean!) {
  setStaffMfaRequired(required: $required) {
    __typename
    ... on PracticeSecurityUpdated { practice { staffMfaRequired } }
    ... on Error { code }
  }
}
"""
ME = "query { me { email mfaEnabled practice { staffMfaRequired } } }"
PATIENTS = "query { patients(first: 5) { totalCount } }"
LOGIN_STEP = """
mutation($email: String!) {
  login(practice: "north", email: $email, password: "%s") {
    __typename ... on LoginSuccess { token }
  }
}
"""


async def enrol(client: GraphQLClient, clock: FrozenClock) -> str:
    secret: str = (await client.data(BEGIN))["beginMfaEnrollment"]["secret"]
    confirmed = await client.data(CONFIRM, code=pyotp.TOTP(secret).at(clock.now()))
    assert confirmed["confirmMfaEnrollment"]["__typename"] == "MfaEnabled"
    return secret


async def test_one_turns_it_off_with_the_password(
    clock: FrozenClock, admin: GraphQLClient, admin_account: Account
) -> None:
    await enrol(admin, clock)

    wrong = (await admin.data(DISABLE_MFA, password="not-the-password"))["disableMfa"]
    right = (await admin.data(DISABLE_MFA, password=factories.PASSWORD))["disableMfa"]

    assert wrong["code"] == "INVALID_CREDENTIALS"
    assert right == {"__typename": "MfaDisabled", "account": {"mfaEnabled": False}}
    assert await MfaRecoveryCode.filter(account_id=admin_account.id).count() == 0
    assert await OutboxMessage.filter(kind="sign_in_settings_off").count() == 1
    signed_in = await admin.http.post(
        "/graphql",
        json={
            "query": LOGIN_STEP % factories.PASSWORD,
            "variables": {"email": admin_account.email},
        },
    )
    assert signed_in.json()["data"]["login"]["__typename"] == "LoginSuccess"  # one step now


async def test_an_admin_resets_a_member_of_staffs_second_step(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    practice: Any,
    other_practice: Any,
    patient: GraphQLClient,
    patient_profile: Any,
) -> None:
    bea = await factories.make_staff(practice, Role.CLINICIAN, email="bea@north.example")
    bea_client = await anonymous.login("north", bea.email, factories.PASSWORD)
    await enrol(bea_client, clock)
    foreign = await factories.make_staff(other_practice, Role.ADMIN, email="a@south.example")
    patients_account = await Account.get(patient_id=patient_profile.id)

    reset = (await admin.data(RESET_STAFF_MFA, id=str(bea.id)))["resetStaffMfa"]
    of_patient = (await admin.data(RESET_STAFF_MFA, id=str(patients_account.id)))["resetStaffMfa"]
    elsewhere = (await admin.data(RESET_STAFF_MFA, id=str(foreign.id)))["resetStaffMfa"]

    assert reset == {
        "__typename": "MfaDisabled",
        "account": {"id": str(bea.id), "mfaEnabled": False},
    }
    assert (await bea_client.data(ME))["me"] is None  # signed out
    assert (of_patient["code"], elsewhere["code"]) == ("NOT_FOUND", "NOT_FOUND")
    assert await AuditEvent.filter(action=AuditAction.MFA_RESET).count() == 1


async def test_an_admin_requires_it_only_with_their_own_on(
    clock: FrozenClock, admin: GraphQLClient
) -> None:
    refused = (await admin.data(SET_REQUIRED, required=True))["setStaffMfaRequired"]
    await enrol(admin, clock)
    required = (await admin.data(SET_REQUIRED, required=True))["setStaffMfaRequired"]

    assert refused["code"] == "NOT_ALLOWED"
    assert required["practice"] == {"staffMfaRequired": True}
    assert await AuditEvent.filter(action=AuditAction.MFA_POLICY_CHANGED).count() == 1


async def test_staff_without_it_may_only_turn_it_on_while_the_practice_requires_it(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    practice: Any,
    patient: GraphQLClient,
) -> None:
    await enrol(admin, clock)
    await admin.data(SET_REQUIRED, required=True)
    bea = await factories.make_staff(practice, Role.CLINICIAN, email="bea@north.example")

    bea_client = await anonymous.login("north", bea.email, factories.PASSWORD)  # still signs in
    allowed = await bea_client.data(ME)
    # What every web page's header asks, so the enrolment page can be shown.
    layout = await bea_client.data('query { practiceName(slug: "north") me { email } }')
    blocked = await bea_client.post(PATIENTS)
    mixed = await bea_client.post("query { me { email } patients(first: 1) { totalCount } }")

    assert allowed["me"]["practice"] == {"staffMfaRequired": True}
    assert layout == {"practiceName": "North Street Practice", "me": {"email": bea.email}}
    for body in (blocked, mixed):
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["MFA_REQUIRED"]
    # Patients are not asked; an ADMIN with it on works as before.
    assert "errors" not in await patient.post("query { me { email } }")
    assert (await admin.data(PATIENTS))["patients"]["totalCount"] >= 0
    # Turning it on lifts the limit, in this very session.
    clock.advance(seconds=30)
    await enrol(bea_client, clock)
    assert (await bea_client.data(PATIENTS))["patients"]["totalCount"] >= 0
