from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import EmailTakenError, NotFoundError, ValidationError, error_result
from graph.patients.types import PatientType
from portal.services import patients as service
from portal.services.errors import ServiceError


@strawberry.input(description="Omitted fields stay as they are; null clears an optional field.")
class UpdatePatientInput:
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    date_of_birth: date | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET


@strawberry.type
class PatientUpdated:
    patient: PatientType


UpdatePatientResult = Annotated[
    PatientUpdated | ValidationError | NotFoundError | EmailTakenError,
    strawberry.union("UpdatePatientResult"),
]


async def update_patient(
    info: Info, id: strawberry.ID, input: UpdatePatientInput
) -> UpdatePatientResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    changes = {k: v for k, v in asdict(input).items() if v is not strawberry.UNSET}
    try:
        updated = await service.update_patient(info.context.viewer, id, changes)
    except ServiceError as failure:
        return error_result(failure)
    return PatientUpdated(patient=PatientType.from_model(updated))
