"""Turning two-step verification off (one's own, with the password; a member
of staff's, by an ADMIN) and the practice's policy for staff."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.auth.types import AccountType, PracticeType, account_type
from graph.context import Info
from graph.errors import (
    InvalidCredentialsError,
    NotAllowedError,
    NotFoundError,
    RateLimitedError,
    error_result,
)
from portal.services import mfa
from portal.services.errors import ServiceError
from portal.services.practices import practices_by_id


@strawberry.type
class MfaDisabled:
    account: AccountType


@strawberry.type
class PracticeSecurityUpdated:
    practice: PracticeType


DisableMfaResult = Annotated[
    MfaDisabled | InvalidCredentialsError | RateLimitedError, strawberry.union("DisableMfaResult")
]
ResetStaffMfaResult = Annotated[
    MfaDisabled | NotFoundError, strawberry.union("ResetStaffMfaResult")
]
SetStaffMfaRequiredResult = Annotated[
    PracticeSecurityUpdated | NotAllowedError, strawberry.union("SetStaffMfaRequiredResult")
]


async def disable_mfa(info: Info, password: str) -> DisableMfaResult:
    assert info.context.viewer is not None  # guaranteed by IsSignedIn
    try:
        account = await mfa.disable_mfa(info.context.viewer, password, info.context.settings)
    except ServiceError as failure:
        return error_result(failure)  # type: ignore[no-any-return]
    return MfaDisabled(account=await account_type(account.id))


async def reset_staff_mfa(info: Info, account_id: strawberry.ID) -> ResetStaffMfaResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        account = await mfa.reset_staff_mfa(info.context.viewer, account_id)
    except ServiceError as failure:
        return error_result(failure)  # type: ignore[no-any-return]
    return MfaDisabled(account=await account_type(account.id))


async def set_staff_mfa_required(info: Info, required: bool) -> SetStaffMfaRequiredResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        practice = await mfa.set_staff_mfa_required(info.context.viewer, required)
    except ServiceError as failure:
        return error_result(failure)  # type: ignore[no-any-return]
    [row] = await practices_by_id([practice.id])
    return PracticeSecurityUpdated(practice=PracticeType.from_row(row))
