from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import strawberry

from graph.context import Info, is_selected
from graph.errors import BadUserInput
from graph.execution.planner import FieldPlan, rendering
from graph.execution.specs import Request
from graph.patients.types import PageInfo, PatientConnection, PatientEdge, PatientType
from portal.db import Rendering
from portal.services import patients as service
from portal.services.access import find_visible_patient, parse_id
from portal.services.errors import BadInput


async def patients(
    info: Info, search: str | None = None, first: int = 25, after: str | None = None
) -> PatientConnection:
    assert info.context.viewer is not None  # guaranteed by IsStaff
    try:
        page = await service.list_patients(
            info.context.viewer,
            search=search,
            first=first,
            after=after,
            count=is_selected(info, "totalCount"),
        )
    except BadInput as bad:
        raise BadUserInput(str(bad)) from None
    assert isinstance(page.patients, list)  # rows: nothing here asked for a written page
    edges = [
        PatientEdge(cursor=service.encode_cursor(p["id"]), node=PatientType.from_row(p))
        for p in page.patients
    ]
    return PatientConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
        ),
        # Not counted when not selected, and then never read.
        total_count=page.total_count if page.total_count is not None else 0,
    )


async def patient(info: Info, id: strawberry.ID) -> PatientType | None:
    viewer = info.context.viewer
    if viewer is None:
        return None
    found = await find_visible_patient(viewer, id)
    return PatientType.from_model(found) if found is not None else None


# --- compiled plans (graph.execution): the same services, the columns the plan reads


async def fetch_patients(request: Request, args: Mapping[str, Any], selection: FieldPlan) -> Any:
    assert request.viewer is not None  # the plan has decided IsStaff
    columns, count, render, listing = page_asked(selection)
    return await service.list_patients(
        request.viewer,
        search=args.get("search"),
        first=args["first"],
        after=args.get("after"),
        columns=columns,
        count=count,
        render=render,
        listing=listing,
        reader=request.reader,
    )


@lru_cache(maxsize=1024)
def page_asked(
    selection: FieldPlan,
) -> tuple[frozenset[str], bool, tuple[str, Rendering] | None, service.Listing | None]:
    """What a plan's selection asks of a page (`list_patients`' columns,
    count, render and listing), worked out once per plan."""
    node = selection.child("edges", "node")
    edges = selection.child("edges")
    written = rendering(edges)
    listing = None
    if edges is not None and edges.object is not None and written is not None:
        # The whole list written by the database (PostgreSQL), when it can.
        inputs = {name for p in edges.object.rendered_permissions() for name in p.inputs}
        listing = service.Listing(*written, inputs=tuple(sorted(inputs)))
    return (
        # The id for cursors; the rest the database writes as JSON when it can.
        frozenset({"id", *node.keys_beside_rendering()} if node is not None else {"id"}),
        selection.child("totalCount") is not None,
        rendering(node),
        listing,
    )


async def fetch_patient(request: Request, args: Mapping[str, Any], selection: FieldPlan) -> Any:
    viewer = request.viewer
    parsed = parse_id(args["id"])
    if viewer is None or parsed is None:
        return None
    [row] = await service.visible_patients_by_id(
        viewer,
        [parsed],
        {"id", *selection.keys_beside_rendering()},
        reader=request.reader,
        render=rendering(selection),
    )
    return row
