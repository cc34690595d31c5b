"""Disabled accounts (revoked portal access, disabled staff), and each
session's device."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from models.audit import AuditAction


class Migration(migrations.Migration):
    dependencies = [("models", "0007_short_search_index")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Account",
            name="disabled_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AlterField(
            model_name="AuditEvent",
            name="action",
            field=fields.CharEnumField(
                description="LOGIN_SUCCEEDED: LOGIN_SUCCEEDED\nLOGIN_FAILED: LOGIN_FAILED\nLOGIN_THROTTLED: LOGIN_THROTTLED\nLOGOUT: LOGOUT\nPATIENT_CREATED: PATIENT_CREATED\nPATIENT_UPDATED: PATIENT_UPDATED\nINVITATION_SENT: INVITATION_SENT\nINVITATION_CANCELLED: INVITATION_CANCELLED\nACCOUNT_CREATED: ACCOUNT_CREATED\nCODE_REQUESTED: CODE_REQUESTED\nCODE_VERIFIED: CODE_VERIFIED\nCODE_FAILED: CODE_FAILED\nPASSWORD_RESET_BY_CODE: PASSWORD_RESET_BY_CODE\nPASSWORD_RESET_BY_LINK: PASSWORD_RESET_BY_LINK\nRESET_LINK_GENERATED: RESET_LINK_GENERATED\nPASSWORD_CHANGED: PASSWORD_CHANGED\nPERMISSION_DENIED: PERMISSION_DENIED\nLOGIN_DISABLED: LOGIN_DISABLED\nPORTAL_ACCESS_REVOKED: PORTAL_ACCESS_REVOKED\nPORTAL_ACCESS_RESTORED: PORTAL_ACCESS_RESTORED\nSESSION_ENDED: SESSION_ENDED\nOTHER_SESSIONS_ENDED: OTHER_SESSIONS_ENDED",
                enum_type=AuditAction,
                max_length=32,
            ),
        ),
        ops.AddField(
            model_name="Session",
            name="device",
            field=fields.CharField(null=True, max_length=100),
        ),
    ]
