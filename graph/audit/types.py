from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any

import strawberry

from graph.auth.types import Role
from graph.execution.specs import SAME_SOURCE, Compute, compiled
from graph.patients.types import PageInfo
from models import AuditAction as ModelAuditAction
from portal.services.audit import encode_cursor

AuditAction = strawberry.enum(ModelAuditAction, name="AuditAction", description="What happened.")


@strawberry.type(
    description="One entry of the audit trail. Never holds passwords, tokens, codes or health "
    "details."
)
class AuditEvent:
    id: strawberry.ID
    action: AuditAction  # type: ignore[valid-type]
    occurred_at: datetime
    actor_account_id: strawberry.ID | None = strawberry.field(
        description="The account that acted, or, when nobody was signed in (a sign-in, a "
        "reset), the account concerned; null when there is none.",
        metadata=compiled(Compute(itemgetter("account_id"), needs=("account_id",))),
    )
    actor_role: Role | None = strawberry.field(
        metadata=compiled(Compute(itemgetter("role"), needs=("role",)))
    )
    actor_email: str | None = strawberry.field(
        description="The email address of the account that acted (or concerned), as it is "
        "now; null when there is none.",
        metadata=compiled(Compute(itemgetter("actor_email"), needs=("actor_email",))),
    )
    patient_id: strawberry.ID | None = strawberry.field(description="The patient concerned.")
    patient_name: str | None = strawberry.field(
        description="The concerned patient's first and last name, as they are now; null when "
        "no patient is concerned.",
        metadata=compiled(Compute(itemgetter("patient_name"), needs=("patient_name",))),
    )
    client_ip: str | None
    user_agent: str | None

    @classmethod
    def from_row(cls, event: Mapping[str, Any]) -> AuditEvent:
        return cls(
            id=strawberry.ID(str(event["id"])),
            action=ModelAuditAction(event["action"]),
            occurred_at=event["occurred_at"],
            actor_account_id=_id_or_none(event["account_id"]),
            actor_role=Role(event["role"]) if event["role"] else None,
            actor_email=event["actor_email"],
            patient_id=_id_or_none(event["patient_id"]),
            patient_name=event["patient_name"],
            client_ip=event["client_ip"],
            user_agent=event["user_agent"],
        )


def _id_or_none(value: object) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value else None


@strawberry.type
class AuditEventEdge:
    cursor: str = strawberry.field(
        metadata=compiled(Compute(lambda row: encode_cursor(row["id"]), needs=("id",)))
    )
    node: AuditEvent = strawberry.field(metadata=compiled(SAME_SOURCE))


@strawberry.type
class AuditEventConnection:
    edges: list[AuditEventEdge] = strawberry.field(metadata=compiled(Compute(attrgetter("events"))))
    page_info: PageInfo = strawberry.field(metadata=compiled(SAME_SOURCE))
