from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0004_throttling_and_audit")]

    initial = False

    operations = [
        ops.AddField(
            model_name="OutboxMessage",
            name="discard_after",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="ThrottleCounter",
            name="remaining",
            field=fields.IntField(default=0),
        ),
    ]
