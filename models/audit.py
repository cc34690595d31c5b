from __future__ import annotations

import uuid
from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.account import Role


class AuditAction(StrEnum):
    LOGIN_SUCCEEDED = "LOGIN_SUCCEEDED"
    LOGIN_FAILED = "LOGIN_FAILED"
    LOGIN_THROTTLED = "LOGIN_THROTTLED"
    LOGOUT = "LOGOUT"
    PATIENT_CREATED = "PATIENT_CREATED"
    PATIENT_UPDATED = "PATIENT_UPDATED"
    INVITATION_SENT = "INVITATION_SENT"
    INVITATION_CANCELLED = "INVITATION_CANCELLED"
    ACCOUNT_CREATED = "ACCOUNT_CREATED"
    CODE_REQUESTED = "CODE_REQUESTED"
    CODE_VERIFIED = "CODE_VERIFIED"
    CODE_FAILED = "CODE_FAILED"
    PASSWORD_RESET_BY_CODE = "PASSWORD_RESET_BY_CODE"
    PASSWORD_RESET_BY_LINK = "PASSWORD_RESET_BY_LINK"
    RESET_LINK_GENERATED = "RESET_LINK_GENERATED"
    PASSWORD_CHANGED = "PASSWORD_CHANGED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    LOGIN_DISABLED = "LOGIN_DISABLED"
    PORTAL_ACCESS_REVOKED = "PORTAL_ACCESS_REVOKED"
    PORTAL_ACCESS_RESTORED = "PORTAL_ACCESS_RESTORED"
    SESSION_ENDED = "SESSION_ENDED"
    OTHER_SESSIONS_ENDED = "OTHER_SESSIONS_ENDED"
    STAFF_INVITED = "STAFF_INVITED"
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    ACCOUNT_ENABLED = "ACCOUNT_ENABLED"
    MFA_ENABLED = "MFA_ENABLED"
    MFA_FAILED = "MFA_FAILED"
    MFA_RECOVERY_CODE_USED = "MFA_RECOVERY_CODE_USED"
    MFA_DISABLED = "MFA_DISABLED"
    MFA_RESET = "MFA_RESET"
    MFA_POLICY_CHANGED = "MFA_POLICY_CHANGED"


class AuditEvent(Model):
    """Who did what, to which patient, when, from where. Append-only: a
    trigger refuses every change but sealing (setting `seq` and `chain_mac`
    once) and every deletion but retention pruning. Never holds passwords,
    tokens, codes or health details.

    `row_mac` is an HMAC of the row's content written with it; sealing then
    places the row in its practice's hash chain: `seq` and `chain_mac`, an
    HMAC over the content and the previous row's `chain_mac`."""

    id = fields.UUIDField(primary_key=True)
    practice_id: uuid.UUID | None = fields.UUIDField(null=True)  # type: ignore[assignment]
    account_id: uuid.UUID | None = fields.UUIDField(null=True)  # type: ignore[assignment]
    role = fields.CharEnumField(Role, max_length=16, null=True)
    action = fields.CharEnumField(AuditAction, max_length=32)
    patient_id: uuid.UUID | None = fields.UUIDField(null=True)  # type: ignore[assignment]
    occurred_at = fields.DatetimeField()
    client_ip = fields.CharField(max_length=45, null=True)
    user_agent = fields.CharField(max_length=200, null=True)
    # Null only for rows written before the chain existed (migration 0013).
    row_mac = fields.CharField(max_length=64, null=True)
    # Set once, when the row is sealed into its practice's chain.
    seq = fields.BigIntField(null=True)
    chain_mac = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "audit_event"
        indexes = (
            ("practice_id", "occurred_at"),
            ("practice_id", "patient_id", "occurred_at"),
            ("practice_id", "seq"),
        )


class AuditChain(Model):
    """The head of one practice's chain of audit rows (`chain` is the practice
    id, or "-" for events of no practice): the last row sealed, and where the
    chain starts now that pruning may have removed its beginning. `head_mac`
    is an HMAC over the rest, so a head rolled back or edited is noticed."""

    chain = fields.CharField(max_length=36, primary_key=True)
    last_seq = fields.BigIntField()
    last_mac = fields.CharField(max_length=64)
    # The first row kept, and the chain_mac it follows (of the last row pruned).
    origin_seq = fields.BigIntField()
    origin_mac = fields.CharField(max_length=64)
    head_mac = fields.CharField(max_length=64)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "audit_chain"


class AuditPrunePermit(Model):
    """Present only inside a pruning transaction (written and removed in it):
    the audit trail's triggers allow a deletion while a row is here."""

    id = fields.IntField(primary_key=True)
    granted_at = fields.DatetimeField()

    class Meta:
        table = "audit_prune_permit"
