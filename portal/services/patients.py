"""Patient profiles: validation, creation, changes, search and pagination."""

from __future__ import annotations

import json
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models import Account, AuditAction, Patient, Practice
from portal import clock
from portal.db import (
    AS_DATE,
    AS_DATETIME,
    AS_UUID,
    Reader,
    RenderedList,
    Rendering,
    Row,
    Sql,
    json_object,
    reading,
)
from portal.mail.outbox import enqueue
from portal.services import audit, cursors
from portal.services.access import Viewer, find_visible_patient
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


def encode_cursor(patient_id: object) -> str:
    return cursors.encode_cursor(CURSOR_KIND, patient_id)  # type: ignore[arg-type]


def _looks_like_phone(text: str) -> bool:
    return bool(digits_of(text)) and PHONE_PATTERN.match(text) is not None


# --- reading: hand-written SQL, the columns asked for and nothing more -------

# What a page can hold, by the names the API layer uses for them.
PATIENT_COLUMNS = (
    "id",
    "practice_id",
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "created_at",
)
PATIENT_TYPES = {
    "id": AS_UUID,
    "practice_id": AS_UUID,
    "date_of_birth": AS_DATE,
    "created_at": AS_DATETIME,
}
ORDER = "last_name_key, first_name_key, id"


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# A term of one or two characters on PostgreSQL: looked up in the index of
# migration 0007, whose expression this repeats word for word.
SHORT_TERM_CONDITION = (
    "patient_short_grams(first_name_key || ' ' || last_name_key || ' ' || coalesce(email, ''))"
    " @> ARRAY[{term}::text]"
)
# The characters and pairs found in at least this share of patients, by the
# statistics ANALYZE keeps of that index.
COMMON_SHARE = 0.2
COMMON_GRAMS = Sql(
    "SELECT gram FROM pg_stats,"
    " unnest(most_common_elems::text::text[], most_common_elem_freqs) AS common (gram, share)"
    " WHERE schemaname = current_schema() AND tablename = 'patient_short_grams'"
    " AND gram IS NOT NULL AND share >= $1"
)


class CommonShortTerms:
    """Short terms found in so many patients that reading every row is the
    faster way to find them. For those the index does not help, and the
    planner would evaluate its expression on every row (milliseconds per
    thousand rows); they are matched by `strpos` instead, as cheap a test as
    there is. Read from PostgreSQL's statistics at most every few minutes per
    process, so a search pays one more statement that often."""

    MAX_AGE_SECONDS = 300.0

    def __init__(self) -> None:
        self.terms: frozenset[str] = frozenset()
        self._read_at: float | None = None

    async def refresh_if_stale(self, reader: Reader) -> None:
        now = time.monotonic()
        if self._read_at is not None and now - self._read_at < self.MAX_AGE_SECONDS:
            return
        rows = await reader.fetch(COMMON_GRAMS, COMMON_SHARE)
        self.terms = frozenset(row["gram"] for row in rows)
        self._read_at = now

    def forget(self) -> None:
        self._read_at = None


common_short_terms = CommonShortTerms()


def _has_short_term(search: str) -> bool:
    return any(len(term.casefold()) <= 2 for term in search.split())


# The longest term the database counts (migrations 0012 and 0014).
COUNTED_LENGTH = 3


def _counted_gram(search: str | None) -> str | None:
    """The gram whose per-practice count (migrations 0012 and 0014) is the
    number of patients a search finds: the empty gram, which every patient
    holds, for no search; for one term of up to three characters that names
    and emails fold alike and that searches no phone number, the term."""
    terms = (search or "").replace("\x00", "").split()
    if not terms:
        return ""
    if len(terms) != 1:
        return None
    term = terms[0]
    folded = term.casefold()
    if len(folded) > COUNTED_LENGTH or folded != term.lower() or _looks_like_phone(term):
        return None
    return folded


