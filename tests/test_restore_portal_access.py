"""restorePortalAccess: an ADMIN lets a revoked patient in again, with the
password they had (or a reset link the ADMIN then makes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models import Account, AuditAction, AuditEvent, OutboxMessage, Patient
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient

RESTORE = """
mutation Restore($id: ID!) {
  restorePortalAccess(patientId: $id) {
    __typename
    ... on PortalAccessRestored { patient { id portal { status revokedAt } } }
    ... on Error { code message }
  }
}
"""
REVOKE = "mutation($id: ID!) { revokePortalAccess(patientId: $id) { __typename } }"
GENERATE_LINK = """
mutation($id: ID!, $expiresAt: DateTime!) {
  generateResetLink(patientId: $id, expiresAt: $expiresAt) { __typename }
}
"""


async def restore(admin: GraphQLClient, patient: Patient) -> dict[str, Any]:
    result: dict[str, Any] = (await admin.data(RESTORE, id=str(patient.id)))["restorePortalAccess"]
    return result


async def test_a_restored_patient_signs_in_with_their_password(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient: GraphQLClient,
    patient_profile: Patient,
) -> None:
    await admin.data(REVOKE, id=str(patient_profile.id))
    mail_before = await OutboxMessage.all().count()

    restored = await restore(admin, patient_profile)

    assert restored == {
        "__typename": "PortalAccessRestored",
        "patient": {
            "id": str(patient_profile.id),
            "portal": {"status": "SIGNED_UP", "revokedAt": None},
        },
    }
    email = (await Account.get(patient_id=patient_profile.id)).email
    signed_in = await anonymous.data(
        LOGIN, practice="north", email=email, password=factories.PASSWORD
    )
    assert signed_in["login"]["__typename"] == "LoginSuccess"
    assert signed_in["login"]["account"]["role"] == "PATIENT"
    # The sessions ended by the revoke stay ended: the patient signs in anew.
    assert (await patient.data("query { me { id } }"))["me"] is None
    assert await OutboxMessage.all().count() == mail_before
    [event] = await AuditEvent.filter(action=AuditAction.PORTAL_ACCESS_RESTORED)
    assert event.patient_id == patient_profile.id
    # And the ADMIN may hand over a reset link again.
    link = await admin.data(
        GENERATE_LINK,
        id=str(patient_profile.id),
        expiresAt=(clock.now() + timedelta(days=1)).isoformat(),
    )
    assert link["generateResetLink"]["__typename"] == "ResetLinkGenerated"


async def test_restoring_access_that_was_never_revoked_changes_nothing(
    admin: GraphQLClient, patient: GraphQLClient, patient_profile: Patient
) -> None:
    restored = await restore(admin, patient_profile)

    assert restored["patient"]["portal"]["status"] == "SIGNED_UP"
    assert await AuditEvent.filter(action=AuditAction.PORTAL_ACCESS_RESTORED).count() == 0
    assert (await patient.data("query { me { id } }"))["me"] is not None


async def test_a_patient_without_an_account_is_not_signed_up(
    admin: GraphQLClient, patient_profile: Patient
) -> None:
    restored = await restore(admin, patient_profile)

    assert restored["code"] == "NOT_SIGNED_UP"


async def test_only_an_admin_of_the_patients_practice_may_restore(
    admin: GraphQLClient,
    clinician: GraphQLClient,
    other_admin: GraphQLClient,
    patient: GraphQLClient,
    patient_profile: Patient,
) -> None:
    await admin.data(REVOKE, id=str(patient_profile.id))

    refused = await clinician.post(RESTORE, id=str(patient_profile.id))
    elsewhere = (await other_admin.data(RESTORE, id=str(patient_profile.id)))["restorePortalAccess"]

    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert elsewhere["code"] == "NOT_FOUND"
    account = await Account.get(patient_id=patient_profile.id)
    assert account.disabled_at is not None
