"""Who may read a field or run a mutation, declared on the field itself.

Signed out is `UNAUTHENTICATED`; signed in without the right is `FORBIDDEN`.
Object-level rules (own practice, own record) are asked of the Viewer, the one
place they are written down.
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from strawberry.permission import BasePermission

from graph.context import Info
from graph.errors import Forbidden, Unauthenticated
from models import AuditAction
from portal.services import audit
from portal.services.access import Viewer


def _viewer(info: Info) -> Viewer:
    viewer = info.context.viewer
    if viewer is None:
        raise Unauthenticated()
    return viewer


async def _deny(viewer: Viewer, source: Any) -> NoReturn:
    """Records the refusal in the audit trail, then refuses."""
    patient_id = getattr(source, "patient_id", None)
    await audit.record_for(
        viewer,
        AuditAction.PERMISSION_DENIED,
        patient_id if isinstance(patient_id, uuid.UUID) else None,
    )
    raise Forbidden()


class IsSignedIn(BasePermission):
    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        _viewer(info)
        return True


class IsStaff(BasePermission):
    """ADMIN or CLINICIAN."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = _viewer(info)
        if not viewer.is_staff:
            await _deny(viewer, source)
        return True


class IsAdmin(BasePermission):
    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = _viewer(info)
        if not viewer.is_admin:
            await _deny(viewer, source)
        return True


class IsAdminOfPatientPractice(BasePermission):
    """On a Patient's field: an ADMIN of that patient's practice."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = _viewer(info)
        if not (viewer.is_admin and viewer.belongs_to(source.practice_id)):
            await _deny(viewer, source)
        return True


class IsStaffOrSelf(BasePermission):
    """On a Patient's field: staff of that patient's practice, or the patient themself."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = _viewer(info)
        if not viewer.may_see_private_details(source.practice_id, source.id):
            await _deny(viewer, source)
        return True
