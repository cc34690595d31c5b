"""Who may do what: signed out is UNAUTHENTICATED, signed in without the right
is FORBIDDEN, and a practice never sees, finds or changes another's patients."""

from __future__ import annotations

import inspect
import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from strawberry.permission import BasePermission

from graph.errors import Forbidden, Unauthenticated
from graph.patients.types import PatientType
from graph.permissions import IsAdminOfPatientPractice, IsStaffOrSelf
from models import AuditAction, AuditEvent, Patient, Practice, Role
from portal.services.access import Viewer
from tests import factories
from tests.conftest import GraphQLClient

PATIENTS = """
query Patients($search: String) {
  patients(search: $search) { totalCount edges { node { id firstName lastName } } }
}
"""
PATIENTS_WITH_PRIVATE_DETAILS = """
query { patients { edges { node { id dateOfBirth email phone } } } }
"""
PATIENTS_WITH_PORTAL = """
query { patients { edges { node { id portal { status signedUpAt } } } } }
"""
PATIENT = """
query Patient($id: ID!) { patient(id: $id) { id firstName dateOfBirth email phone } }
"""
PATIENT_PORTAL = "query Patient($id: ID!) { patient(id: $id) { id portal { status } } }"
MY_PROFILE = "query { me { patient { id dateOfBirth email phone } } }"
PORTAL_ID = "query Patient($id: ID!) { patient(id: $id) { id portal { id } } }"
MY_PORTAL = "query { me { patient { id portal { status } } } }"
CREATE_PATIENT = """
mutation CreatePatient($input: CreatePatientInput!) {
  createPatient(input: $input) {
    __typename
    ... on PatientCreated { patient { id firstName } }
    ... on Error { code message }
  }
}
"""
UPDATE_PATIENT = """
mutation UpdatePatient($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) {
    __typename
    ... on PatientUpdated { patient { id firstName } }
    ... on Error { code message }
  }
}
"""

NEW_PATIENT = {"firstName": "Alan", "lastName": "Turing", "email": "alan@mail.example"}
PRIVATE_DETAILS = {
    "dateOfBirth": "1990-05-17",
    "email": "grace@mail.example",
    "phone": "+1 555 0100",
}


def error_codes(body: dict[str, Any]) -> list[str]:
    """The `extensions.code` of each top-level error."""
    return [error["extensions"]["code"] for error in body.get("errors") or []]


def node_ids(result: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in result["patients"]["edges"]]


# Sync fixtures, so the async role fixtures they name are set up outside the
# test's running event loop.
@pytest.fixture(params=["admin", "clinician"])
def staff(request: pytest.FixtureRequest) -> GraphQLClient:
    """Each staff role in turn: ADMIN, then CLINICIAN."""
    client: GraphQLClient = request.getfixturevalue(request.param)
    return client


@pytest.fixture(params=["clinician", "patient"])
def not_admin(request: pytest.FixtureRequest) -> GraphQLClient:
    """Each signed-in role other than ADMIN."""
    client: GraphQLClient = request.getfixturevalue(request.param)
    return client


# --- patients: ADMIN and CLINICIAN -------------------------------------------


async def test_staff_list_their_practices_patients(
    staff: GraphQLClient, patient_profile: Patient
) -> None:
    result = await staff.data(PATIENTS)

    assert node_ids(result) == [str(patient_profile.id)]


async def test_a_patient_may_not_list_patients(patient: GraphQLClient) -> None:
    body = await patient.post(PATIENTS)

    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None


