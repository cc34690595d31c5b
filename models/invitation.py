from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from models.account import Role

if TYPE_CHECKING:
    from models.account import Account
    from models.patient import Patient
    from models.practice import Practice


class Invitation(Model):
    """A sign-up link sent to a patient, or to a new member of staff (no
    patient; `role` ADMIN or CLINICIAN). Only an HMAC of its token is kept."""

    id = fields.UUIDField(primary_key=True)
    practice: fields.ForeignKeyRelation[Practice] = fields.ForeignKeyField(
        "models.Practice", related_name="invitations", on_delete=fields.RESTRICT
    )
    practice_id: uuid.UUID
    patient: fields.ForeignKeyNullableRelation[Patient] = fields.ForeignKeyField(
        "models.Patient", related_name="invitations", null=True, on_delete=fields.CASCADE
    )
    patient_id: uuid.UUID | None
    # The account's role: PATIENT for a patient's invitation.
    role = fields.CharEnumField(Role, max_length=16, default=Role.PATIENT, db_default=Role.PATIENT)
    token_hash = fields.CharField(max_length=64, unique=True)
    sent_to = fields.CharField(max_length=254)
    sent_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="invitations_sent", null=True, on_delete=fields.SET_NULL
    )
    sent_by_id: uuid.UUID | None
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    # Set when a newer invitation or an email change makes this one unusable.
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "invitation"
        indexes = (("patient_id", "created_at"),)
