from tortoise import fields
from tortoise.models import Model


class ThrottleCounter(Model):
    """A counter of attempts for one key (an HMAC of, say, practice + email or
    a client address), shared by every worker and host through the database."""

    key_hash = fields.CharField(max_length=64, primary_key=True)
    count = fields.IntField(default=0)
    # Attempts still allowed before a lockout: taken one at a time, up front,
    # by a conditional UPDATE, so parallel attempts cannot overrun it.
    remaining = fields.IntField(default=0)
    blocked_until = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "throttle_counter"
