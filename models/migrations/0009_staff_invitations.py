"""Invitations for new staff: an invitation may have no patient, and says the
role of the account it creates."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.account import Role
from models.audit import AuditAction


class Migration(migrations.Migration):
    dependencies = [("models", "0008_disabled_accounts_and_devices")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="AuditEvent",
            name="action",
            field=fields.CharEnumField(
                description="LOGIN_SUCCEEDED: LOGIN_SUCCEEDED\nLOGIN_FAILED: LOGIN_FAILED\nLOGIN_THROTTLED: LOGIN_THROTTLED\nLOGOUT: LOGOUT\nPATIENT_CREATED: PATIENT_CREATED\nPATIENT_UPDATED: PATIENT_UPDATED\nINVITATION_SENT: INVITATION_SENT\nINVITATION_CANCELLED: INVITATION_CANCELLED\nACCOUNT_CREATED: ACCOUNT_CREATED\nCODE_REQUESTED: CODE_REQUESTED\nCODE_VERIFIED: CODE_VERIFIED\nCODE_FAILED: CODE_FAILED\nPASSWORD_RESET_BY_CODE: PASSWORD_RESET_BY_CODE\nPASSWORD_RESET_BY_LINK: PASSWORD_RESET_BY_LINK\nRESET_LINK_GENERATED: RESET_LINK_GENERATED\nPASSWORD_CHANGED: PASSWORD_CHANGED\nPERMISSION_DENIED: PERMISSION_DENIED\nLOGIN_DISABLED: LOGIN_DISABLED\nPORTAL_ACCESS_REVOKED: PORTAL_ACCESS_REVOKED\nPORTAL_ACCESS_RESTORED: PORTAL_ACCESS_RESTORED\nSESSION_ENDED: SESSION_ENDED\nOTHER_SESSIONS_ENDED: OTHER_SESSIONS_ENDED\nSTAFF_INVITED: STAFF_INVITED\nACCOUNT_DISABLED: ACCOUNT_DISABLED\nACCOUNT_ENABLED: ACCOUNT_ENABLED",
                enum_type=AuditAction,
                max_length=32,
            ),
        ),
        ops.AlterModelOptions(
            name="Invitation",
            options={
                "table": "invitation",
                "app": "models",
                "indexes": [Index(fields=["patient_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "A sign-up link sent to a patient, or to a new member of staff (no",
            },
        ),
        ops.AlterField(
            model_name="Invitation",
            name="patient",
            field=fields.ForeignKeyField(
                "models.Patient",
                source_field="patient_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="invitations",
                on_delete=OnDelete.CASCADE,
            ),
        ),
        ops.AddField(
            model_name="Invitation",
            name="role",
            # A database default: existing invitations are all patients'.
            field=fields.CharEnumField(
                default=Role.PATIENT,
                db_default=Role.PATIENT,
                description="ADMIN: ADMIN\nCLINICIAN: CLINICIAN\nPATIENT: PATIENT",
                enum_type=Role,
                max_length=16,
            ),
        ),
    ]
