from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import RateLimitedError, error_result
from portal.services import recovery
from portal.services.errors import ServiceError


@strawberry.type
class VerificationCodeSent:
    message: str = strawberry.field(
        description="The same words whether or not an account has that email."
    )


RequestVerificationCodeResult = Annotated[
    VerificationCodeSent | RateLimitedError, strawberry.union("RequestVerificationCodeResult")
]


async def request_verification_code(
    info: Info, practice: str, email: str
) -> RequestVerificationCodeResult:
    try:
        message = await recovery.request_verification_code(practice, email, info.context.settings)
    except ServiceError as failure:
        return error_result(failure)
    return VerificationCodeSent(message=message)
