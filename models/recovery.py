from __future__ import annotations

import uuid
from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.account import Account


class VerificationCode(Model):
    """A 6-digit code emailed for a self-service reset. Only its HMAC is kept."""

    id = fields.UUIDField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="verification_codes", on_delete=fields.CASCADE
    )
    account_id: uuid.UUID
    code_hash = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    # Every verification counts, right or wrong; at the limit the code is dead.
    attempts = fields.IntField(default=0)
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "verification_code"
        indexes = (("account_id", "created_at"),)


class ResetSource(StrEnum):
    CODE = "CODE"
    LINK = "LINK"


class ResetToken(Model):
    """Permission to set a new password once: earned with a verification code,
    or handed over by an admin as a link. Only an HMAC of the token is kept."""

    id = fields.UUIDField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="reset_tokens", on_delete=fields.CASCADE
    )
    account_id: uuid.UUID
    source = fields.CharEnumField(ResetSource, max_length=8)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="reset_links_made", null=True, on_delete=fields.SET_NULL
    )
    created_by_id: uuid.UUID | None
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "reset_token"
        indexes = (("account_id", "source"),)
