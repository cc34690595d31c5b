"""Where each patient stands with the client portal."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from models import Account


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
    """The portal state of each patient, in order, with one query whatever the count."""
    accounts = await Account.filter(patient_id__in=list(patient_ids)).values(
        "patient_id", "created_at"
    )
    signed_up = {str(row["patient_id"]): row["created_at"] for row in accounts}
    return [
        PortalState(status=PortalStatus.SIGNED_UP, signed_up_at=signed_up[str(pid)])
        if str(pid) in signed_up
        else PortalState(status=PortalStatus.YET_TO_SIGN_UP)
        for pid in patient_ids
    ]
