from uuid import uuid4

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.account import Role
from models.audit import AuditAction


class Migration(migrations.Migration):
    dependencies = [("models", "0003_password_recovery")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AuditEvent",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("practice_id", fields.UUIDField(null=True)),
                ("account_id", fields.UUIDField(null=True)),
                (
                    "role",
                    fields.CharEnumField(
                        null=True,
                        description="ADMIN: ADMIN\nCLINICIAN: CLINICIAN\nPATIENT: PATIENT",
                        enum_type=Role,
                        max_length=16,
                    ),
                ),
                (
                    "action",
                    fields.CharEnumField(
                        description="LOGIN_SUCCEEDED: LOGIN_SUCCEEDED\nLOGIN_FAILED: LOGIN_FAILED\nLOGIN_THROTTLED: LOGIN_THROTTLED\nLOGOUT: LOGOUT\nPATIENT_CREATED: PATIENT_CREATED\nPATIENT_UPDATED: PATIENT_UPDATED\nINVITATION_SENT: INVITATION_SENT\nINVITATION_CANCELLED: INVITATION_CANCELLED\nACCOUNT_CREATED: ACCOUNT_CREATED\nCODE_REQUESTED: CODE_REQUESTED\nCODE_VERIFIED: CODE_VERIFIED\nCODE_FAILED: CODE_FAILED\nPASSWORD_RESET_BY_CODE: PASSWORD_RESET_BY_CODE\nPASSWORD_RESET_BY_LINK: PASSWORD_RESET_BY_LINK\nRESET_LINK_GENERATED: RESET_LINK_GENERATED\nPASSWORD_CHANGED: PASSWORD_CHANGED\nPERMISSION_DENIED: PERMISSION_DENIED",
                        enum_type=AuditAction,
                        max_length=32,
                    ),
                ),
                ("patient_id", fields.UUIDField(null=True)),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("client_ip", fields.CharField(null=True, max_length=45)),
                ("user_agent", fields.CharField(null=True, max_length=200)),
            ],
            options={
                "table": "audit_event",
                "app": "models",
                "indexes": [
                    Index(fields=["practice_id", "occurred_at"]),
                    Index(fields=["practice_id", "patient_id", "occurred_at"]),
                ],
                "pk_attr": "id",
                "table_description": "Who did what, to which patient, when, from where. Append-only: nothing",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ThrottleCounter",
            fields=[
                (
                    "key_hash",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("count", fields.IntField(default=0)),
                (
                    "blocked_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "throttle_counter",
                "app": "models",
                "pk_attr": "key_hash",
                "table_description": "A counter of attempts for one key (an HMAC of, say, practice + email or",
            },
            bases=["Model"],
        ),
    ]
