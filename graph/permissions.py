"""Who may read a field or run a mutation, declared on the field itself.

Signed out is `UNAUTHENTICATED`; signed in without the right is `FORBIDDEN`.
Object-level rules (own practice, own record) are asked of the Viewer, the one
place they are written down.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NoReturn

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


class FieldPermission(BasePermission):
    """A rule decided from the signed-in viewer and, for fields of an object,
    a few of its source's attributes (`inputs`). The standard executor asks
    per field; compiled plans ask `allows_page` once for a page of sources."""

    inputs: ClassVar[tuple[str, ...]] = ()

    def allows(self, viewer: Viewer, *inputs: Any) -> bool:
        raise NotImplementedError

    def allows_page(self, viewer: Viewer, column: Callable[[str], Iterable[Any]]) -> bool:
        """For a page of sources: `column(name)` gives that input of every source."""
        columns = [column(name) for name in self.inputs]
        # A page holds few distinct inputs (one practice, most often): each
        # is decided once.
        distinct = set(zip(*columns, strict=True)) if columns else {()}
        return all(self.allows(viewer, *(str(value) for value in inputs)) for inputs in distinct)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = _viewer(info)
        if not self.allows(viewer, *(getattr(source, name) for name in self.inputs)):
            await _deny(viewer, source)
        return True


class IsSignedIn(FieldPermission):
    def allows(self, viewer: Viewer, *inputs: Any) -> bool:
        return True


class IsStaff(FieldPermission):
    """ADMIN or CLINICIAN."""

    def allows(self, viewer: Viewer, *inputs: Any) -> bool:
        return viewer.is_staff


class IsAdmin(FieldPermission):
    def allows(self, viewer: Viewer, *inputs: Any) -> bool:
        return viewer.is_admin


class IsAdminOfPatientPractice(FieldPermission):
    """On a Patient's field: an ADMIN of that patient's practice."""

    inputs = ("practice_id",)

    def allows(self, viewer: Viewer, *inputs: Any) -> bool:
        (practice_id,) = inputs
        return viewer.is_admin and viewer.belongs_to(practice_id)


class IsStaffOrSelf(FieldPermission):
    """On a Patient's field: staff of that patient's practice, or the patient themself."""

    inputs = ("practice_id", "id")

    def allows(self, viewer: Viewer, *inputs: Any) -> bool:
        practice_id, patient_id = inputs
        return viewer.may_see_private_details(practice_id, patient_id)

    def allows_page(self, viewer: Viewer, column: Callable[[str], Iterable[Any]]) -> bool:
        if not viewer.is_staff:
            return super().allows_page(viewer, column)
        # Staff see every patient of their practice: one question per practice.
        return all(viewer.belongs_to(practice) for practice in set(column("practice_id")))
