"""The Tortoise ORM models: tables and their relations, nothing else."""

from models.account import Account, Role
from models.patient import Patient
from models.practice import Practice
from models.session import Session

__all__ = ["Account", "Patient", "Practice", "Role", "Session"]
