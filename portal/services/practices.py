"""Practices: the tenants."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence

from tortoise.exceptions import IntegrityError

from models import Practice
from portal.db import AS_UUID, Reader, Row, Sql, reading
from portal.services.errors import ValidationFailed

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_SLUG_LENGTH = 63
MAX_NAME_LENGTH = 200
# The service's own first path segments: a practice's pages live at /{slug}/….
RESERVED_SLUGS = frozenset({"graphql", "health", "static", "web"})


class SlugTaken(ValidationFailed):
    pass


async def create_practice(name: str, slug: str) -> Practice:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(
            f"The practice name must be 1 to {MAX_NAME_LENGTH} characters.", field="name"
        )
    if len(slug) > MAX_SLUG_LENGTH or not SLUG_PATTERN.match(slug):
        raise ValidationFailed(
            "The slug must be lowercase letters, digits and single hyphens "
            f"(at most {MAX_SLUG_LENGTH} characters), like 'north-clinic'.",
            field="slug",
        )
    if slug in RESERVED_SLUGS:
        raise ValidationFailed(
            f"The slug {slug!r} is one of the service's own addresses; choose another.",
            field="slug",
        )
    if await Practice.exists(slug=slug):
        raise SlugTaken(f"The slug {slug!r} is already used by another practice.", field="slug")
    try:
        return await Practice.create(name=name, slug=slug)
    except IntegrityError:
        raise SlugTaken(
            f"The slug {slug!r} is already used by another practice.", field="slug"
        ) from None


def normalize_slug(slug: str) -> str:
    """A slug as typed at sign-in: surrounding space and case do not matter."""
    return slug.strip().lower()


async def find_practice(slug: str) -> Practice | None:
    """The practice with that slug; None for any text that cannot be a slug
    (too long, a NUL byte PostgreSQL would refuse), without asking the database."""
    slug = normalize_slug(slug)
    if not valid_slug(slug):
        return None
    return await Practice.get_or_none(slug=slug)


def valid_slug(slug: str) -> bool:
    """Whether a normalised slug could be stored at all."""
    return bool(SLUG_PATTERN.match(slug)) and len(slug) <= MAX_SLUG_LENGTH


PRACTICES_BY_ID = Sql(
    "SELECT id, name, slug, staff_mfa_required FROM practice WHERE id = ANY($1::uuid[])",
    sqlite="SELECT id, name, slug, staff_mfa_required FROM practice"
    " WHERE id IN (SELECT value FROM json_each($1))",
    types={"id": AS_UUID},
)


async def practices_by_id(ids: Sequence[uuid.UUID], reader: Reader | None = None) -> list[Row]:
    """The practices with these ids, in the same order (for a DataLoader)."""
    if reader is None:
        async with reading() as reader:
            return await practices_by_id(ids, reader)
    wanted = [str(i) for i in ids]
    argument: object = wanted if reader.dialect == "postgres" else json.dumps(wanted)
    found = {str(row["id"]): row for row in await reader.fetch(PRACTICES_BY_ID, argument)}
    return [found[i] for i in wanted]


async def display_name(slug: str) -> str | None:
    """The name a practice's pages show (anyone may read it: it is on every
    page of the practice, signed in or not); None for an unknown slug."""
    practice = await find_practice(slug)
    return practice.name if practice is not None else None
