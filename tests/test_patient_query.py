"""patient(id): staff of the patient's practice, or the patient themself;
null for everyone else, and for an id that is unknown or malformed."""

from __future__ import annotations

import uuid

import pytest

from models import Patient, Practice
from tests import factories
from tests.conftest import GraphQLClient

PATIENT = """
query Patient($id: ID!) {
  patient(id: $id) { id firstName lastName dateOfBirth email phone }
}
"""

PATIENT_PORTAL = """
query PatientPortal($id: ID!) {
  patient(id: $id) { id portal { status } }
}
"""


def details(patient: Patient) -> dict[str, str | None]:
    return {
        "id": str(patient.id),
        "firstName": patient.first_name,
        "lastName": patient.last_name,
        "dateOfBirth": patient.date_of_birth.isoformat() if patient.date_of_birth else None,
        "email": patient.email,
        "phone": patient.phone,
    }


async def test_staff_of_the_practice_see_the_patient(
    admin: GraphQLClient, clinician: GraphQLClient, patient_profile: Patient
) -> None:
    for staff in (admin, clinician):
        result = await staff.data(PATIENT, id=str(patient_profile.id))

        assert result["patient"] == details(patient_profile)


async def test_a_patient_sees_themself(patient: GraphQLClient, patient_profile: Patient) -> None:
    result = await patient.data(PATIENT, id=str(patient_profile.id))

    assert result["patient"] == details(patient_profile)
    assert result["patient"]["email"] == "grace@mail.example"


async def test_another_patient_of_the_same_practice_gets_null(
    anonymous: GraphQLClient, patient: GraphQLClient, patient_profile: Patient, practice: Practice
) -> None:
    alan = await factories.make_patient(
        practice, first_name="Alan", last_name="Turing", email="alan@mail.example"
    )
    await factories.make_patient_account(alan)
    as_alan = await anonymous.login("north", "alan@mail.example", factories.PASSWORD)

    assert (await as_alan.data(PATIENT, id=str(patient_profile.id)))["patient"] is None
    assert (await patient.data(PATIENT, id=str(alan.id)))["patient"] is None
    assert (await as_alan.data(PATIENT, id=str(alan.id)))["patient"]["firstName"] == "Alan"


async def test_the_admin_of_another_practice_gets_null(
    other_admin: GraphQLClient, patient_profile: Patient
) -> None:
    result = await other_admin.data(PATIENT, id=str(patient_profile.id))

    assert result["patient"] is None


async def test_an_anonymous_caller_gets_null(
    anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    result = await anonymous.data(PATIENT, id=str(patient_profile.id))

    assert result["patient"] is None


@pytest.mark.parametrize("patient_id", ["not-an-id", "", "123", str(uuid.uuid4())])
async def test_a_malformed_or_unknown_id_gives_null(
    admin: GraphQLClient, patient_profile: Patient, patient_id: str
) -> None:
    result = await admin.data(PATIENT, id=patient_id)

    assert result["patient"] is None


async def test_only_an_admin_sees_portal_access(
    admin: GraphQLClient, clinician: GraphQLClient, patient: GraphQLClient, patient_profile: Patient
) -> None:
    by_admin = await admin.data(PATIENT_PORTAL, id=str(patient_profile.id))
    assert by_admin["patient"]["portal"] == {"status": "SIGNED_UP"}

    for caller in (clinician, patient):
        body = await caller.post(PATIENT_PORTAL, id=str(patient_profile.id))

        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
