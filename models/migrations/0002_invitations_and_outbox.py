from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.outbox import OutboxStatus


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Invitation",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "practice",
                    fields.ForeignKeyField(
                        "models.Practice",
                        source_field="practice_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="invitations",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "patient",
                    fields.ForeignKeyField(
                        "models.Patient",
                        source_field="patient_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="invitations",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("sent_to", fields.CharField(max_length=254)),
                (
                    "sent_by",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="sent_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="invitations_sent",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "invitation",
                "app": "models",
                "indexes": [Index(fields=["patient_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "A sign-up link sent to a patient. Only an HMAC of its token is kept.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="OutboxMessage",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("to_address", fields.CharField(max_length=254)),
                ("subject", fields.CharField(max_length=200)),
                ("text_body", fields.TextField(unique=False)),
                ("html_body", fields.TextField(unique=False)),
                ("kind", fields.CharField(max_length=40)),
                (
                    "status",
                    fields.CharEnumField(
                        default=OutboxStatus.PENDING,
                        description="PENDING: PENDING\nSENT: SENT\nFAILED: FAILED",
                        enum_type=OutboxStatus,
                        max_length=8,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("next_attempt_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("leased_by", fields.CharField(null=True, max_length=64)),
                (
                    "leased_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_error", fields.CharField(null=True, max_length=200)),
            ],
            options={
                "table": "outbox_message",
                "app": "models",
                "indexes": [Index(fields=["status", "next_attempt_at"])],
                "pk_attr": "id",
                "table_description": "An email written in the same transaction as the change that caused it,",
            },
            bases=["Model"],
        ),
    ]
