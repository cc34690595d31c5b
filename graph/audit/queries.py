from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry

from graph.audit.types import AuditEvent, AuditEventConnection, AuditEventEdge
from graph.context import Info
from graph.errors import BadUserInput
from graph.execution.planner import FieldPlan
from graph.execution.specs import Request
from graph.patients.types import PageInfo
from portal.services import audit
from portal.services.errors import BadInput


async def audit_events(
    info: Info,
    patient_id: strawberry.ID | None = None,
    first: int = 25,
    after: str | None = None,
) -> AuditEventConnection | None:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        page = await audit.list_events(
            info.context.viewer, patient_id=patient_id, first=first, after=after
        )
    except BadInput as bad:
        raise BadUserInput(str(bad)) from None
    edges = [
        AuditEventEdge(cursor=audit.encode_cursor(e["id"]), node=AuditEvent.from_row(e))
        for e in page.events
    ]
    return AuditEventConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
        ),
    )


async def fetch_audit_events(
    request: Request, args: Mapping[str, Any], selection: FieldPlan
) -> Any:
    assert request.viewer is not None  # the plan has decided IsAdmin
    return await audit.list_events(
        request.viewer,
        patient_id=args.get("patientId"),
        first=args["first"],
        after=args.get("after"),
        reader=request.reader,
    )
