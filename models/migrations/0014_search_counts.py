"""Counts for every search of one to three characters, and for no search
(PostgreSQL only).

Migration 0012 counts each practice's patients by the characters and pairs
they hold, so a search of one or two letters is counted without reading a
row. A fragment of three letters common in names ("ton", "son") had to read
every row it matches to count them: at 100,000 patients, most of a request's
time. The same counts now cover sequences of up to three characters, and the
empty sequence, which every patient holds: the practice's number of patients
for a list with no search.

A sequence holding a space is never counted: a search term holds none, so no
search asks for one.

The page of such a term is found among the practice's first patients in
name order, read from an index of the listing's order that also holds the
email (`patient_listing`), without reading the table.

The triggers of 0012 stay; the function they call now counts by
`patient_search_grams` instead of `patient_short_grams` (which stays: it is
the expression migration 0007 indexes), and the counts are made anew from
the patients there, under the same lock as 0012's."""

import importlib
from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

SHORT_COUNTS = importlib.import_module("models.migrations.0012_short_search_counts")

# Kept in step with `portal.services.patients.COUNTED_LENGTH`: the longest
# term counted here.
CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION patient_search_grams(text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(DISTINCT gram)
    FROM (
        SELECT ''
        UNION ALL
        SELECT substr($1, i, width)
        FROM generate_series(1, length($1)) AS i, generate_series(1, 3) AS width
        WHERE i + width <= length($1) + 1
    ) AS grams (gram)
    WHERE strpos(gram, ' ') = 0
$$
"""


def grams_of(row: str, function: str) -> str:
    return (
        f"{function}({row}.first_name_key || ' ' || {row}.last_name_key"
        f" || ' ' || coalesce({row}.email, ''))"
    )


def follow_function(grams: str) -> str:
    """The trigger function of 0012, counting by the function `grams`."""
    return SHORT_COUNTS.CREATE_FUNCTION.replace(
        SHORT_COUNTS.grams_of("changed"), grams_of("changed", grams)
    )


def recount(grams: str) -> str:
    return f"""
LOCK TABLE patient IN SHARE MODE;
DELETE FROM patient_short_gram_count;
INSERT INTO patient_short_gram_count (practice_id, gram, patients)
SELECT practice_id, gram, count(*) FROM patient, unnest({grams_of("patient", grams)}) AS gram
GROUP BY practice_id, gram
"""  # noqa: S608 (constant words only)


CREATE_INDEX = """
CREATE INDEX IF NOT EXISTS patient_listing
ON patient (practice_id, last_name_key, first_name_key, id) INCLUDE (email)
"""


async def count_longer_grams(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script(CREATE_INDEX)
    # One script, one transaction: no patient changes between the new
    # function and the recount.
    await client.execute_script(
        ";".join(
            (
                CREATE_FUNCTION,
                follow_function("patient_search_grams"),
                recount("patient_search_grams"),
            )
        )
    )


async def count_short_grams(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script(
        ";".join(
            (
                follow_function("patient_short_grams"),
                recount("patient_short_grams"),
                "DROP FUNCTION IF EXISTS patient_search_grams(text)",
                "DROP INDEX IF EXISTS patient_listing",
            )
        )
    )


class Migration(migrations.Migration):
    dependencies = [("models", "0013_audit_chain_and_retention")]

    initial = False

    operations = [ops.RunPython(count_longer_grams, count_short_grams)]
