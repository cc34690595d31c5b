from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import (
    AccountDisabledError,
    AlreadySignedUpError,
    EmailTakenError,
    MissingEmailError,
    NotFoundError,
    error_result,
)
from graph.patients.types import PatientType
from portal.services import invitations
from portal.services.errors import ServiceError


@strawberry.type
class InvitationSent:
    patient: PatientType
    sent_to: str
    expires_at: datetime


SendInvitationResult = Annotated[
    InvitationSent
    | NotFoundError
    | MissingEmailError
    | AlreadySignedUpError
    | EmailTakenError
    | AccountDisabledError,
    strawberry.union("SendInvitationResult"),
]


async def send_invitation(info: Info, patient_id: strawberry.ID) -> SendInvitationResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        sent = await invitations.send_invitation(
            info.context.viewer, patient_id, info.context.settings
        )
    except ServiceError as failure:
        return error_result(failure)
    return InvitationSent(
        patient=PatientType.from_model(sent.patient),
        sent_to=sent.sent_to,
        expires_at=sent.expires_at,
    )
