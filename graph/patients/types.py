from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from operator import attrgetter
from typing import Any

import strawberry

from graph.context import Info
from graph.execution.planner import FieldPlan
from graph.execution.specs import SAME_SOURCE, Batch, Compute, Request, compiled
from graph.permissions import IsAdminOfPatientPractice, IsStaffOrSelf
from graph.portal.types import PatientPortal
from models import Patient
from portal.services.patients import PATIENT_COLUMNS, cursor_sql, encode_cursor
from portal.services.portal_access import PortalState, portal_states

PRIVATE = "Staff of the practice, or the patient themself."


async def portal_states_of(
    request: Request, rows: list[Any], args: Mapping[str, Any], selection: FieldPlan
) -> list[PortalState]:
    return await portal_states([row["id"] for row in rows], request.reader)


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
        description="ADMIN of the patient's practice: portal access for this patient; null, "
        "with a FORBIDDEN error, for anyone else.",
        permission_classes=[IsAdminOfPatientPractice],
        metadata=compiled(Batch(portal_states_of, needs=("id",))),
    )
    async def portal(self, info: Info) -> PatientPortal | None:
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


# Compiled plans read a page's `has_next_page` and `end_cursor` from the
# service's page object, and each edge from its row.
@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class PatientEdge:
    cursor: str = strawberry.field(
        metadata=compiled(
            Compute(lambda row: encode_cursor(row["id"]), needs=("id",), sql=cursor_sql)
        )
    )
    node: PatientType = strawberry.field(metadata=compiled(SAME_SOURCE))


@strawberry.type
class PatientConnection:
    edges: list[PatientEdge] = strawberry.field(metadata=compiled(Compute(attrgetter("patients"))))
    page_info: PageInfo = strawberry.field(metadata=compiled(SAME_SOURCE))
    total_count: int = strawberry.field(metadata=compiled(Compute(attrgetter("total_count"))))
