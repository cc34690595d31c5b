from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from graph.auth.types import Role
from graph.context import Info
from graph.errors import EmailTakenError, ValidationError, error_result
from models import Role as ModelRole
from portal.services import staff
from portal.services.errors import ServiceError


@strawberry.type
class StaffInvitationSent:
    email: str
    role: Role
    expires_at: datetime


InviteStaffResult = Annotated[
    StaffInvitationSent | ValidationError | EmailTakenError,
    strawberry.union("InviteStaffResult"),
]


async def invite_staff(info: Info, email: str, role: Role) -> InviteStaffResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        sent = await staff.invite_staff(
            info.context.viewer, email, ModelRole[role.name], info.context.settings
        )
    except ServiceError as failure:
        return error_result(failure)
    return StaffInvitationSent(
        email=sent.email, role=Role(sent.role.value), expires_at=sent.expires_at
    )
