from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import (
    AccountDisabledError,
    InvalidExpiryError,
    NotFoundError,
    NotSignedUpError,
    error_result,
)
from portal.services import recovery
from portal.services.errors import ServiceError


@strawberry.type
class ResetLinkGenerated:
    url: str = strawberry.field(
        description="The link to hand to the patient; shown only this once."
    )
    expires_at: datetime


GenerateResetLinkResult = Annotated[
    ResetLinkGenerated
    | NotFoundError
    | NotSignedUpError
    | InvalidExpiryError
    | AccountDisabledError,
    strawberry.union("GenerateResetLinkResult"),
]


async def generate_reset_link(
    info: Info, patient_id: strawberry.ID, expires_at: datetime
) -> GenerateResetLinkResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        link = await recovery.generate_reset_link(
            info.context.viewer, patient_id, expires_at, info.context.settings
        )
    except ServiceError as failure:
        return error_result(failure)
    return ResetLinkGenerated(url=link.url, expires_at=link.expires_at)
