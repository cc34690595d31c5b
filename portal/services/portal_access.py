"""Where each patient stands with the client portal."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from models import Account, Invitation
from portal import clock
from portal.services.invitations import is_usable


class PortalStatus(StrEnum):
    YET_TO_SIGN_UP = "YET_TO_SIGN_UP"
    INITIATED = "INITIATED"
    SIGNED_UP = "SIGNED_UP"


@dataclass(frozen=True)
class PortalState:
    status: PortalStatus
    invited_at: datetime | None = None
    invitation_expires_at: datetime | None = None
    signed_up_at: datetime | None = None


async def portal_states(patient_ids: Sequence[uuid.UUID]) -> list[PortalState]:
    """The portal state of each patient, in order, with two queries whatever the count."""
    ids = list(patient_ids)
    accounts = await Account.filter(patient_id__in=ids).values("patient_id", "created_at")
    signed_up = {str(row["patient_id"]): row["created_at"] for row in accounts}
    latest: dict[str, Invitation] = {}
    for invitation in await Invitation.filter(patient_id__in=ids).order_by("created_at"):
        latest[str(invitation.patient_id)] = invitation
    now = clock.now()
    return [_state(signed_up.get(str(pid)), latest.get(str(pid)), now) for pid in ids]


def _state(
    signed_up_at: datetime | None, invitation: Invitation | None, now: datetime
) -> PortalState:
    invited_at = invitation.created_at if invitation else None
    expires_at = invitation.expires_at if invitation else None
    if signed_up_at is not None:
        status = PortalStatus.SIGNED_UP
    elif invitation is not None and is_usable(invitation, now):
        status = PortalStatus.INITIATED
    else:
        status = PortalStatus.YET_TO_SIGN_UP
    return PortalState(
        status=status,
        invited_at=invited_at,
        invitation_expires_at=expires_at,
        signed_up_at=signed_up_at,
    )
