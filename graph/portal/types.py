from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from graph.execution.specs import Compute, compiled
from portal.services.portal_access import PortalState
from portal.services.portal_access import PortalStatus as ServicePortalStatus


@strawberry.enum(description="Where a patient stands with the client portal.")
class PortalStatus(Enum):
    YET_TO_SIGN_UP = strawberry.enum_value(
        ServicePortalStatus.YET_TO_SIGN_UP.value,
        description="Yet to sign up: no portal account and no invitation that can still be used.",
    )
    INITIATED = strawberry.enum_value(
        ServicePortalStatus.INITIATED.value,
        description="Initiated: an invitation was sent and can still be used; no account yet.",
    )
    SIGNED_UP = strawberry.enum_value(
        ServicePortalStatus.SIGNED_UP.value,
        description="Already signed up: the patient has created a portal account.",
    )
    REVOKED = strawberry.enum_value(
        ServicePortalStatus.REVOKED.value,
        description="Revoked: an ADMIN revoked portal access; the account cannot sign in until "
        "access is restored.",
    )


@strawberry.type
class PatientPortal:
    id: strawberry.ID = strawberry.field(
        description="The patient's id, so client caches can keep one portal per patient.",
        metadata=compiled(Compute(lambda state: state.patient_id)),
    )
    status: PortalStatus
    invited_at: datetime | None = strawberry.field(
        description="When the latest invitation was sent."
    )
    invitation_expires_at: datetime | None = strawberry.field(
        description="Until when the latest invitation can be used."
    )
    signed_up_at: datetime | None = strawberry.field(
        description="When the patient created their account."
    )
    revoked_at: datetime | None = strawberry.field(
        description="When portal access was revoked; null unless the status is REVOKED."
    )

    @classmethod
    def from_state(cls, state: PortalState) -> PatientPortal:
        return cls(
            id=strawberry.ID(str(state.patient_id)),
            status=PortalStatus(state.status.value),
            invited_at=state.invited_at,
            invitation_expires_at=state.invitation_expires_at,
            signed_up_at=state.signed_up_at,
            revoked_at=state.revoked_at,
        )


@strawberry.type(description="What a sign-up link is for, so the sign-up page can show it.")
class InvitationPreview:
    practice_name: str
    email: str
    expires_at: datetime
    usable: bool = strawberry.field(
        description="False once the invitation is used, replaced, revoked or expired."
    )


@strawberry.type(description="What a password reset link is for, so its page can show it.")
class ResetLinkPreview:
    email: str = strawberry.field(
        description="The account's email address; masked (g•••@mail.example) once the link "
        "cannot be used."
    )
    expires_at: datetime
    usable: bool = strawberry.field(
        description="False once the link is used, replaced or expired, or the account is disabled."
    )
