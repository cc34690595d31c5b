from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import strawberry

from graph.context import Info
from graph.permissions import IsAdminOfPatientPractice, IsStaffOrSelf
from graph.portal.types import PatientPortal
from models import Patient
from portal.services.patients import PATIENT_COLUMNS

PRIVATE = "Staff of the practice, or the patient themself."


@strawberry.type(name="Patient")
class PatientType:
    id: strawberry.ID
    first_name: str
    last_name: str
    date_of_birth: date | None = strawberry.field(
        description=PRIVATE, permission_classes=[IsStaffOrSelf]
    )
    email: str | None = strawberry.field(description=PRIVATE, permission_classes=[IsStaffOrSelf])
    phone: str | None = strawberry.field(description=PRIVATE, permission_classes=[IsStaffOrSelf])
    created_at: datetime
    practice_id: strawberry.Private[uuid.UUID]
    patient_id: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="ADMIN only: portal access for this patient.",
        permission_classes=[IsAdminOfPatientPractice],
    )
    async def portal(self, info: Info) -> PatientPortal:
        return PatientPortal.from_state(
            await info.context.loaders.portal_state.load(self.patient_id)
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PatientType:
        return cls(
            id=strawberry.ID(str(row["id"])),
            first_name=row["first_name"],
            last_name=row["last_name"],
            date_of_birth=row["date_of_birth"],
            email=row["email"],
            phone=row["phone"],
            created_at=row["created_at"],
            practice_id=row["practice_id"],
            patient_id=row["id"],
        )

    @classmethod
    def from_model(cls, patient: Patient) -> PatientType:
        return cls.from_row({column: getattr(patient, column) for column in PATIENT_COLUMNS})


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class PatientEdge:
    cursor: str
    node: PatientType


@strawberry.type
class PatientConnection:
    edges: list[PatientEdge]
    page_info: PageInfo
    total_count: int
