from tortoise import fields
from tortoise.models import Model


class Practice(Model):
    """A therapy practice: the tenant every other row belongs to."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=200)
    slug = fields.CharField(max_length=63, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Whether every ADMIN and CLINICIAN must use two-step verification.
    staff_mfa_required = fields.BooleanField(default=False, db_default=False)

    class Meta:
        table = "practice"
