from __future__ import annotations

import strawberry

from graph.context import Info
from graph.errors import BadUserInput
from graph.patients.types import PageInfo, PatientConnection, PatientEdge, PatientType
from portal.services import patients as service
from portal.services.access import find_visible_patient
from portal.services.errors import BadInput


async def patients(
    info: Info, search: str | None = None, first: int = 25, after: str | None = None
) -> PatientConnection:
    assert info.context.viewer is not None  # guaranteed by IsStaff
    try:
        page = await service.list_patients(
            info.context.viewer, search=search, first=first, after=after
        )
    except BadInput as bad:
        raise BadUserInput(str(bad)) from None
    edges = [
        PatientEdge(cursor=service.encode_cursor(p), node=PatientType.from_model(p))
        for p in page.patients
    ]
    return PatientConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
        ),
        total_count=page.total_count,
    )


async def patient(info: Info, id: strawberry.ID) -> PatientType | None:
    viewer = info.context.viewer
    if viewer is None:
        return None
    found = await find_visible_patient(viewer, id)
    return PatientType.from_model(found) if found is not None else None