async def test_listing_patients_needs_sign_in(
    anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    body = await anonymous.post(PATIENTS)

    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["data"] is None


# --- createPatient and updatePatient: ADMIN only ------------------------------


async def test_an_admin_creates_a_patient(admin: GraphQLClient) -> None:
    result = await admin.data(CREATE_PATIENT, input=NEW_PATIENT)

    assert result["createPatient"]["__typename"] == "PatientCreated"
    assert await Patient.filter(first_name="Alan").count() == 1


async def test_only_an_admin_may_create_a_patient(
    not_admin: GraphQLClient, patient_profile: Patient
) -> None:
    body = await not_admin.post(CREATE_PATIENT, input=NEW_PATIENT)

    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    assert await Patient.all().count() == 1  # only patient_profile


async def test_creating_a_patient_needs_sign_in(anonymous: GraphQLClient) -> None:
    body = await anonymous.post(CREATE_PATIENT, input=NEW_PATIENT)

    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert await Patient.all().count() == 0


async def test_an_admin_updates_a_patient(admin: GraphQLClient, patient_profile: Patient) -> None:
    result = await admin.data(UPDATE_PATIENT, id=str(patient_profile.id), input={"firstName": "G"})

    assert result["updatePatient"]["__typename"] == "PatientUpdated"
    await patient_profile.refresh_from_db()
    assert patient_profile.first_name == "G"


async def test_only_an_admin_may_update_a_patient(
    not_admin: GraphQLClient, patient_profile: Patient
) -> None:
    body = await not_admin.post(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"firstName": "Changed"}
    )

    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    await patient_profile.refresh_from_db()
    assert patient_profile.first_name == "Grace"


async def test_updating_a_patient_needs_sign_in(
    anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    body = await anonymous.post(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"firstName": "Changed"}
    )

    assert error_codes(body) == ["UNAUTHENTICATED"]
    await patient_profile.refresh_from_db()
    assert patient_profile.first_name == "Grace"


# --- Patient.portal: ADMIN only -----------------------------------------------


async def test_an_admin_sees_each_patients_portal_status(
    admin: GraphQLClient, practice: Practice
) -> None:
    not_signed_up = await factories.make_patient(practice, last_name="Aardvark")
    signed_up = await factories.make_patient(practice, last_name="Zebra")
    account = await factories.make_patient_account(signed_up)

    result = await admin.data(PATIENTS_WITH_PORTAL)

    portals = {edge["node"]["id"]: edge["node"]["portal"] for edge in result["patients"]["edges"]}
    assert portals[str(not_signed_up.id)] == {"status": "YET_TO_SIGN_UP", "signedUpAt": None}
    assert portals[str(signed_up.id)]["status"] == "SIGNED_UP"
    signed_up_at = datetime.fromisoformat(portals[str(signed_up.id)]["signedUpAt"])
    assert signed_up_at == account.created_at.astimezone(UTC)


async def test_a_portal_is_identified_by_its_patient_for_client_caches(
    admin: GraphQLClient, patient_profile: Patient
) -> None:
    found = await admin.data(PORTAL_ID, id=str(patient_profile.id))

    patient_id = str(patient_profile.id)
    assert found == {"patient": {"id": patient_id, "portal": {"id": patient_id}}}


async def test_a_clinician_gets_every_patient_with_a_null_portal(
    clinician: GraphQLClient, practice: Practice
) -> None:
    patients = [await factories.make_patient(practice, last_name=f"P{n}") for n in range(3)]

    listed = await clinician.post(PATIENTS_WITH_PORTAL)
    single = await clinician.post(PATIENT_PORTAL, id=str(patients[0].id))

    # A refusal costs only the field refused: every patient is there.
    assert listed["data"]["patients"]["edges"] == [
        {"node": {"id": str(p.id), "portal": None}} for p in patients
    ]
    assert set(error_codes(listed)) == {"FORBIDDEN"}
    assert sorted(e["path"] for e in listed["errors"]) == [
        ["patients", "edges", n, "node", "portal"] for n in range(3)
    ]
    assert single["data"] == {"patient": {"id": str(patients[0].id), "portal": None}}
    assert error_codes(single) == ["FORBIDDEN"]
    # Refused once per request in the audit trail, however many rows.
    denied = await AuditEvent.filter(action=AuditAction.PERMISSION_DENIED).count()
    assert denied == 2


async def test_a_patient_reads_their_profile_without_its_portal_status(
    patient: GraphQLClient, patient_profile: Patient
) -> None:
    body = await patient.post(MY_PORTAL)

    assert body["data"] == {"me": {"patient": {"id": str(patient_profile.id), "portal": None}}}
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["me", "patient", "portal"]


# --- Patient.dateOfBirth/email/phone: staff of the practice, or the patient -----


