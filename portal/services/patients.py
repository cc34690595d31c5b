"""Patient profiles: validation, creation, changes, search and pagination."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models import Account, AuditAction, Patient, Practice
from portal import clock
from portal.mail.outbox import enqueue
from portal.services import audit, cursors
from portal.services.access import Viewer, find_visible_patient, visible_patients
from portal.services.emails import valid_email
from portal.services.errors import BadInput, EmailTaken, NotFound, ValidationFailed
from portal.services.invitations import email_taken_by_another_account, revoke_open_invitations
from portal.services.recovery import revoke_recovery_by_email

MAX_NAME_LENGTH = 100
MAX_PHONE_LENGTH = 40
PHONE_PATTERN = re.compile(r"^\+?[0-9 ()./-]+$")
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 4, 20
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
# The calendar day is already "today" somewhere on Earth up to 14 hours ahead of UTC.
LATEST_UTC_OFFSET = timedelta(hours=14)
MAX_PAGE_SIZE = 100
MAX_SEARCH_LENGTH = 200
MAX_SEARCH_WORDS = 10
CURSOR_KIND = "patient"

EMAIL_TAKEN_MESSAGE = "Another account of this practice already uses that email address."
EDITABLE_FIELDS = ("first_name", "last_name", "date_of_birth", "email", "phone")


@dataclass(frozen=True)
class PatientPage:
    patients: list[Patient]
    has_next_page: bool
    total_count: int


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("This name cannot be empty.", field=field)
    name = value.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(f"Use at most {MAX_NAME_LENGTH} characters.", field=field)
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValidationFailed("Names cannot contain control characters.", field=field)
    if not any(ch.isalnum() for ch in name):
        # Zero-width or format characters alone look empty on every screen.
        raise ValidationFailed("A name needs at least one letter.", field=field)
    return name


def _date_of_birth(value: object) -> date | None:
    if value is None:
        return None
    if not isinstance(value, date):
        raise ValidationFailed("Give the date of birth as YYYY-MM-DD.", field="date_of_birth")
    latest = (clock.now() + LATEST_UTC_OFFSET).date()
    if value > latest:
        raise ValidationFailed("The date of birth cannot be in the future.", field="date_of_birth")
    if value < EARLIEST_BIRTH_DATE:
        raise ValidationFailed("The date of birth is before 1900.", field="date_of_birth")
    return value


def _email(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    address = valid_email(value) if isinstance(value, str) else None
    if address is None:
        raise ValidationFailed("That is not a valid email address.", field="email")
    return address


def digits_of(text: str) -> str:
    return "".join(ch for ch in text if ch.isascii() and ch.isdigit())


def _phone(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    phone = value.strip() if isinstance(value, str) else ""
    digit_count = len(digits_of(phone))
    if (
        len(phone) > MAX_PHONE_LENGTH
        or not PHONE_PATTERN.match(phone)
        or not MIN_PHONE_DIGITS <= digit_count <= MAX_PHONE_DIGITS
    ):
        raise ValidationFailed(
            "Give a phone number of digits, spaces and + ( ) . / - only, like +1 555 0100.",
            field="phone",
        )
    return phone


def _validated(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validates the given fields and returns the columns to write."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not patient fields: {sorted(unknown)}")
    columns: dict[str, Any] = {}
    for field_name in EDITABLE_FIELDS:
        if field_name not in changes:
            continue
        value = changes[field_name]
        if field_name in ("first_name", "last_name"):
            name = _name(value, field_name)
            columns[field_name] = name
            columns[f"{field_name}_key"] = name.casefold()
        elif field_name == "date_of_birth":
            columns["date_of_birth"] = _date_of_birth(value)
        elif field_name == "email":
            columns["email"] = _email(value)
        else:
            phone = _phone(value)
            columns["phone"] = phone
            columns["phone_digits"] = digits_of(phone) if phone else None
    return columns


async def create_patient(
    viewer: Viewer,
    *,
    first_name: str,
    last_name: str,
    date_of_birth: date | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> Patient:
    columns = _validated(
        {
            "first_name": first_name,
            "last_name": last_name,
            "date_of_birth": date_of_birth,
            "email": email,
            "phone": phone,
        }
    )
    async with in_transaction():
        patient = await Patient.create(practice_id=viewer.practice_id, **columns)
        await audit.record_for(viewer, AuditAction.PATIENT_CREATED, patient.id)
    return patient


async def update_patient(viewer: Viewer, patient_id: str, changes: Mapping[str, Any]) -> Patient:
    """Changes the given fields; fields not given stay as they are."""
    columns = _validated(changes)
    try:
        async with in_transaction():
            patient = await find_visible_patient(viewer, patient_id, for_update=True)
            if patient is None:
                raise NotFound()
            if "email" in columns and columns["email"] != patient.email:
                await _follow_email_change(viewer, patient, columns["email"])
            if columns:
                patient.update_from_dict(columns)
                await patient.save(update_fields=[*columns, "updated_at"])
                await audit.record_for(viewer, AuditAction.PATIENT_UPDATED, patient.id)
    except IntegrityError:
        raise EmailTaken(EMAIL_TAKEN_MESSAGE) from None
    return patient


async def _follow_email_change(viewer: Viewer, patient: Patient, new_email: str | None) -> None:
    """A pending invitation went to the old address: it is cancelled. A
    signed-up patient signs in with the new address from now on, and the old
    address is told, in case the change was not theirs."""
    if await revoke_open_invitations(patient):
        await audit.record_for(viewer, AuditAction.INVITATION_CANCELLED, patient.id)
    account = await Account.get_or_none(patient_id=patient.id)
    if account is None:
        return
    if new_email is None:
        raise ValidationFailed(
            "A patient with a portal account needs an email address to sign in.", field="email"
        )
    if await email_taken_by_another_account(patient, new_email):
        raise EmailTaken(EMAIL_TAKEN_MESSAGE)
    old_email = account.email
    account.email = new_email
    await account.save(update_fields=["email"])
    # Codes and code-made reset tokens went to the old address: if it was
    # lost or taken over, they must not outlive the change.
    await revoke_recovery_by_email(account.id)
    practice = await Practice.get(id=patient.practice_id)
    await enqueue(
        "email_changed",
        old_email,
        {"first_name": patient.first_name, "practice_name": practice.name},
    )


def encode_cursor(patient: Patient) -> str:
    return cursors.encode_cursor(CURSOR_KIND, patient.id)


def _looks_like_phone(text: str) -> bool:
    return bool(digits_of(text)) and PHONE_PATTERN.match(text) is not None


def _term_filter(term: str) -> Q:
    matches = (
        Q(first_name_key__contains=term.casefold())
        | Q(last_name_key__contains=term.casefold())
        | Q(email__contains=term.lower())
    )
    if _looks_like_phone(term):
        matches |= Q(phone_digits__contains=digits_of(term))
    return matches


def _search_filter(search: str) -> Q:
    """Every word must match some field ("ada love" finds Ada Lovelace); a
    search that looks like a phone number also matches its digits as a whole
    ("555 0100" finds "+1 (555) 0100"). Digits inside words ("ada2@mail") are
    not matched against phone numbers."""
    # PostgreSQL refuses NUL in text; no stored value holds one anyway.
    search = search.replace("\x00", "")
    term_filters = [_term_filter(term) for term in search.split()]
    matches = Q(*term_filters, join_type=Q.AND)
    whole = search.strip()
    if len(term_filters) > 1 and _looks_like_phone(whole):
        matches |= Q(phone_digits__contains=digits_of(whole))
    return matches


async def list_patients(
    viewer: Viewer, *, search: str | None, first: int, after: str | None
) -> PatientPage:
    """One page of the practice's patients by last name, first name, then id."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadInput(f"`first` must be between 1 and {MAX_PAGE_SIZE}.")
    matching = visible_patients(viewer)
    if search and search.replace("\x00", "").strip():
        if len(search) > MAX_SEARCH_LENGTH or len(search.split()) > MAX_SEARCH_WORDS:
            raise BadInput(
                f"`search` can be at most {MAX_SEARCH_LENGTH} characters and "
                f"{MAX_SEARCH_WORDS} words."
            )
        matching = matching.filter(_search_filter(search))
    page = matching
    if after is not None:
        anchor = await visible_patients(viewer).get_or_none(
            id=cursors.decode_cursor(CURSOR_KIND, after)
        )
        if anchor is None:
            raise BadInput("`after` is not a cursor from this list.")
        page = page.filter(
            Q(last_name_key__gt=anchor.last_name_key)
            | Q(last_name_key=anchor.last_name_key, first_name_key__gt=anchor.first_name_key)
            | Q(
                last_name_key=anchor.last_name_key,
                first_name_key=anchor.first_name_key,
                id__gt=anchor.id,
            )
        )
    rows = await page.order_by("last_name_key", "first_name_key", "id").limit(first + 1)
    total = await matching.count()
    return PatientPage(
        patients=list(rows[:first]), has_next_page=len(rows) > first, total_count=total
    )
