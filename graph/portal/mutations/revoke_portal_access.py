from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import NotFoundError, error_result
from graph.patients.types import PatientType
from portal.services import portal_access
from portal.services.errors import ServiceError


@strawberry.type
class PortalAccessRevoked:
    patient: PatientType


RevokePortalAccessResult = Annotated[
    PortalAccessRevoked | NotFoundError, strawberry.union("RevokePortalAccessResult")
]


async def revoke_portal_access(info: Info, patient_id: strawberry.ID) -> RevokePortalAccessResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        patient = await portal_access.revoke_portal_access(info.context.viewer, patient_id)
    except ServiceError as failure:
        return error_result(failure)
    return PortalAccessRevoked(patient=PatientType.from_model(patient))
