from __future__ import annotations

import uuid
from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.patient import Patient
    from models.practice import Practice


class Role(StrEnum):
    ADMIN = "ADMIN"
    CLINICIAN = "CLINICIAN"
    PATIENT = "PATIENT"


class Account(Model):
    """Someone who signs in: staff of a practice, or a patient of it."""

    id = fields.UUIDField(primary_key=True)
    practice: fields.ForeignKeyRelation[Practice] = fields.ForeignKeyField(
        "models.Practice", related_name="accounts", on_delete=fields.RESTRICT
    )
    practice_id: uuid.UUID
    # Stored trimmed and lowercased, so uniqueness per practice ignores case.
    email = fields.CharField(max_length=254)
    role = fields.CharEnumField(Role, max_length=16)
    password_hash = fields.CharField(max_length=255)
    patient: fields.OneToOneNullableRelation[Patient] = fields.OneToOneField(
        "models.Patient", related_name="account", null=True, on_delete=fields.RESTRICT
    )
    patient_id: uuid.UUID | None
    created_at = fields.DatetimeField(auto_now_add=True)
    password_changed_at = fields.DatetimeField()
    # Set while an ADMIN has disabled the account (for a patient: revoked
    # their portal access); it cannot sign in or recover its password.
    disabled_at = fields.DatetimeField(null=True)
    # Two-step verification. The TOTP secret cannot be hashed (codes are
    # computed from it): it is sealed with AES-GCM (portal.services.mfa).
    mfa_secret = fields.CharField(max_length=200, null=True)
    mfa_enabled_at = fields.DatetimeField(null=True)
    # Begun, not yet confirmed with a code.
    mfa_pending_secret = fields.CharField(max_length=200, null=True)
    # The last TOTP time step accepted: never accepted again.
    mfa_last_step = fields.BigIntField(null=True)

    class Meta:
        table = "account"
        unique_together = (("practice", "email"),)