async def test_staff_see_private_details_of_their_practices_patients(
    staff: GraphQLClient, patient_profile: Patient
) -> None:
    listed = await staff.data(PATIENTS_WITH_PRIVATE_DETAILS)
    single = await staff.data(PATIENT, id=str(patient_profile.id))

    assert listed["patients"]["edges"][0]["node"] == {
        "id": str(patient_profile.id),
        **PRIVATE_DETAILS,
    }
    assert single["patient"] == {
        "id": str(patient_profile.id),
        "firstName": "Grace",
        **PRIVATE_DETAILS,
    }


async def test_a_patient_sees_their_own_private_details(
    patient: GraphQLClient, patient_profile: Patient
) -> None:
    mine = await patient.data(MY_PROFILE)
    by_id = await patient.data(PATIENT, id=str(patient_profile.id))

    assert mine["me"]["patient"] == {"id": str(patient_profile.id), **PRIVATE_DETAILS}
    assert by_id["patient"] == {
        "id": str(patient_profile.id),
        "firstName": "Grace",
        **PRIVATE_DETAILS,
    }


# The denials below cannot be reached over HTTP, because other practices' and
# other patients' records are never returned; the permission classes are asked
# directly so they still hold if a future query leaks a record.

NORTH = uuid.UUID(int=1)
SOUTH = uuid.UUID(int=2)
PROFILE = uuid.UUID(int=10)


def a_patient_of(practice_id: uuid.UUID, patient_id: uuid.UUID = PROFILE) -> PatientType:
    return PatientType(
        id=str(patient_id),  # type: ignore[arg-type]
        first_name="Grace",
        last_name="Hopper",
        date_of_birth=date(1990, 5, 17),
        email="grace@mail.example",
        phone="+1 555 0100",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        practice_id=practice_id,
        patient_id=patient_id,
    )


def a_viewer(role: Role, practice_id: uuid.UUID, patient_id: uuid.UUID | None = None) -> Viewer:
    return Viewer(
        account_id=uuid.uuid4(),
        practice_id=practice_id,
        role=role,
        patient_id=patient_id,
        session_id=uuid.uuid4(),
    )


def info_for(viewer: Viewer | None) -> Any:
    return SimpleNamespace(context=SimpleNamespace(viewer=viewer))


async def ask(permission: type[BasePermission], viewer: Viewer | None) -> bool:
    """Asks the permission about a patient of the north practice."""
    answer = permission().has_permission(a_patient_of(NORTH), info_for(viewer))
    return bool(await answer) if inspect.isawaitable(answer) else bool(answer)


@pytest.mark.parametrize(
    "viewer",
    [
        pytest.param(a_viewer(Role.ADMIN, NORTH), id="admin-of-the-practice"),
        pytest.param(a_viewer(Role.CLINICIAN, NORTH), id="clinician-of-the-practice"),
        pytest.param(a_viewer(Role.PATIENT, NORTH, PROFILE), id="the-patient-themself"),
    ],
)
async def test_staff_of_the_practice_and_the_patient_pass_is_staff_or_self(viewer: Viewer) -> None:
    assert await ask(IsStaffOrSelf, viewer) is True


@pytest.mark.parametrize(
    "viewer",
    [
        pytest.param(a_viewer(Role.ADMIN, SOUTH), id="admin-of-another-practice"),
        pytest.param(a_viewer(Role.CLINICIAN, SOUTH), id="clinician-of-another-practice"),
        pytest.param(a_viewer(Role.PATIENT, NORTH, uuid.UUID(int=11)), id="another-patient"),
        pytest.param(a_viewer(Role.PATIENT, SOUTH, PROFILE), id="same-id-other-practice"),
    ],
)
async def test_anyone_else_is_forbidden_private_details(viewer: Viewer) -> None:
    with pytest.raises(Forbidden):
        await ask(IsStaffOrSelf, viewer)


async def test_an_admin_of_the_practice_passes_is_admin_of_patient_practice() -> None:
    assert await ask(IsAdminOfPatientPractice, a_viewer(Role.ADMIN, NORTH)) is True


