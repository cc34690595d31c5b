from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.account import Account


class MfaRecoveryCode(Model):
    """One of the ten single-use codes given when two-step verification is
    turned on. Only its HMAC is kept."""

    id = fields.UUIDField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="mfa_recovery_codes", on_delete=fields.CASCADE
    )
    account_id: uuid.UUID
    code_hash = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "mfa_recovery_code"
        indexes = (("account_id", "code_hash"),)


class MfaChallenge(Model):
    """The second step of a sign-in whose password was right: single use,
    five minutes, bound to the account. Only an HMAC of its token is kept."""

    id = fields.UUIDField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="mfa_challenges", on_delete=fields.CASCADE
    )
    account_id: uuid.UUID
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    # Wrong codes offered; at the limit the challenge is dead.
    failures = fields.IntField(default=0)

    class Meta:
        table = "mfa_challenge"
