"""How many patients of each practice hold each character and pair of
characters, kept by the database as patients change (PostgreSQL only).

A search of one or two letters found in nearly every patient ("ma" of
"mail.example") had to read every row of the practice to count its matches,
which is most of a request's time at 100,000 patients. Such a term is
matched exactly when it is one of the grams migration 0007 indexes, so its
count is this table's row for the practice and the gram.

Statement-level triggers keep the counts: a statement's rows are summed per
gram and each count is written once, in gram order, so writers that touch the
same grams queue on them in the same order and never deadlock. Creating a
patient writes a few dozen counts, and patients of one practice are created
one after another while the transaction that writes them is open, which
staff typing profiles never notice. SQLite counts by reading its rows."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops


# The expression is the one migration 0007 indexes, word for word, so the
# counts are of exactly what the index finds.
def grams_of(row: str) -> str:
    return (
        f"patient_short_grams({row}.first_name_key || ' ' || {row}.last_name_key"
        f" || ' ' || coalesce({row}.email, ''))"
    )


CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS patient_short_gram_count (
    practice_id uuid NOT NULL REFERENCES practice (id) ON DELETE CASCADE,
    gram text NOT NULL,
    patients integer NOT NULL,
    PRIMARY KEY (practice_id, gram)
)
"""

# `changed` holds each statement's rows with +1 for what it added and -1 for
# what it removed. The join to practice skips the counts of a practice being
# deleted, whose rows go with it.
APPLY_CHANGES = f"""
INSERT INTO patient_short_gram_count AS counted (practice_id, gram, patients)
SELECT changed.practice_id, gram, sum(changed.change)
FROM changed
    JOIN practice ON practice.id = changed.practice_id,
    unnest({grams_of("changed")}) AS gram
GROUP BY changed.practice_id, gram
HAVING sum(changed.change) <> 0
ORDER BY changed.practice_id, gram
ON CONFLICT (practice_id, gram)
    DO UPDATE SET patients = counted.patients + excluded.patients
"""  # noqa: S608 (constant words only)

CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION patient_short_gram_count_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH changed AS (SELECT *, 1 AS change FROM added)
        {APPLY_CHANGES};
    ELSIF TG_OP = 'DELETE' THEN
        WITH changed AS (SELECT *, -1 AS change FROM removed)
        {APPLY_CHANGES};
    ELSIF TG_OP = 'UPDATE' THEN
        WITH changed AS (
            SELECT *, 1 AS change FROM added UNION ALL SELECT *, -1 AS change FROM removed
        )
        {APPLY_CHANGES};
    ELSE
        DELETE FROM patient_short_gram_count;
    END IF;
    RETURN NULL;
END
$$
"""  # noqa: S608 (constant words only)

CREATE_TRIGGERS = """
CREATE TRIGGER patient_short_gram_count_insert AFTER INSERT ON patient
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION patient_short_gram_count_follow();
CREATE TRIGGER patient_short_gram_count_update AFTER UPDATE ON patient
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION patient_short_gram_count_follow();
CREATE TRIGGER patient_short_gram_count_delete AFTER DELETE ON patient
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION patient_short_gram_count_follow();
CREATE TRIGGER patient_short_gram_count_truncate AFTER TRUNCATE ON patient
    FOR EACH STATEMENT EXECUTE FUNCTION patient_short_gram_count_follow();
"""

# The patients already there, counted once; the lock keeps them as they are
# until the triggers are in place.
COUNT_EXISTING = f"""
LOCK TABLE patient IN SHARE MODE;
INSERT INTO patient_short_gram_count (practice_id, gram, patients)
SELECT practice_id, gram, count(*) FROM patient, unnest({grams_of("patient")}) AS gram
GROUP BY practice_id, gram
"""  # noqa: S608 (constant words only)


async def create_counts(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    # One script is one transaction: no patient changes between the count of
    # those there and the triggers that follow the rest.
    await client.execute_script(
        ";".join((CREATE_TABLE, CREATE_FUNCTION, COUNT_EXISTING, CREATE_TRIGGERS))
    )


async def drop_counts(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    for event in ("insert", "update", "delete", "truncate"):
        await client.execute_script(
            f"DROP TRIGGER IF EXISTS patient_short_gram_count_{event} ON patient"
        )
    await client.execute_script("DROP FUNCTION IF EXISTS patient_short_gram_count_follow()")
    await client.execute_script("DROP TABLE IF EXISTS patient_short_gram_count")


class Migration(migrations.Migration):
    dependencies = [("models", "0011_sessions_by_account")]

    initial = False

    operations = [ops.RunPython(create_counts, drop_counts)]
