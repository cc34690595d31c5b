from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import InvalidCodeError, RateLimitedError, error_result
from portal.services import recovery
from portal.services.errors import ServiceError


@strawberry.type
class ResetCodeVerified:
    token: str = strawberry.field(description="A short-lived token for `resetPassword`.")
    expires_at: datetime


VerifyResetCodeResult = Annotated[
    ResetCodeVerified | InvalidCodeError | RateLimitedError,
    strawberry.union("VerifyResetCodeResult"),
]


async def verify_reset_code(
    info: Info, practice: str, email: str, code: str
) -> VerifyResetCodeResult:
    try:
        issued = await recovery.verify_reset_code(practice, email, code, info.context.settings)
    except ServiceError as failure:
        return error_result(failure)
    return ResetCodeVerified(token=issued.token, expires_at=issued.expires_at)
