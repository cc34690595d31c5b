"""updatePatient: an ADMIN changes a profile of their own practice; omitted
fields stay, null clears an optional field, and a failure writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from models import Account, Patient, Practice
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient

UPDATE_PATIENT = """
mutation UpdatePatient($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) {
    __typename
    ... on PatientUpdated { patient { id firstName lastName dateOfBirth email phone } }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}
"""

PATIENTS = """
query Patients($search: String) {
  patients(search: $search) { edges { node { id lastName } } }
}
"""


@pytest.fixture
async def ada(practice: Practice) -> Patient:
    return await factories.make_patient(
        practice,
        first_name="Ada",
        last_name="Lovelace",
        date_of_birth=date(1990, 12, 10),
        email="ada@mail.example",
        phone="+44 20 7946 0000",
    )


def columns(patient: Patient) -> tuple[Any, ...]:
    return (
        patient.first_name,
        patient.last_name,
        patient.date_of_birth,
        patient.email,
        patient.phone,
    )


async def stored(patient: Patient) -> tuple[Any, ...]:
    return columns(await Patient.get(id=patient.id))


ADA = ("Ada", "Lovelace", date(1990, 12, 10), "ada@mail.example", "+44 20 7946 0000")


async def test_omitted_fields_stay_as_they_are(admin: GraphQLClient, ada: Patient) -> None:
    result = await admin.data(UPDATE_PATIENT, id=str(ada.id), input={"phone": "+1 (555) 0199"})

    updated = result["updatePatient"]
    assert updated["__typename"] == "PatientUpdated"
    assert updated["patient"] == {
        "id": str(ada.id),
        "firstName": "Ada",
        "lastName": "Lovelace",
        "dateOfBirth": "1990-12-10",
        "email": "ada@mail.example",
        "phone": "+1 (555) 0199",
    }
    assert await stored(ada) == (*ADA[:4], "+1 (555) 0199")


async def test_an_empty_input_changes_nothing(admin: GraphQLClient, ada: Patient) -> None:
    result = await admin.data(UPDATE_PATIENT, id=str(ada.id), input={})

    assert result["updatePatient"]["__typename"] == "PatientUpdated"
    assert await stored(ada) == ADA


async def test_names_are_trimmed_and_email_stored_lowercase(
    admin: GraphQLClient, ada: Patient
) -> None:
    result = await admin.data(
        UPDATE_PATIENT,
        id=str(ada.id),
        input={"firstName": "  Augusta Ada ", "lastName": "\tKing ", "email": " ADA@King.Example "},
    )

    patient = result["updatePatient"]["patient"]
    assert (patient["firstName"], patient["lastName"], patient["email"]) == (
        "Augusta Ada",
        "King",
        "ada@king.example",
    )
    assert await stored(ada) == (
        "Augusta Ada",
        "King",
        date(1990, 12, 10),
        "ada@king.example",
        "+44 20 7946 0000",
    )


async def test_explicit_null_clears_optional_fields(admin: GraphQLClient, ada: Patient) -> None:
    result = await admin.data(
        UPDATE_PATIENT,
        id=str(ada.id),
        input={"dateOfBirth": None, "email": None, "phone": None},
    )

    patient = result["updatePatient"]["patient"]
    assert (patient["dateOfBirth"], patient["email"], patient["phone"]) == (None, None, None)
    assert await stored(ada) == ("Ada", "Lovelace", None, None, None)


async def test_blank_email_and_phone_clear_them(admin: GraphQLClient, ada: Patient) -> None:
    result = await admin.data(UPDATE_PATIENT, id=str(ada.id), input={"email": "  ", "phone": ""})

    patient = result["updatePatient"]["patient"]
    assert (patient["email"], patient["phone"]) == (None, None)
    assert await stored(ada) == ("Ada", "Lovelace", date(1990, 12, 10), None, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"firstName": None}, "firstName"),
        ({"lastName": None}, "lastName"),
        ({"firstName": ""}, "firstName"),
        ({"lastName": "   "}, "lastName"),
        ({"firstName": "A" * 101}, "firstName"),
        ({"email": "ada@"}, "email"),
        ({"email": "not an email"}, "email"),
        ({"dateOfBirth": "1899-12-31"}, "dateOfBirth"),
        ({"dateOfBirth": "2999-01-01"}, "dateOfBirth"),
        ({"phone": "call me maybe"}, "phone"),
        # A valid change alongside an invalid one is not written either.
        ({"firstName": "Augusta", "email": "ada@"}, "email"),
        ({"email": "ada@king.example", "lastName": ""}, "lastName"),
    ],
)
async def test_invalid_changes_are_a_validation_error_and_nothing_is_written(
    admin: GraphQLClient, ada: Patient, changes: dict[str, Any], field: str
) -> None:
    result = await admin.data(UPDATE_PATIENT, id=str(ada.id), input=changes)

    failure = result["updatePatient"]
    assert failure["__typename"] == "ValidationError"
    assert (failure["code"], failure["field"]) == ("VALIDATION", field)
    assert failure["message"]
    assert await stored(ada) == ADA


async def test_a_name_of_100_characters_is_accepted(admin: GraphQLClient, ada: Patient) -> None:
    result = await admin.data(UPDATE_PATIENT, id=str(ada.id), input={"lastName": "L" * 100})

    assert result["updatePatient"]["patient"]["lastName"] == "L" * 100
    assert (await Patient.get(id=ada.id)).last_name == "L" * 100


async def test_date_of_birth_may_be_today_at_utc_plus_14_but_not_later(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account, ada: Patient
) -> None:
    clock.current = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)  # midnight at UTC+14
    admin = await anonymous.login("north", admin_account.email, factories.PASSWORD)

    too_late = await admin.data(UPDATE_PATIENT, id=str(ada.id), input={"dateOfBirth": "2024-06-03"})
    latest = await admin.data(UPDATE_PATIENT, id=str(ada.id), input={"dateOfBirth": "2024-06-02"})

    assert too_late["updatePatient"]["field"] == "dateOfBirth"
    assert latest["updatePatient"]["patient"]["dateOfBirth"] == "2024-06-02"
    assert (await Patient.get(id=ada.id)).date_of_birth == date(2024, 6, 2)


async def test_a_renamed_patient_moves_in_the_list(
    admin: GraphQLClient, practice: Practice, ada: Patient
) -> None:
    await factories.make_patient(practice, first_name="Grace", last_name="Hopper")

    await admin.data(UPDATE_PATIENT, id=str(ada.id), input={"lastName": "Byron"})

    edges = (await admin.data(PATIENTS))["patients"]["edges"]
    assert [e["node"]["lastName"] for e in edges] == ["Byron", "Hopper"]


async def test_a_new_phone_number_is_found_by_its_digits_and_the_old_one_is_not(
    admin: GraphQLClient, ada: Patient
) -> None:
    await admin.data(UPDATE_PATIENT, id=str(ada.id), input={"phone": "+1 (555) 0199"})

    found = (await admin.data(PATIENTS, search="555-01"))["patients"]["edges"]
    assert [e["node"]["id"] for e in found] == [str(ada.id)]
    assert (await admin.data(PATIENTS, search="7946"))["patients"]["edges"] == []


@pytest.mark.parametrize("patient_id", [str(uuid.uuid4()), "not-an-id", ""])
async def test_an_unknown_id_is_not_found(
    admin: GraphQLClient, ada: Patient, patient_id: str
) -> None:
    result = await admin.data(UPDATE_PATIENT, id=patient_id, input={"firstName": "Augusta"})

    failure = result["updatePatient"]
    assert failure["__typename"] == "NotFoundError"
    assert failure["code"] == "NOT_FOUND"
    assert await stored(ada) == ADA


async def test_a_patient_of_another_practice_is_not_found_and_stays_unchanged(
    admin: GraphQLClient, other_practice: Practice
) -> None:
    theirs = await factories.make_patient(
        other_practice, first_name="Alan", last_name="Turing", email="alan@mail.example"
    )
    before = columns(theirs)

    result = await admin.data(
        UPDATE_PATIENT,
        id=str(theirs.id),
        input={"firstName": "Mallory", "email": None, "phone": None, "dateOfBirth": None},
    )

    failure = result["updatePatient"]
    assert failure["__typename"] == "NotFoundError"
    assert failure["code"] == "NOT_FOUND"
    assert await stored(theirs) == before


async def test_anonymous_callers_must_sign_in(anonymous: GraphQLClient, ada: Patient) -> None:
    body = await anonymous.post(UPDATE_PATIENT, id=str(ada.id), input={"firstName": "Eve"})

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await stored(ada) == ADA


async def test_clinicians_and_patients_may_not_change_profiles(
    clinician: GraphQLClient, patient: GraphQLClient, patient_profile: Patient, ada: Patient
) -> None:
    own_before = columns(patient_profile)

    for caller, target in [(clinician, ada), (patient, ada), (patient, patient_profile)]:
        body = await caller.post(UPDATE_PATIENT, id=str(target.id), input={"firstName": "Eve"})

        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await stored(ada) == ADA
    assert await stored(patient_profile) == own_before
