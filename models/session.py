from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.account import Account


class Session(Model):
    """A signed-in session. Only an HMAC of its bearer token is kept."""

    id = fields.UUIDField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="sessions", on_delete=fields.CASCADE
    )
    account_id: uuid.UUID
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    # "Firefox on Windows": a summary of the User-Agent, never the header itself.
    device = fields.CharField(max_length=100, null=True)

    class Meta:
        table = "session"
        # An account's sessions: listed, ended together, the newest one's time.
        indexes = (("account_id", "created_at"),)
