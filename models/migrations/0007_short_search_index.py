"""An index for searches of one or two letters on PostgreSQL.

Trigram indexes (0006) have nothing to look up for a term shorter than three
letters, so "jo" read every row of the practice. This indexes each patient's
characters and pairs of characters of the names and email joined by spaces:
a term of one or two characters holds no space, so it is in one of those
fields exactly when it is one of the joined text's characters or pairs; the
index answers the search itself and only matching rows are read (and
counted).
SQLite keeps scanning, which is fine at its size.

Computing the expression costs tens of microseconds a row, which a scan of
every row must never pay: the function's declared cost steers the planner to
the index for any term it expects in fewer than most rows, and the service
matches terms common enough to be in most rows with `strpos` instead (see
`portal.services.patients.CommonShortTerms`)."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

# Kept in step with `portal.services.patients.SHORT_TERM_CONDITION`, which
# must repeat the indexed expression word for word for PostgreSQL to use it.
CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION patient_short_grams(text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
    SELECT coalesce(array_agg(DISTINCT gram), '{}')
    FROM generate_series(1, length($1)) AS i,
        LATERAL (VALUES (substr($1, i, 1)), (substr($1, i, 2))) AS grams (gram)
$$
"""
CREATE_INDEX = """
CREATE INDEX IF NOT EXISTS patient_short_grams ON patient USING gin (
    patient_short_grams(first_name_key || ' ' || last_name_key || ' ' || coalesce(email, ''))
)
"""


async def create_index(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script(CREATE_FUNCTION)
    await client.execute_script(CREATE_INDEX)


async def drop_index(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script("DROP INDEX IF EXISTS patient_short_grams")
    await client.execute_script("DROP FUNCTION IF EXISTS patient_short_grams(text)")


class Migration(migrations.Migration):
    dependencies = [("models", "0006_search_indexes")]

    initial = False

    operations = [ops.RunPython(create_index, drop_index)]
