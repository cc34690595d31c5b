from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import ValidationError, error_result
from graph.patients.types import PatientType
from portal.services import patients as service
from portal.services.errors import ServiceError


@strawberry.input
class CreatePatientInput:
    first_name: str
    last_name: str
    date_of_birth: date | None = None
    email: str | None = None
    phone: str | None = None


@strawberry.type
class PatientCreated:
    patient: PatientType


CreatePatientResult = Annotated[
    PatientCreated | ValidationError, strawberry.union("CreatePatientResult")
]


async def create_patient(info: Info, input: CreatePatientInput) -> CreatePatientResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        created = await service.create_patient(
            info.context.viewer,
            first_name=input.first_name,
            last_name=input.last_name,
            date_of_birth=input.date_of_birth,
            email=input.email,
            phone=input.phone,
        )
    except ServiceError as failure:
        return error_result(failure)
    return PatientCreated(patient=PatientType.from_model(created))
