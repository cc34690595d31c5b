from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import ValidationError
from portal.services import recovery


@strawberry.type
class VerificationCodeSent:
    message: str = strawberry.field(
        description="The same words whether or not an account has that email."
    )


# ValidationError is never returned today; the union needs an Error member so
# that later outcomes can be added without breaking clients.
RequestVerificationCodeResult = Annotated[
    VerificationCodeSent | ValidationError, strawberry.union("RequestVerificationCodeResult")
]


async def request_verification_code(
    info: Info, practice: str, email: str
) -> RequestVerificationCodeResult:
    message = await recovery.request_verification_code(practice, email, info.context.settings)
    return VerificationCodeSent(message=message)