class _Where:
    """Conditions with their arguments, numbered as they are added. The SQL
    is made of fixed words only; every value is a `$n` argument."""

    def __init__(self, dialect: str = "sqlite", common: frozenset[str] = frozenset()) -> None:
        self.dialect = dialect
        self.common = common
        self.conditions: list[str] = []
        self.args: list[Any] = []
        # Whether every pattern has a trigram to look up (3 characters).
        self.indexed = True
        self.patterns: dict[tuple[str, bool], str] = {}

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def contains(self, column: str, text: str) -> str:
        """`column` holds `text` somewhere."""
        self.indexed = self.indexed and len(text) >= 3
        # Under three characters there is no trigram to look up, and LIKE
        # would invite PostgreSQL's generic plan to scan a whole trigram
        # index; strpos is a plain test no plan mistakes for an index search.
        short = self.dialect == "postgres" and len(text) < 3
        if (text, short) not in self.patterns:
            self.patterns[text, short] = self.arg(text if short else _like(text))
        placeholder = self.patterns[text, short]
        if short:
            return f"strpos({column}, {placeholder}) > 0"
        return f"{column} LIKE {placeholder} ESCAPE '\\'"

    def visible_to(self, viewer: Viewer) -> _Where:
        """The one rule of who sees which patient, as `visible_patients` has it."""
        self.conditions.append(f"practice_id = {self.arg(viewer.practice_id)}")
        if not viewer.is_staff:
            self.conditions.append(f"id = {self.arg(viewer.patient_id)}")
        return self

    def matching(self, search: str) -> None:
        """Every word must match some field ("ada love" finds Ada Lovelace); a
        search that looks like a phone number also matches its digits as a whole
        ("555 0100" finds "+1 (555) 0100"). Digits inside words ("ada2@mail")
        are not matched against phone numbers."""
        # PostgreSQL refuses NUL in text; no stored value holds one anyway.
        search = search.replace("\x00", "")
        terms = []
        for term in search.split():
            if self._short_term_indexed(term):
                terms.append(SHORT_TERM_CONDITION.format(term=self.arg(term.casefold())))
                continue
            alternatives = [
                self.contains("first_name_key", term.casefold()),
                self.contains("last_name_key", term.casefold()),
                self.contains("email", term.lower()),
            ]
            if _looks_like_phone(term):
                alternatives.append(self.contains("phone_digits", digits_of(term)))
            terms.append("(" + " OR ".join(alternatives) + ")")
        matches = " AND ".join(terms)
        whole = search.strip()
        if len(terms) > 1 and _looks_like_phone(whole):
            matches = f"({matches}) OR {self.contains('phone_digits', digits_of(whole))}"
        self.conditions.append(f"({matches})")

    def _short_term_indexed(self, term: str) -> bool:
        # The index holds names (casefolded) and email (lowercased) as one
        # text: a term they would fold differently ("ß"), or one that also
        # searches phone numbers, goes through the general conditions.
        return (
            self.dialect == "postgres"
            and len(term.casefold()) <= 2
            and term.casefold() == term.lower()
            and term.casefold() not in self.common
            and not _looks_like_phone(term)
        )

    @property
    def sql(self) -> str:
        return " AND ".join(self.conditions)


@lru_cache(maxsize=256)
def _statement(text: str, one_row: bool = False) -> Sql:
    # One Sql per text: asyncpg prepares each text once per connection.
    return Sql(text, types=PATIENT_TYPES, one_row=one_row)


@dataclass(frozen=True)
class PatientPage:
    # The rows, or the page as the database wrote it when asked to (`listing`).
    patients: list[Row] | RenderedList
    has_next_page: bool
    # None when it was not asked for.
    total_count: int | None
    last_id: uuid.UUID | None

    @property
    def end_cursor(self) -> str | None:
        return encode_cursor(self.last_id) if self.last_id is not None else None


def cursor_sql(dialect: str, column: str) -> str:
    """`encode_cursor` of a patient id column, in PostgreSQL's words."""
    if dialect != "postgres":
        raise ValueError("cursors are written by PostgreSQL only")
    # base64url without padding; the text is too short for encode()'s line breaks.
    text = f"encode(convert_to('{CURSOR_KIND}:' || {column}::text, 'UTF8'), 'base64')"
    # replace() twice costs PostgreSQL about half what one translate() does.
    return f"rtrim(replace(replace({text}, '+', '-'), '/', '_'), '=')"


