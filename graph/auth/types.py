from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from graph.context import Info
from graph.execution.planner import FieldPlan
from graph.execution.specs import Batch, Request, compiled
from graph.patients.types import PatientType
from models import Account
from models import Role as ModelRole
from portal.db import Row, reading
from portal.services.access import find_visible_patient
from portal.services.accounts import account_row
from portal.services.patients import visible_patients_by_id
from portal.services.practices import practices_by_id


@strawberry.enum
class Role(Enum):
    ADMIN = strawberry.enum_value(
        ModelRole.ADMIN.value,
        description="Practice administrator: manages patients and their portal access.",
    )
    CLINICIAN = strawberry.enum_value(
        ModelRole.CLINICIAN.value,
        description="Clinician: reads the practice's patients; manages no portal access.",
    )
    PATIENT = strawberry.enum_value(
        ModelRole.PATIENT.value,
        description="A patient (client) signed in to the portal; sees only themself.",
    )


async def practices_of(
    request: Request, accounts: list[Any], args: Mapping[str, Any], selection: FieldPlan
) -> list[Row]:
    return await practices_by_id([a["practice_id"] for a in accounts], request.reader)


async def patients_of(
    request: Request, accounts: list[Any], args: Mapping[str, Any], selection: FieldPlan
) -> list[Row | None]:
    if request.viewer is None:
        return [None for _ in accounts]
    return await visible_patients_by_id(
        request.viewer, [a["patient_id"] for a in accounts], selection.keys(), request.reader
    )


@strawberry.type(name="Practice")
class PracticeType:
    id: strawberry.ID
    name: str
    slug: str = strawberry.field(description="The practice's short name, used to sign in.")
    staff_mfa_required: bool = strawberry.field(
        description="Whether every ADMIN and CLINICIAN must use two-step verification."
    )

    @classmethod
    def from_row(cls, practice: Mapping[str, Any]) -> PracticeType:
        return cls(
            id=strawberry.ID(str(practice["id"])),
            name=practice["name"],
            slug=practice["slug"],
            staff_mfa_required=bool(practice["staff_mfa_required"]),
        )


@strawberry.type(name="Account")
class AccountType:
    id: strawberry.ID
    email: str
    role: Role
    active: bool = strawberry.field(
        description="False once an ADMIN disabled the account or revoked the patient's portal "
        "access."
    )
    last_sign_in_at: datetime | None
    mfa_enabled: bool = strawberry.field(
        default=False,
        description="Whether two-step verification (an authenticator app) is on for this account.",
    )
    practice_id: strawberry.Private[uuid.UUID]
    patient_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(metadata=compiled(Batch(practices_of, needs=("practice_id",))))
    async def practice(self, info: Info) -> PracticeType:
        return PracticeType.from_row(await info.context.loaders.practice.load(self.practice_id))

    @strawberry.field(
        description="The patient profile behind a PATIENT account; null for staff.",
        metadata=compiled(Batch(patients_of, needs=("patient_id",))),
    )
    async def patient(self, info: Info) -> PatientType | None:
        viewer = info.context.viewer
        if self.patient_id is None or viewer is None:
            return None
        patient = await find_visible_patient(viewer, str(self.patient_id))
        return PatientType.from_model(patient) if patient is not None else None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AccountType:
        return cls(
            id=strawberry.ID(str(row["id"])),
            email=row["email"],
            role=Role(row["role"]),
            active=bool(row["active"]),
            last_sign_in_at=row["last_sign_in_at"],
            mfa_enabled=bool(row["mfa_enabled"]),
            practice_id=row["practice_id"],
            patient_id=row["patient_id"],
        )

    @classmethod
    def from_model(cls, account: Account, last_sign_in_at: datetime | None) -> AccountType:
        return cls(
            id=strawberry.ID(str(account.id)),
            email=account.email,
            role=Role(account.role.value),
            active=account.disabled_at is None,
            last_sign_in_at=last_sign_in_at,
            mfa_enabled=account.mfa_enabled_at is not None,
            practice_id=account.practice_id,
            patient_id=account.patient_id,
        )


@strawberry.type
class LoginSuccess:
    token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`.")
    expires_at: datetime
    account: AccountType


async def account_type(account_id: uuid.UUID) -> AccountType:
    """The account as the API shows it, read afresh."""
    async with reading() as reader:
        row = await account_row(account_id, reader)
    assert row is not None
    return AccountType.from_row(row)
