from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import NotFoundError, NotSignedUpError, error_result
from graph.patients.types import PatientType
from portal.services import portal_access
from portal.services.errors import ServiceError


@strawberry.type
class PortalAccessRestored:
    patient: PatientType


RestorePortalAccessResult = Annotated[
    PortalAccessRestored | NotFoundError | NotSignedUpError,
    strawberry.union("RestorePortalAccessResult"),
]


async def restore_portal_access(info: Info, patient_id: strawberry.ID) -> RestorePortalAccessResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        patient = await portal_access.restore_portal_access(info.context.viewer, patient_id)
    except ServiceError as failure:
        return error_result(failure)
    return PortalAccessRestored(patient=PatientType.from_model(patient))
