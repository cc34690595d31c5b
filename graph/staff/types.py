from __future__ import annotations

from datetime import datetime
from operator import attrgetter

import strawberry

from graph.auth.types import AccountType, Role
from graph.execution.specs import SAME_SOURCE, Compute, compiled
from graph.patients.types import PageInfo
from portal.services.staff import encode_cursor

# Compiled plans read the page's fields from the service's page object, and
# each edge from its row.


@strawberry.type
class AccountEdge:
    cursor: str = strawberry.field(
        metadata=compiled(Compute(lambda row: encode_cursor(row["id"]), needs=("id",)))
    )
    node: AccountType = strawberry.field(metadata=compiled(SAME_SOURCE))


@strawberry.type
class AccountConnection:
    edges: list[AccountEdge] = strawberry.field(metadata=compiled(Compute(attrgetter("accounts"))))
    page_info: PageInfo = strawberry.field(metadata=compiled(SAME_SOURCE))
    total_count: int = strawberry.field(metadata=compiled(Compute(attrgetter("total_count"))))


@strawberry.type(
    description="A staff invitation that can still be used: no account has been created "
    "with it, no newer one replaced it, and it has not expired."
)
class PendingStaffInvitation:
    email: str
    role: Role
    invited_at: datetime = strawberry.field(description="When the invitation was sent.")
    expires_at: datetime = strawberry.field(description="Until when its link can be used.")
