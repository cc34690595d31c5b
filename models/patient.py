from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.practice import Practice


class Patient(Model):
    """A patient (client) profile kept by a practice."""

    id = fields.UUIDField(primary_key=True)
    practice: fields.ForeignKeyRelation[Practice] = fields.ForeignKeyField(
        "models.Practice", related_name="patients", on_delete=fields.RESTRICT
    )
    practice_id: uuid.UUID
    first_name = fields.CharField(max_length=100)
    last_name = fields.CharField(max_length=100)
    # Case-folded copies of the names: the list's sort order and its keyset
    # pagination compare these, so case never decides the order (beyond case,
    # each database's collation does).
    first_name_key = fields.CharField(max_length=400)
    last_name_key = fields.CharField(max_length=400)
    date_of_birth = fields.DateField(null=True)
    email = fields.CharField(max_length=254, null=True)
    phone = fields.CharField(max_length=40, null=True)
    # The phone number's digits alone, so "+1 (555) 010" finds "1555010".
    phone_digits = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "patient"
        indexes = (("practice_id", "last_name_key", "first_name_key", "id"),)
