from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.account import Role


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Practice",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=200)),
                ("slug", fields.CharField(unique=True, max_length=63)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "practice",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A therapy practice: the tenant every other row belongs to.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Patient",
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
                        related_name="patients",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("first_name", fields.CharField(max_length=100)),
                ("last_name", fields.CharField(max_length=100)),
                ("first_name_key", fields.CharField(max_length=400)),
                ("last_name_key", fields.CharField(max_length=400)),
                ("date_of_birth", fields.DateField(null=True)),
                ("email", fields.CharField(null=True, max_length=254)),
                ("phone", fields.CharField(null=True, max_length=40)),
                ("phone_digits", fields.CharField(null=True, max_length=40)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "patient",
                "app": "models",
                "indexes": [Index(fields=["practice_id", "last_name_key", "first_name_key", "id"])],
                "pk_attr": "id",
                "table_description": "A patient (client) profile kept by a practice.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Account",
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
                        related_name="accounts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("email", fields.CharField(max_length=254)),
                (
                    "role",
                    fields.CharEnumField(
                        description="ADMIN: ADMIN\nCLINICIAN: CLINICIAN\nPATIENT: PATIENT",
                        enum_type=Role,
                        max_length=16,
                    ),
                ),
                ("password_hash", fields.CharField(max_length=255)),
                (
                    "patient",
                    fields.OneToOneField(
                        "models.Patient",
                        source_field="patient_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="account",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("password_changed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "account",
                "app": "models",
                "unique_together": (("practice", "email"),),
                "pk_attr": "id",
                "table_description": "Someone who signs in: staff of a practice, or a patient of it.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Session",
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
                        related_name="sessions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("last_seen_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("ended_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "session",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A signed-in session. Only an HMAC of its bearer token is kept.",
            },
            bases=["Model"],
        ),
    ]
