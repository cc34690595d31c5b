"""Who may read a field or run a mutation, declared on the field itself.

Signed out is `UNAUTHENTICATED`; signed in without the right is `FORBIDDEN`.
Object-level rules (own practice, own record) are asked of the Viewer, the one
place they are written down.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from graph.context import Info
from graph.errors import Forbidden, Unauthenticated
from portal.services.access import Viewer


def _viewer(info: Info) -> Viewer:
    viewer = info.context.viewer
    if viewer is None:
        raise Unauthenticated()
    return viewer


class IsSignedIn(BasePermission):
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        _viewer(info)
        return True


class IsStaff(BasePermission):
    """ADMIN or CLINICIAN."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not _viewer(info).is_staff:
            raise Forbidden()
        return True


class IsAdmin(BasePermission):
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not _viewer(info).is_admin:
            raise Forbidden()
        return True


class IsAdminOfPatientPractice(BasePermission):
    """On a Patient's field: an ADMIN of that patient's practice."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = _viewer(info)
        if not (viewer.is_admin and viewer.belongs_to(source.practice_id)):
            raise Forbidden()
        return True


class IsStaffOrSelf(BasePermission):
    """On a Patient's field: staff of that patient's practice, or the patient themself."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not _viewer(info).may_see_private_details(source.practice_id, source.id):
            raise Forbidden()
        return True