@pytest.mark.parametrize(
    "viewer",
    [
        pytest.param(a_viewer(Role.ADMIN, SOUTH), id="admin-of-another-practice"),
        pytest.param(a_viewer(Role.CLINICIAN, NORTH), id="clinician-of-the-practice"),
        pytest.param(a_viewer(Role.PATIENT, NORTH, PROFILE), id="the-patient-themself"),
    ],
)
async def test_anyone_but_an_admin_of_the_practice_is_forbidden_portal(viewer: Viewer) -> None:
    with pytest.raises(Forbidden):
        await ask(IsAdminOfPatientPractice, viewer)


def test_the_patient_fields_are_guarded_by_these_permissions() -> None:
    fields = PatientType.__strawberry_definition__.fields  # type: ignore[attr-defined]
    guards = {f.python_name: f.permission_classes for f in fields if f.permission_classes}

    assert guards == {
        "date_of_birth": [IsStaffOrSelf],
        "email": [IsStaffOrSelf],
        "phone": [IsStaffOrSelf],
        "portal": [IsAdminOfPatientPractice],
    }


@pytest.mark.parametrize("permission", [IsStaffOrSelf, IsAdminOfPatientPractice])
async def test_patient_field_permissions_need_sign_in(permission: type[BasePermission]) -> None:
    with pytest.raises(Unauthenticated):
        await ask(permission, None)


# --- Tenancy: another practice's admin, on every path -------------------------


async def test_another_practice_cannot_read_a_patient_by_id(
    other_admin: GraphQLClient, patient_profile: Patient
) -> None:
    by_id = await other_admin.data(PATIENT, id=str(patient_profile.id))
    portal = await other_admin.data(PATIENT_PORTAL, id=str(patient_profile.id))

    assert by_id["patient"] is None
    assert portal["patient"] is None


async def test_another_practice_does_not_list_a_patient(
    other_admin: GraphQLClient, patient_profile: Patient, other_practice: Practice
) -> None:
    own = await factories.make_patient(
        other_practice, first_name="Alan", last_name="Hopper", phone="+44 20 7946 0000"
    )

    result = await other_admin.data(PATIENTS)

    assert node_ids(result) == [str(own.id)]
    assert result["patients"]["totalCount"] == 1


@pytest.mark.parametrize("search", ["Grace", "hopper", "grace@mail", "555 0100"])
async def test_another_practice_does_not_find_a_patient_by_search(
    search: str,
    admin: GraphQLClient,
    other_admin: GraphQLClient,
    patient_profile: Patient,
    other_practice: Practice,
) -> None:
    await factories.make_patient(
        other_practice, first_name="Alan", last_name="Turing", phone="+44 20 7946 0000"
    )
    assert node_ids(await admin.data(PATIENTS, search=search)) == [str(patient_profile.id)]

    result = await other_admin.data(PATIENTS, search=search)

    assert result["patients"] == {"totalCount": 0, "edges": []}


async def test_another_practice_cannot_update_a_patient(
    other_admin: GraphQLClient, patient_profile: Patient
) -> None:
    result = await other_admin.data(
        UPDATE_PATIENT, id=str(patient_profile.id), input={"firstName": "Changed", "email": None}
    )

    assert result["updatePatient"]["__typename"] == "NotFoundError"
    assert result["updatePatient"]["code"] == "NOT_FOUND"
    await patient_profile.refresh_from_db()
    assert patient_profile.first_name == "Grace"
    assert patient_profile.email == "grace@mail.example"


async def test_a_created_patient_belongs_to_the_creators_practice(
    admin: GraphQLClient, other_admin: GraphQLClient, other_practice: Practice
) -> None:
    created = await other_admin.data(CREATE_PATIENT, input=NEW_PATIENT)
    patient_id = created["createPatient"]["patient"]["id"]

    assert (await Patient.get(id=patient_id)).practice_id == other_practice.id
    assert (await admin.data(PATIENT, id=patient_id))["patient"] is None
    assert node_ids(await admin.data(PATIENTS)) == []


async def test_a_patient_cannot_read_another_patient_of_their_practice(
    patient: GraphQLClient, practice: Practice
) -> None:
    someone_else = await factories.make_patient(practice, first_name="Alan")

    result = await patient.data(PATIENT, id=str(someone_else.id))

    assert result["patient"] is None
