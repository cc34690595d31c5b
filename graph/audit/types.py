from __future__ import annotations

from datetime import datetime

import strawberry

from graph.auth.types import Role
from graph.patients.types import PageInfo
from models import AuditAction as ModelAuditAction
from models import AuditEvent as ModelAuditEvent

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
        "reset), the account concerned; null when there is none."
    )
    actor_role: Role | None
    patient_id: strawberry.ID | None = strawberry.field(description="The patient concerned.")
    client_ip: str | None
    user_agent: str | None

    @classmethod
    def from_model(cls, event: ModelAuditEvent) -> AuditEvent:
        return cls(
            id=strawberry.ID(str(event.id)),
            action=event.action,
            occurred_at=event.occurred_at,
            actor_account_id=strawberry.ID(str(event.account_id)) if event.account_id else None,
            actor_role=Role(event.role.value) if event.role else None,
            patient_id=strawberry.ID(str(event.patient_id)) if event.patient_id else None,
            client_ip=event.client_ip,
            user_agent=event.user_agent,
        )


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo
