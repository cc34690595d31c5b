"""Rows a test needs, made directly so each test states only what it is about."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from models import Account, Patient, Practice, Role
from portal import clock
from portal.services import passwords

PASSWORD = "lunar-teapot-orchestra-91"
_counter = itertools.count(1)


async def make_practice(slug: str | None = None, name: str | None = None) -> Practice:
    n = next(_counter)
    return await Practice.create(slug=slug or f"practice-{n}", name=name or f"Practice {n}")


async def make_staff(
    practice: Practice, role: Role = Role.ADMIN, email: str | None = None, password: str = PASSWORD
) -> Account:
    return await Account.create(
        practice=practice,
        email=email or f"{role.value.lower()}{next(_counter)}@{practice.slug}.example",
        role=role,
        password_hash=await passwords.hash_password(password),
        password_changed_at=clock.now(),
    )


async def make_patient(practice: Practice, **fields: Any) -> Patient:
    first = fields.pop("first_name", "Ada")
    last = fields.pop("last_name", f"Lovelace{next(_counter)}")
    values: dict[str, Any] = {
        "date_of_birth": date(1990, 5, 17),
        "email": f"{first.lower()}.{last.lower()}@mail.example",
        "phone": "+1 555 0100",
    }
    values.update(fields)
    phone = values.get("phone")
    return await Patient.create(
        practice=practice,
        first_name=first,
        last_name=last,
        first_name_key=first.casefold(),
        last_name_key=last.casefold(),
        phone_digits="".join(ch for ch in phone if ch.isdigit()) if phone else None,
        **values,
    )


async def make_patient_account(patient: Patient, password: str = PASSWORD) -> Account:
    assert patient.email is not None
    return await Account.create(
        practice_id=patient.practice_id,
        email=patient.email,
        role=Role.PATIENT,
        patient=patient,
        password_hash=await passwords.hash_password(password),
        password_changed_at=clock.now(),
    )
