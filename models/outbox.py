from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class OutboxStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class OutboxMessage(Model):
    """An email written in the same transaction as the change that caused it,
    delivered later by a worker. Its content is erased once it is settled."""

    id = fields.UUIDField(primary_key=True)
    to_address = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=200)
    text_body = fields.TextField()
    html_body = fields.TextField()
    kind = fields.CharField(max_length=40)
    status = fields.CharEnumField(OutboxStatus, max_length=8, default=OutboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    created_at = fields.DatetimeField()
    next_attempt_at = fields.DatetimeField()
    # Past this moment the message is worthless (a code that has expired) and
    # is given up instead of sent late.
    discard_after = fields.DatetimeField(null=True)
    leased_by = fields.CharField(max_length=64, null=True)
    leased_until = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=200, null=True)

    class Meta:
        table = "outbox_message"
        indexes = (("status", "next_attempt_at"),)
