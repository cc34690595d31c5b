"""An index of each account's sessions: listed, ended together, and the newest
one's time is when the account last signed in."""

from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0010_two_step_verification")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="Session",
            index=Index(fields=["account_id", "created_at"]),
        ),
    ]
