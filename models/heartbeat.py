from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class WorkerHeartbeat(Model):
    """When each mail delivery worker last completed a round, in any process
    or host: `/health/ready` reads the freshest."""

    worker_id = fields.CharField(max_length=100, primary_key=True)
    beat_at = fields.DatetimeField()

    class Meta:
        table = "worker_heartbeat"