@dataclass(frozen=True, eq=False)  # known by identity: plans keep theirs
class Listing:
    """A page the database writes whole as one JSON array (PostgreSQL only):
    the members of each item, under `alias`, and the columns the items'
    permissions decide on."""

    alias: str
    members: Rendering
    inputs: tuple[str, ...]


def _columns(wanted: Iterable[str], table: str = "") -> str:
    chosen = [c for c in PATIENT_COLUMNS if c in set(wanted)] or ["id"]
    return ", ".join(f"{table}{c}" for c in chosen)


def _select_list(
    dialect: str, columns: Iterable[str], render: tuple[str, Rendering] | None
) -> Callable[[str], str]:
    """The select list for a table prefix: the columns, and the rendered object."""
    wanted = tuple(sorted(set(columns)))
    return lambda table: _written_select_list(dialect, wanted, render, table)


@lru_cache(maxsize=512)
def _written_select_list(
    dialect: str, wanted: tuple[str, ...], render: tuple[str, Rendering] | None, table: str
) -> str:
    # Plans ask for the same few selections again and again: written once each.
    listed = _columns(wanted, table)
    if render is None:
        return listed
    alias, members = render
    if not re.fullmatch(r"rendered_\d+", alias):
        raise ValueError(f"not a rendering alias: {alias!r}")
    rendered = json_object(dialect, members, PATIENT_COLUMNS, table)
    return f"{listed}, {rendered} AS {alias}"


@lru_cache(maxsize=512)
def _listed_select_list(listing: Listing) -> Callable[[str], str]:
    """The select list of a page written whole: each row's item, its id and
    the permissions' inputs."""
    for name in listing.inputs:
        if name not in PATIENT_COLUMNS:
            raise ValueError(f"not a column here: {name!r}")

    @lru_cache(maxsize=4)
    def select_list(table: str) -> str:
        item = json_object("postgres", listing.members, PATIENT_COLUMNS, table)
        extra = "".join(f", {table}{name}" for name in sorted(set(listing.inputs) - {"id"}))
        return f"{item} AS item, {table}id{extra}"

    return select_list


