"""Two-step verification: sealed TOTP secrets on accounts, recovery codes,
sign-in challenges, and the practice policy for staff."""

from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.audit import AuditAction


class Migration(migrations.Migration):
    dependencies = [("models", "0009_staff_invitations")]

    initial = False

    operations = [
        ops.CreateModel(
            name="MfaChallenge",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="mfa_challenges",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("failures", fields.IntField(default=0)),
            ],
            options={
                "table": "mfa_challenge",
                "app": "models",
                "pk_attr": "id",
                "table_description": "The second step of a sign-in whose password was right: single use,",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MfaRecoveryCode",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="mfa_recovery_codes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("code_hash", fields.CharField(max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "mfa_recovery_code",
                "app": "models",
                "indexes": [Index(fields=["account_id", "code_hash"])],
                "pk_attr": "id",
                "table_description": "One of the ten single-use codes given when two-step verification is",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Account",
            name="mfa_enabled_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Account",
            name="mfa_last_step",
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name="Account",
            name="mfa_pending_secret",
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name="Account",
            name="mfa_secret",
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AlterField(
            model_name="AuditEvent",
            name="action",
            field=fields.CharEnumField(
                description="LOGIN_SUCCEEDED: LOGIN_SUCCEEDED\nLOGIN_FAILED: LOGIN_FAILED\nLOGIN_THROTTLED: LOGIN_THROTTLED\nLOGOUT: LOGOUT\nPATIENT_CREATED: PATIENT_CREATED\nPATIENT_UPDATED: PATIENT_UPDATED\nINVITATION_SENT: INVITATION_SENT\nINVITATION_CANCELLED: INVITATION_CANCELLED\nACCOUNT_CREATED: ACCOUNT_CREATED\nCODE_REQUESTED: CODE_REQUESTED\nCODE_VERIFIED: CODE_VERIFIED\nCODE_FAILED: CODE_FAILED\nPASSWORD_RESET_BY_CODE: PASSWORD_RESET_BY_CODE\nPASSWORD_RESET_BY_LINK: PASSWORD_RESET_BY_LINK\nRESET_LINK_GENERATED: RESET_LINK_GENERATED\nPASSWORD_CHANGED: PASSWORD_CHANGED\nPERMISSION_DENIED: PERMISSION_DENIED\nLOGIN_DISABLED: LOGIN_DISABLED\nPORTAL_ACCESS_REVOKED: PORTAL_ACCESS_REVOKED\nPORTAL_ACCESS_RESTORED: PORTAL_ACCESS_RESTORED\nSESSION_ENDED: SESSION_ENDED\nOTHER_SESSIONS_ENDED: OTHER_SESSIONS_ENDED\nSTAFF_INVITED: STAFF_INVITED\nACCOUNT_DISABLED: ACCOUNT_DISABLED\nACCOUNT_ENABLED: ACCOUNT_ENABLED\nMFA_ENABLED: MFA_ENABLED\nMFA_FAILED: MFA_FAILED\nMFA_RECOVERY_CODE_USED: MFA_RECOVERY_CODE_USED\nMFA_DISABLED: MFA_DISABLED\nMFA_RESET: MFA_RESET\nMFA_POLICY_CHANGED: MFA_POLICY_CHANGED",
                enum_type=AuditAction,
                max_length=32,
            ),
        ),
        ops.AddField(
            model_name="Practice",
            name="staff_mfa_required",
            # A database default: existing practices get the column filled.
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
