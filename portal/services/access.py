"""Who is asking, and what they may see: the one place tenancy is applied.

Every read of patient data goes through `visible_patients`, so a practice never
sees, finds or changes another practice's records, and a patient sees only
themself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tortoise.queryset import QuerySet

from models import Patient, Role


@dataclass(frozen=True)
class Viewer:
    account_id: uuid.UUID
    practice_id: uuid.UUID
    role: Role
    patient_id: uuid.UUID | None
    session_id: uuid.UUID
    # Staff of a practice that requires two-step verification, without it:
    # the session may only turn it on (see graph.second_factor).
    second_factor_missing: bool = False

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.ADMIN, Role.CLINICIAN)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def belongs_to(self, practice_id: object) -> bool:
        return str(practice_id) == str(self.practice_id)

    def may_see_private_details(self, practice_id: object, patient_id: object) -> bool:
        """Staff of the patient's practice, or the patient themself."""
        if not self.belongs_to(practice_id):
            return False
        return self.is_staff or str(patient_id) == str(self.patient_id)


def parse_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except (ValueError, AttributeError, TypeError):
        return None


def visible_patients(viewer: Viewer) -> QuerySet[Patient]:
    patients = Patient.filter(practice_id=viewer.practice_id)
    if not viewer.is_staff:
        patients = patients.filter(id=viewer.patient_id)
    return patients


async def find_visible_patient(
    viewer: Viewer, patient_id: str, *, for_update: bool = False
) -> Patient | None:
    """The patient if the viewer may see it. `for_update` (inside a
    transaction) locks the row on PostgreSQL, so changes that read then
    write one patient happen one after the other."""
    parsed = parse_id(patient_id)
    if parsed is None:
        return None
    patients = visible_patients(viewer)
    if for_update:
        patients = patients.select_for_update()
    return await patients.get_or_none(id=parsed)
