"""The Tortoise ORM models: tables and their relations, nothing else."""

from models.account import Account, Role
from models.audit import AuditAction, AuditChain, AuditEvent, AuditPrunePermit
from models.heartbeat import WorkerHeartbeat
from models.invitation import Invitation
from models.mfa import MfaChallenge, MfaRecoveryCode
from models.outbox import OutboxMessage, OutboxStatus
from models.patient import Patient
from models.practice import Practice
from models.recovery import ResetSource, ResetToken, VerificationCode
from models.session import Session
from models.throttle import ThrottleCounter

__all__ = [
    "Account",
    "AuditAction",
    "AuditChain",
    "AuditEvent",
    "AuditPrunePermit",
    "Invitation",
    "MfaChallenge",
    "MfaRecoveryCode",
    "OutboxMessage",
    "OutboxStatus",
    "Patient",
    "Practice",
    "ResetSource",
    "ResetToken",
    "Role",
    "Session",
    "ThrottleCounter",
    "VerificationCode",
    "WorkerHeartbeat",
]