async def list_patients(
    viewer: Viewer,
    *,
    search: str | None,
    first: int,
    after: str | None,
    columns: Iterable[str] = PATIENT_COLUMNS,
    count: bool = True,
    render: tuple[str, Rendering] | None = None,
    listing: Listing | None = None,
    reader: Reader | None = None,
) -> PatientPage:
    """One page of the practice's patients by last name, first name, then id,
    with the given columns (and `id`), and the number matching when `count`:
    one statement, whatever is asked (a second only for an empty page after a
    cursor). `render`: an alias and the members of a JSON object the database
    writes for each row (see `portal.db.json_object`); `listing`: on
    PostgreSQL, the whole page written as one JSON array instead of rows."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadInput(f"`first` must be between 1 and {MAX_PAGE_SIZE}.")
    searched = bool(search and search.replace("\x00", "").strip())
    if searched:
        assert search is not None
        if len(search) > MAX_SEARCH_LENGTH or len(search.split()) > MAX_SEARCH_WORDS:
            raise BadInput(
                f"`search` can be at most {MAX_SEARCH_LENGTH} characters and "
                f"{MAX_SEARCH_WORDS} words."
            )
    anchor = cursors.decode_cursor(CURSOR_KIND, after) if after is not None else None
    if reader is None:
        async with reading() as reader:
            return await list_patients(
                viewer,
                search=search,
                first=first,
                after=after,
                columns=columns,
                count=count,
                render=render,
                listing=listing,
                reader=reader,
            )
    common: frozenset[str] = frozenset()
    if searched and reader.dialect == "postgres":
        assert search is not None
        if _has_short_term(search):
            await common_short_terms.refresh_if_stale(reader)
            common = common_short_terms.terms
    query = _Where(reader.dialect, common).visible_to(viewer)
    if searched:
        assert search is not None
        query.matching(search)
    if listing is not None and reader.dialect == "postgres":
        selected = _listed_select_list(listing)
    else:
        selected, listing = _select_list(reader.dialect, columns, render), None
    counted_gram = None
    if reader.dialect == "postgres" and viewer.is_staff:
        counted_gram = _counted_gram(search)
    return await _page(
        reader, viewer, query, first, anchor, selected, count, searched, counted_gram, listing
    )


async def _page(
    reader: Reader,
    viewer: Viewer,
    query: _Where,
    first: int,
    anchor: uuid.UUID | None,
    selected: Callable[[str], str],
    count: bool,
    searched: bool,
    counted_gram: str | None = None,
    listing: Listing | None = None,
) -> PatientPage:
    matching, matching_args = query.sql, list(query.args)
    keyset = ""
    if anchor is not None:
        # Rows after the anchor, which must itself be visible: an unknown one
        # compares as NULL and gives an empty page, told apart below.
        bound = _Where().visible_to(viewer)
        bound.args = query.args
        bound.conditions.append(f"id = {bound.arg(anchor)}")
        keyset = (
            f"(practice_id, {ORDER}) > (SELECT practice_id, {ORDER} FROM patient WHERE {bound.sql})"
        )
    # A parameter as LIMIT keeps PostgreSQL planning the statement anew on
    # every run (its generic plan cannot know the row count); the page size
    # is a checked integer, written in. Searches keep their custom plans,
    # fitted to each search's words.
    limit = query.arg(first + 1) if searched else str(int(first) + 1)
    # Only PostgreSQL counts grams (`list_patients`); a searched one is walked.
    walked = searched and bool(counted_gram)
    counted = ""
    if count and counted_gram is not None and not walked:
        # Kept by the database as patients change: no row is read to count.
        gram_count = _kept_count(query.arg(viewer.practice_id), query.arg(counted_gram))
        counted = f", {gram_count} AS total_count"
    matched = f"{matching}{' AND ' + keyset if keyset else ''}"
    if walked:
        assert counted_gram is not None
        text = _walked_page_text(
            query, viewer, counted_gram, matched, keyset, limit, selected, count
        )
    elif searched and reader.dialect == "postgres" and query.indexed and count and not counted:
        # The indexes find the matches, once for the page and the count:
        # only their sort keys are sorted, and only one page of rows is read
        # in full.
        text = (
            f"WITH found AS MATERIALIZED (SELECT practice_id, {ORDER} FROM patient"
            f" WHERE {matching}),"
            f" page AS (SELECT {ORDER} FROM found{' WHERE ' + keyset if keyset else ''}"
            f" ORDER BY {ORDER} LIMIT {limit})"
            f" SELECT {selected('p.')}, (SELECT count(*) FROM found) AS total_count"
            " FROM page JOIN patient p ON p.id = page.id"
            " ORDER BY page.last_name_key, page.first_name_key, page.id"
        )
    elif searched and reader.dialect == "postgres" and query.indexed:
        # The page alone. OFFSET 0 keeps the matching a subquery planned on
        # its own, by the indexes: walking the practice in name order until
        # a page is found would read every row for a rare term, or one
        # common elsewhere (statistics are the table's, not the practice's).
        text = (
            f"SELECT {selected('p.')}{counted} FROM (SELECT {ORDER} FROM"
            f" (SELECT {ORDER} FROM patient WHERE {matched} OFFSET 0) AS found"
            f" ORDER BY {ORDER} LIMIT {limit}) AS page"
            " JOIN patient p ON p.id = page.id"
            " ORDER BY page.last_name_key, page.first_name_key, page.id"
        )
    else:
        if count and not counted:
            counted = f", (SELECT count(*) FROM patient WHERE {matching}) AS total_count"
        text = (
            f"SELECT {selected('')}{counted} FROM patient WHERE {matched}"
            f" ORDER BY {ORDER} LIMIT {limit}"
        )
    if listing is not None:
        return await _written_page(
            reader, viewer, query, text, (matching, matching_args), first, anchor, count, listing
        )
    rows = await reader.fetch(_statement(text), *query.args)
    total: int | None = None
    if count:
        total = int(rows[0]["total_count"]) if rows else 0
    if not rows and anchor is not None:
        total = await _after_an_empty_page(reader, viewer, matching, matching_args, anchor, count)
    return PatientPage(
        patients=list(rows[:first]),
        has_next_page=len(rows) > first,
        total_count=total,
        last_id=rows[min(first, len(rows)) - 1]["id"] if rows else None,
    )


def _kept_count(practice: str, gram: str) -> str:
    """The count migrations 0012 and 0014 keep of a practice's patients
    holding a gram, as SQL over the two placeholders."""
    return (
        "coalesce((SELECT patients FROM patient_short_gram_count"
        f" WHERE practice_id = {practice} AND gram = {gram}), 0)"
    )


# The empty gram, which every patient holds: the practice's patients.
EVERY_PATIENT = "''"

# How many rows of the practice, in name order, a page of a common term is
# looked for in before the indexes are asked instead: read from the index
# alone (migration 0014), a few milliseconds.
WALK_ROWS = 5_000


def _walked_page_text(
    query: _Where,
    viewer: Viewer,
    gram: str,
    matched: str,
    keyset: str,
    limit: str,
    selected: Callable[[str], str],
    count: bool,
) -> str:
    """A page of a term the database counts (`_counted_gram`), by staff.

    The indexes find every match, and every match is read from the table to
    be sorted: 8,500 rows for "ton" in 100,000 patients, most of a request.
    A term that common has a page among the practice's first rows in name
    order, which the index of migration 0014 holds with the email: those
    rows are read from it alone and tested in turn. Only when the counts say
    a page is likely within `WALK_ROWS` rows, and only when it is not found
    there (matches that cluster late in the alphabet), do the indexes find
    the matches as for any other search."""
    practice, term = query.arg(viewer.practice_id), query.arg(gram)
    walk_ahead = WALK_ROWS // 4  # a page expected within a quarter of the rows walked
    return (
        f"WITH tally AS (SELECT {_kept_count(practice, term)}::bigint AS matches,"
        f" {_kept_count(practice, EVERY_PATIENT)}::bigint AS patients),"
        f" walked AS MATERIALIZED (SELECT {ORDER} FROM"
        f" (SELECT {ORDER}, email FROM patient WHERE practice_id = {practice}"
        f"{' AND ' + keyset if keyset else ''}"
        f" AND (SELECT matches * {walk_ahead} >= {limit}::bigint * patients FROM tally)"
        f" ORDER BY {ORDER} LIMIT {WALK_ROWS}) AS head"
        f" WHERE strpos(first_name_key, {term}) > 0 OR strpos(last_name_key, {term}) > 0"
        f" OR strpos(email, {term}) > 0"
        f" ORDER BY {ORDER} LIMIT {limit}),"
        # The test stays above the subquery (OFFSET 0), so that a parallel
        # plan of it is not even started when the walk found the page.
        f" found AS MATERIALIZED (SELECT {ORDER} FROM"
        f" (SELECT {ORDER} FROM patient WHERE {matched} OFFSET 0) AS matches"
        f" WHERE (SELECT count(*) FROM walked) < {limit}::bigint),"
        f" page AS (SELECT {ORDER} FROM walked"
        f" WHERE (SELECT count(*) FROM walked) >= {limit}::bigint"
        f" UNION ALL (SELECT {ORDER} FROM found ORDER BY {ORDER} LIMIT {limit}))"
        f" SELECT {selected('p.')}{', (SELECT matches FROM tally) AS total_count' if count else ''}"
        " FROM page JOIN patient p ON p.id = page.id"
        " ORDER BY page.last_name_key, page.first_name_key, page.id"
    )


# Between the items of a written page (a line break is JSON's whitespace): no
# item holds one (the database escapes those within strings and writes none
# between members), so the item fetched only to tell that more follow is cut
# at the last one.
ITEM_BREAK = ",\n"


@lru_cache(maxsize=256)
def _written_page_text(rows_text: str, inputs: tuple[str, ...], count: bool) -> str:
    # The rows come sorted and nothing is joined to them, so the aggregates
    # take them in that order (PostgreSQL's documented way, "supplying the
    # input values from a sorted subquery"), with no sort of their own.
    return (
        "SELECT '[' || coalesce(string_agg(item, E',\\n'), '') || ']' AS written,"
        " count(*) AS fetched"
        + "".join(f", string_agg({name}::text, ',') AS input_{name}" for name in inputs)
        + (", max(total_count) AS total_count" if count else "")
        + f" FROM ({rows_text}) AS fetched"
    )


async def _written_page(
    reader: Reader,
    viewer: Viewer,
    query: _Where,
    rows_text: str,
    matching: tuple[str, list[Any]],
    first: int,
    anchor: uuid.UUID | None,
    count: bool,
    listing: Listing,
) -> PatientPage:
    """The page's rows (`rows_text`, one more than asked to tell whether
    more follow) written by the database as one JSON array, in one row."""
    # The ids always: the last one is the page's end cursor.
    inputs = tuple(sorted({"id", *listing.inputs}))
    text = _written_page_text(rows_text, inputs, count)
    [row] = await reader.fetch(_statement(text, one_row=True), *query.args)
    fetched = int(row["fetched"])
    total: int | None = None
    if count:
        total = int(row["total_count"] or 0)
    if not fetched and anchor is not None:
        total = await _after_an_empty_page(reader, viewer, *matching, anchor, count)
    items: str = row["written"]
    columns = {name: row[f"input_{name}"] or "" for name in inputs}
    if fetched > first:
        items = items[: items.rindex(ITEM_BREAK)] + "]"
        columns = {name: joined.rpartition(",")[0] for name, joined in columns.items()}
    ids = columns["id"]
    return PatientPage(
        patients=RenderedList(alias=listing.alias, text=items, inputs=columns),
        has_next_page=fetched > first,
        total_count=total,
        last_id=uuid.UUID(ids.rpartition(",")[2]) if ids else None,
    )


async def _after_an_empty_page(
    reader: Reader,
    viewer: Viewer,
    matching: str,
    matching_args: list[Any],
    anchor: uuid.UUID,
    count: bool,
) -> int | None:
    """Past the last row, or a cursor that is not from this list? And the count."""
    known = _Where().visible_to(viewer)
    known.conditions.append(f"id = {known.arg(anchor)}")
    if not await reader.fetch(_statement(f"SELECT id FROM patient WHERE {known.sql}"), *known.args):
        raise BadInput("`after` is not a cursor from this list.")
    if not count:
        return None
    counted = await reader.fetch(
        _statement(f"SELECT count(*) AS total_count FROM patient WHERE {matching}"),
        *matching_args,
    )
    return int(counted[0]["total_count"])


async def visible_patients_by_id(
    viewer: Viewer,
    ids: Sequence[uuid.UUID | None],
    columns: Iterable[str] = PATIENT_COLUMNS,
    reader: Reader | None = None,
    render: tuple[str, Rendering] | None = None,
) -> list[Row | None]:
    """The rows of these patients, in order; None for any the viewer may not see."""
    wanted = [str(i) for i in ids if i is not None]
    if not wanted:
        return [None for _ in ids]
    if reader is None:
        async with reading() as reader:
            return await visible_patients_by_id(viewer, ids, columns, reader, render)
    query = _Where().visible_to(viewer)
    if reader.dialect == "postgres":
        query.conditions.append(f"id = ANY({query.arg(wanted)}::uuid[])")
    else:
        query.conditions.append(
            f"id IN (SELECT value FROM json_each({query.arg(json.dumps(wanted))}))"
        )
    selected = _select_list(reader.dialect, [*columns, "id"], render)("")
    rows = await reader.fetch(
        _statement(f"SELECT {selected} FROM patient WHERE {query.sql}"), *query.args
    )
    found = {str(row["id"]): row for row in rows}
    return [found.get(str(i)) if i is not None else None for i in ids]
