"""createPatient: an ADMIN adds a patient profile to their own practice."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from models import Account, Patient, Practice
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient

CREATE_PATIENT = """
mutation CreatePatient($input: CreatePatientInput!) {
  createPatient(input: $input) {
    __typename
    ... on PatientCreated { patient { id firstName lastName dateOfBirth email phone } }
    ... on Error { code message }
    ... on ValidationError { field }
  }
}
"""

SEARCH = """
query Search($search: String) {
  patients(search: $search) { totalCount edges { node { id } } }
}
"""

VALID_INPUT: dict[str, Any] = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "dateOfBirth": "1990-12-10",
    "email": "ada@mail.example",
    "phone": "+44 20 7946 0000",
}


def with_input(**overrides: Any) -> dict[str, Any]:
    return {**VALID_INPUT, **overrides}


async def test_an_admin_creates_a_patient_in_their_own_practice(
    admin: GraphQLClient, practice: Practice
) -> None:
    result = await admin.data(CREATE_PATIENT, input=VALID_INPUT)

    created = result["createPatient"]
    assert created["__typename"] == "PatientCreated"
    assert created["patient"] == {"id": created["patient"]["id"], **VALID_INPUT}
    stored = await Patient.get(id=created["patient"]["id"])
    assert stored.practice_id == practice.id
    assert (stored.first_name, stored.last_name) == ("Ada", "Lovelace")
    assert stored.date_of_birth == date(1990, 12, 10)
    assert stored.email == "ada@mail.example"
    assert stored.phone == "+44 20 7946 0000"


async def test_only_names_are_required(admin: GraphQLClient) -> None:
    result = await admin.data(CREATE_PATIENT, input={"firstName": "Ada", "lastName": "Lovelace"})

    patient = result["createPatient"]["patient"]
    assert (patient["dateOfBirth"], patient["email"], patient["phone"]) == (None, None, None)
    assert await Patient.all().count() == 1


async def test_names_are_trimmed(admin: GraphQLClient) -> None:
    result = await admin.data(
        CREATE_PATIENT, input=with_input(firstName="  Ada \t", lastName="\n Lovelace  ")
    )

    patient = result["createPatient"]["patient"]
    assert (patient["firstName"], patient["lastName"]) == ("Ada", "Lovelace")
    stored = await Patient.get(id=patient["id"])
    assert (stored.first_name, stored.last_name) == ("Ada", "Lovelace")


async def test_a_name_of_100_characters_is_accepted_after_trimming(admin: GraphQLClient) -> None:
    long_name = "A" * 100

    result = await admin.data(
        CREATE_PATIENT, input=with_input(firstName=f"  {long_name}  ", lastName=long_name)
    )

    patient = result["createPatient"]["patient"]
    assert patient["firstName"] == patient["lastName"] == long_name
    stored = await Patient.get(id=patient["id"])
    assert stored.first_name == long_name


async def test_email_is_stored_lowercase(admin: GraphQLClient) -> None:
    result = await admin.data(
        CREATE_PATIENT, input=with_input(email="  Ada.Lovelace@Mail.EXAMPLE ")
    )

    patient = result["createPatient"]["patient"]
    assert patient["email"] == "ada.lovelace@mail.example"
    stored = await Patient.get(id=patient["id"])
    assert stored.email == "ada.lovelace@mail.example"


async def test_blank_email_and_phone_are_stored_as_null(admin: GraphQLClient) -> None:
    result = await admin.data(CREATE_PATIENT, input=with_input(email="   ", phone=""))

    created = result["createPatient"]
    assert created["__typename"] == "PatientCreated"
    assert (created["patient"]["email"], created["patient"]["phone"]) == (None, None)
    stored = await Patient.get(id=created["patient"]["id"])
    assert (stored.email, stored.phone) == (None, None)


async def test_phone_is_kept_as_typed_and_found_by_its_digits(admin: GraphQLClient) -> None:
    result = await admin.data(CREATE_PATIENT, input=with_input(phone="+1 (555) 0199"))

    patient = result["createPatient"]["patient"]
    assert patient["phone"] == "+1 (555) 0199"
    assert (await Patient.get(id=patient["id"])).phone == "+1 (555) 0199"
    found = (await admin.data(SEARCH, search="555-01"))["patients"]
    assert found["edges"] == [{"node": {"id": patient["id"]}}]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"firstName": ""}, "firstName"),
        ({"firstName": "   "}, "firstName"),
        ({"lastName": " \t "}, "lastName"),
        ({"firstName": "A" * 101}, "firstName"),
        ({"lastName": "  " + "B" * 101 + "  "}, "lastName"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "ada@"}, "email"),
        ({"email": "@mail.example"}, "email"),
        ({"email": "ada lovelace@mail.example"}, "email"),
        ({"email": "ada@mail..example"}, "email"),
        ({"dateOfBirth": "1899-12-31"}, "dateOfBirth"),
        ({"dateOfBirth": "2999-01-01"}, "dateOfBirth"),
        ({"phone": "call me maybe"}, "phone"),
    ],
)
async def test_invalid_input_is_a_validation_error_and_nothing_is_written(
    admin: GraphQLClient, overrides: dict[str, Any], field: str
) -> None:
    result = await admin.data(CREATE_PATIENT, input=with_input(**overrides))

    failure = result["createPatient"]
    assert failure["__typename"] == "ValidationError"
    assert failure["code"] == "VALIDATION"
    assert failure["field"] == field
    assert failure["message"]
    assert await Patient.all().count() == 0


async def test_1900_01_01_is_the_earliest_date_of_birth(admin: GraphQLClient) -> None:
    result = await admin.data(CREATE_PATIENT, input=with_input(dateOfBirth="1900-01-01"))

    assert result["createPatient"]["patient"]["dateOfBirth"] == "1900-01-01"
    assert await Patient.all().count() == 1


@pytest.mark.parametrize(
    ("now", "date_of_birth", "accepted"),
    [
        # 09:59 UTC is 23:59 at UTC+14: nowhere is it the next day yet.
        (datetime(2024, 6, 1, 9, 59, tzinfo=UTC), "2024-06-01", True),
        (datetime(2024, 6, 1, 9, 59, tzinfo=UTC), "2024-06-02", False),
        # 10:00 UTC is midnight at UTC+14: the next day has begun there.
        (datetime(2024, 6, 1, 10, 0, tzinfo=UTC), "2024-06-02", True),
        (datetime(2024, 6, 1, 10, 0, tzinfo=UTC), "2024-06-03", False),
    ],
)
async def test_date_of_birth_may_be_today_anywhere_on_earth_but_not_later(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    admin_account: Account,
    now: datetime,
    date_of_birth: str,
    accepted: bool,
) -> None:
    clock.current = now
    admin = await anonymous.login("north", admin_account.email, factories.PASSWORD)

    result = await admin.data(CREATE_PATIENT, input=with_input(dateOfBirth=date_of_birth))

    created = result["createPatient"]
    if accepted:
        assert created["__typename"] == "PatientCreated"
        assert created["patient"]["dateOfBirth"] == date_of_birth
        assert await Patient.all().count() == 1
    else:
        assert created["__typename"] == "ValidationError"
        assert (created["code"], created["field"]) == ("VALIDATION", "dateOfBirth")
        assert await Patient.all().count() == 0


async def test_the_new_patient_is_invisible_to_another_practice(
    admin: GraphQLClient, other_admin: GraphQLClient
) -> None:
    await admin.data(CREATE_PATIENT, input=VALID_INPUT)

    theirs = (await other_admin.data(SEARCH, search=None))["patients"]
    assert theirs["totalCount"] == 0
    ours = (await admin.data(SEARCH, search=None))["patients"]
    assert ours["totalCount"] == 1


async def test_anonymous_callers_must_sign_in(anonymous: GraphQLClient) -> None:
    body = await anonymous.post(CREATE_PATIENT, input=VALID_INPUT)

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await Patient.all().count() == 0


async def test_clinicians_and_patients_may_not_create_patients(
    clinician: GraphQLClient, patient: GraphQLClient
) -> None:
    before = await Patient.all().count()

    for caller in (clinician, patient):
        body = await caller.post(CREATE_PATIENT, input=VALID_INPUT)

        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await Patient.all().count() == before


@pytest.mark.parametrize("invisible", ["\u200b", "\u200b\u200d", "\u2060", "---", "."])
async def test_a_name_without_a_letter_is_refused(admin: GraphQLClient, invisible: str) -> None:
    result = await admin.data(CREATE_PATIENT, input=with_input(lastName=invisible))

    assert result["createPatient"]["code"] == "VALIDATION"
    assert result["createPatient"]["field"] == "lastName"
    assert await Patient.all().count() == 0
