"""A tamper-evident audit trail and what retention and readiness need.

- Each audit row gets `row_mac` (an HMAC of its content, written with it) and,
  once sealed into its practice's hash chain, `seq` and `chain_mac`;
  `audit_chain` holds each chain's head and where it starts after pruning.
- Triggers (PostgreSQL and SQLite) refuse any UPDATE of an audit row but
  sealing (setting `seq` and `chain_mac` once, nothing else), and any DELETE
  or TRUNCATE unless an `audit_prune_permit` row is present, which pruning
  writes and removes inside its own transaction.
- Rows written before this migration are marked `row_mac = ''` (no MAC was
  written with them) and sealed first, oldest first.
- `worker_heartbeat`: when each mail worker last completed a round."""

from typing import Any

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

CONTENT = (
    "id",
    "practice_id",
    "account_id",
    "role",
    "action",
    "patient_id",
    "occurred_at",
    "client_ip",
    "user_agent",
    "row_mac",
)

# Built from the column names above only.
POSTGRES_GUARD = """
CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.chain_mac IS NULL AND NEW.chain_mac IS NOT NULL AND NEW.seq IS NOT NULL
            AND ({old}) IS NOT DISTINCT FROM ({new}) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_event rows cannot be changed' USING ERRCODE = '42501';
    END IF;
    IF EXISTS (SELECT 1 FROM audit_prune_permit) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NULL END;
    END IF;
    RAISE EXCEPTION 'audit_event rows are removed only by retention pruning'
        USING ERRCODE = '42501';
END
$$;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_guard();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_guard();
""".format(old=", ".join(f"OLD.{c}" for c in CONTENT), new=", ".join(f"NEW.{c}" for c in CONTENT))  # noqa: S608

SQLITE_GUARD = [
    "CREATE TRIGGER audit_event_append_only BEFORE UPDATE ON audit_event"
    " WHEN NOT (OLD.chain_mac IS NULL AND NEW.chain_mac IS NOT NULL AND NEW.seq IS NOT NULL"
    f" AND {' AND '.join(f'NEW.{c} IS OLD.{c}' for c in CONTENT)})"
    " BEGIN SELECT RAISE(ABORT, 'audit_event rows cannot be changed'); END",
    "CREATE TRIGGER audit_event_prune_only BEFORE DELETE ON audit_event"
    " WHEN NOT EXISTS (SELECT 1 FROM audit_prune_permit)"
    " BEGIN SELECT RAISE(ABORT, 'audit_event rows are removed only by retention pruning'); END",
]


async def guard_the_trail(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    # Rows from before the chain: no MAC was written with them.
    await client.execute_script("UPDATE audit_event SET row_mac = '' WHERE row_mac IS NULL")
    # What the sealer looks for: rows not yet in a chain.
    await client.execute_script(
        "CREATE INDEX IF NOT EXISTS audit_event_unsealed ON audit_event (practice_id, occurred_at)"
        " WHERE chain_mac IS NULL"
    )
    if client.capabilities.dialect == "postgres":
        await client.execute_script(POSTGRES_GUARD)
    else:
        for statement in SQLITE_GUARD:
            await client.execute_script(statement)


async def unguard_the_trail(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(
            "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event;"
            " DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event;"
            " DROP FUNCTION IF EXISTS audit_event_guard()"
        )
    else:
        await client.execute_script("DROP TRIGGER IF EXISTS audit_event_append_only")
        await client.execute_script("DROP TRIGGER IF EXISTS audit_event_prune_only")
    await client.execute_script("DROP INDEX IF EXISTS audit_event_unsealed")


class Migration(migrations.Migration):
    dependencies = [("models", "0012_short_search_counts")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AuditChain",
            fields=[
                (
                    "chain",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=36),
                ),
                ("last_seq", fields.BigIntField()),
                ("last_mac", fields.CharField(max_length=64)),
                ("origin_seq", fields.BigIntField()),
                ("origin_mac", fields.CharField(max_length=64)),
                ("head_mac", fields.CharField(max_length=64)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "audit_chain",
                "app": "models",
                "pk_attr": "chain",
                "table_description": "The head of one practice's chain of audit rows (`chain` is the practice",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AuditPrunePermit",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("granted_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "audit_prune_permit",
                "app": "models",
                "pk_attr": "id",
                "table_description": "Present only inside a pruning transaction (written and removed in it):",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                (
                    "worker_id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=100),
                ),
                ("beat_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "worker_heartbeat",
                "app": "models",
                "pk_attr": "worker_id",
                "table_description": "When each mail delivery worker last completed a round, in any process",
            },
            bases=["Model"],
        ),
        ops.AlterModelOptions(
            name="AuditEvent",
            options={
                "table": "audit_event",
                "app": "models",
                "indexes": [
                    Index(fields=["practice_id", "occurred_at"]),
                    Index(fields=["practice_id", "patient_id", "occurred_at"]),
                    Index(fields=["practice_id", "seq"]),
                ],
                "pk_attr": "id",
                "table_description": "Who did what, to which patient, when, from where. Append-only: a",
            },
        ),
        ops.AddField(
            model_name="AuditEvent",
            name="chain_mac",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="AuditEvent",
            name="row_mac",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="AuditEvent",
            name="seq",
            field=fields.BigIntField(null=True),
        ),
        ops.AddIndex(
            model_name="AuditEvent",
            index=Index(fields=["practice_id", "seq"]),
        ),
        ops.RunPython(guard_the_trail, unguard_the_trail),
    ]
