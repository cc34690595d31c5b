"""Recovery answers take at least a fixed time, whether or not the account exists,
so timing tells nobody which emails have an account."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest

from models import Patient
from portal.services import recovery
from portal.services.errors import InvalidCode
from portal.settings import Settings
from tests import factories

FLOOR = timedelta(milliseconds=80)


@pytest.mark.parametrize("email", ["grace@mail.example", "nobody@mail.example"])
async def test_a_code_request_takes_at_least_the_floor(
    settings: Settings, patient_profile: Patient, email: str
) -> None:
    await factories.make_patient_account(patient_profile)
    with_floor = dataclasses.replace(settings, recovery_response_floor=FLOOR)

    started = time.monotonic()
    await recovery.request_verification_code("north", email, with_floor)

    assert time.monotonic() - started >= FLOOR.total_seconds()


async def test_a_refused_code_takes_at_least_the_floor_too(
    settings: Settings, patient_profile: Patient
) -> None:
    with_floor = dataclasses.replace(settings, recovery_response_floor=FLOOR)

    started = time.monotonic()
    with pytest.raises(InvalidCode):
        await recovery.verify_reset_code("north", "nobody@mail.example", "123456", with_floor)

    assert time.monotonic() - started >= FLOOR.total_seconds()
