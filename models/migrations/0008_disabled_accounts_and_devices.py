"""Disabled accounts (revoked portal access, disabled staff), when each
account last signed in, and each session's device.

`account.last_sign_in_at` is kept by a trigger on the session table: every
session started is a sign-in, and the sign-in itself writes nothing more."""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from models.audit import AuditAction

POSTGRES_TRIGGER = (
    "CREATE OR REPLACE FUNCTION account_signed_in() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN UPDATE account SET last_sign_in_at = NEW.created_at WHERE id = NEW.account_id;"
    " RETURN NULL; END $$;"
    " CREATE TRIGGER session_started AFTER INSERT ON session"
    " FOR EACH ROW EXECUTE FUNCTION account_signed_in()"
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS session_started AFTER INSERT ON session BEGIN"
    " UPDATE account SET last_sign_in_at = NEW.created_at WHERE id = NEW.account_id; END"
)


async def create_trigger(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    await client.execute_script(POSTGRES_TRIGGER if postgres else SQLITE_TRIGGER)


async def drop_trigger(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script("DROP TRIGGER IF EXISTS session_started ON session")
        await client.execute_script("DROP FUNCTION IF EXISTS account_signed_in()")
    else:
        await client.execute_script("DROP TRIGGER IF EXISTS session_started")


class Migration(migrations.Migration):
    dependencies = [("models", "0007_short_search_index")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Account",
            name="disabled_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Account",
            name="last_sign_in_at",
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
        ops.RunPython(create_trigger, drop_trigger),
    ]
