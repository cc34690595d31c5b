"""The caller's own sessions: listed, and ended one by one or all but this one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry

from graph.context import Info
from graph.execution.planner import FieldPlan
from graph.execution.specs import Request
from portal.services import sessions
from portal.services.access import parse_id


@strawberry.type(
    name="Session",
    description="One signed-in device or browser of an account. Never carries the token.",
)
class SessionType:
    id: strawberry.ID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime = strawberry.field(description="When it ends if it stays unused.")
    device: str | None = strawberry.field(
        description="The browser or app and its system, from its User-Agent (e.g. 'Firefox on "
        "Windows'); null when unknown."
    )
    current: bool = strawberry.field(description="True for the session that makes this request.")


async def my_sessions(info: Info) -> list[SessionType]:
    viewer = info.context.viewer
    assert viewer is not None  # guaranteed by IsSignedIn
    return [
        SessionType(
            id=strawberry.ID(str(session.id)),
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            expires_at=session.expires_at,
            device=session.device,
            current=session.current,
        )
        for session in await sessions.open_sessions(viewer, info.context.settings)
    ]


async def fetch_my_sessions(
    request: Request, args: Mapping[str, Any], selection: FieldPlan
) -> list[sessions.OpenSession]:
    """`mySessions` for compiled plans: the services' sessions, read by attribute."""
    assert request.viewer is not None  # the plan has decided IsSignedIn
    return await sessions.open_sessions(request.viewer, request.settings, request.reader)


async def end_session(info: Info, id: strawberry.ID) -> bool:  # noqa: A002 - the API's name
    viewer = info.context.viewer
    assert viewer is not None  # guaranteed by IsSignedIn
    return await sessions.end_session(viewer, parse_id(id))


async def end_other_sessions(info: Info) -> int:
    viewer = info.context.viewer
    assert viewer is not None  # guaranteed by IsSignedIn
    return await sessions.end_other_sessions(viewer)
