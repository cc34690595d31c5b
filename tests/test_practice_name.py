"""Anyone may read a practice's display name by its slug: every page of the
practice shows it, signed in or not."""

from __future__ import annotations

from models import Practice
from tests.conftest import GraphQLClient

PRACTICE_NAME = "query PracticeName($slug: String!) { practiceName(slug: $slug) }"


async def test_anyone_reads_a_practices_name_by_its_slug(
    anonymous: GraphQLClient, practice: Practice
) -> None:
    assert await anonymous.data(PRACTICE_NAME, slug="north") == {
        "practiceName": "North Street Practice"
    }


async def test_an_unknown_or_impossible_slug_has_no_name(
    anonymous: GraphQLClient, practice: Practice
) -> None:
    for slug in ("nowhere", "", "x" * 500, "no\x00rth"):
        assert await anonymous.data(PRACTICE_NAME, slug=slug) == {"practiceName": None}


async def test_the_slug_is_read_as_typed_at_sign_in(
    anonymous: GraphQLClient, practice: Practice
) -> None:
    assert await anonymous.data(PRACTICE_NAME, slug=" North ") == {
        "practiceName": "North Street Practice"
    }
