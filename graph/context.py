"""Per-request context: settings, the signed-in viewer and the DataLoaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader
from strawberry.types.nodes import SelectedField, Selection

from portal.db import Row
from portal.services.access import Viewer
from portal.services.portal_access import PortalState, portal_states
from portal.services.practices import practices_by_id
from portal.settings import Settings


@dataclass
class Loaders:
    """Batch loads per request, so a list costs a constant number of queries."""

    practice: DataLoader[uuid.UUID, Row] = field(
        default_factory=lambda: DataLoader(load_fn=practices_by_id)
    )
    portal_state: DataLoader[uuid.UUID, PortalState] = field(
        default_factory=lambda: DataLoader(load_fn=portal_states)
    )


@dataclass
class Context:
    request: Request
    response: Response
    settings: Settings
    viewer: Viewer | None
    loaders: Loaders = field(default_factory=Loaders)


Info = strawberry.Info[Context, None]


def is_selected(info: Info, name: str) -> bool:
    """Whether the field being resolved selects `name` (a GraphQL field name)
    directly or through fragments (skipped ones included: it errs towards
    fetching what is not shown, never the other way)."""

    def among(selections: list[Selection]) -> bool:
        return any(
            selection.name == name
            if isinstance(selection, SelectedField)
            else among(selection.selections)
            for selection in selections
        )

    return any(among(field.selections) for field in info.selected_fields)
