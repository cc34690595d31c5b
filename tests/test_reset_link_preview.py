"""The reset-link page asks what its link is for before a password is typed:
whose account, until when, and whether it can still be used."""

from __future__ import annotations

from datetime import datetime

from models import Patient, ResetToken
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient
from tests.test_generate_reset_link import generated_token, in_days, reset

PREVIEW = """
query Preview($token: String!) {
  resetLink(token: $token) { email expiresAt usable }
}
"""
REVOKE = "mutation ($id: ID!) { revokePortalAccess(patientId: $id) { __typename } }"
NEW_PASSWORD = "velvet-harbour-quantum-57"


async def test_a_fresh_link_names_its_account_and_expiry(
    clock: FrozenClock, admin: GraphQLClient, anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)
    chosen = in_days(clock, 3)
    token = await generated_token(admin, patient_profile, chosen)

    preview = (await anonymous.data(PREVIEW, token=token))["resetLink"]

    assert preview["usable"] is True
    assert preview["email"] == "grace@mail.example"
    assert datetime.fromisoformat(preview["expiresAt"]) == chosen
    # Looking changes nothing: the link still sets the password.
    assert (await reset(anonymous, token, NEW_PASSWORD))["__typename"] == "PasswordReset"


async def test_a_used_replaced_or_expired_link_is_unusable_and_masks_the_address(
    clock: FrozenClock, admin: GraphQLClient, anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)
    used = await generated_token(admin, patient_profile, in_days(clock, 3))
    await reset(anonymous, used, NEW_PASSWORD)
    replaced = await generated_token(admin, patient_profile, in_days(clock, 1))
    expiring = await generated_token(admin, patient_profile, in_days(clock, 1))
    clock.advance(days=2)

    previews = [
        (await anonymous.data(PREVIEW, token=token))["resetLink"]
        for token in (used, replaced, expiring)
    ]

    for preview in previews:
        assert preview["usable"] is False
        assert preview["email"] == "g•••@mail.example"


async def test_a_revoked_patients_link_is_unusable(
    clock: FrozenClock, admin: GraphQLClient, anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)
    token = await generated_token(admin, patient_profile, in_days(clock, 3))
    await admin.data(REVOKE, id=str(patient_profile.id))

    preview = (await anonymous.data(PREVIEW, token=token))["resetLink"]

    assert preview["usable"] is False


async def test_an_unknown_or_empty_token_is_null_and_writes_nothing(
    anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)

    unknown = await anonymous.data(PREVIEW, token="not-a-token-we-issued")
    empty = await anonymous.data(PREVIEW, token="")

    assert unknown == empty == {"resetLink": None}
    assert await ResetToken.all().count() == 0
