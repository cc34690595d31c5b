from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graph.context import Info
from graph.execution.planner import FieldPlan
from graph.execution.specs import Request
from portal.services import practices


async def practice_name(info: Info, slug: str) -> str | None:
    return await practices.display_name(slug)


async def fetch_practice_name(
    request: Request, args: Mapping[str, Any], selection: FieldPlan
) -> str | None:
    return await practices.display_name(args["slug"])
