"""The audit trail is tamper-evident: each practice's rows form a hash chain
keyed by PORTAL_SECRET_KEY; `verify` names the first row changed, removed or
inserted out of order; the database refuses changes and deletions but
sealing and pruning; pruning leaves a chain that still verifies."""

from __future__ import annotations

import asyncio
import hmac
import importlib
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tortoise.connection import connections
from tortoise.exceptions import OperationalError, TransactionManagementError

from models import Account, AuditAction, AuditChain, AuditEvent, Practice, Role
from portal.services import audit, audit_chain
from portal.settings import Settings
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient

GUARD = importlib.import_module("models.migrations.0013_audit_chain_and_retention")
WRONG = "not-the-password-at-all"
CREATE_PATIENT = """
mutation Create($input: CreatePatientInput!) {
  createPatient(input: $input) { __typename ... on PatientCreated { patient { id } } }
}
"""


def new_patient(n: int) -> dict[str, str]:
    return {"firstName": f"Ada{n}", "lastName": "Lovelace", "email": f"ada{n}@mail.example"}


async def a_day_of_work(admin: GraphQLClient, anonymous: GraphQLClient, clock: FrozenClock) -> None:
    """Sign-ins good and bad, patients created: rows in two chains (the
    practice's, and "no practice" for a sign-in at an unknown practice)."""
    for n in range(3):
        clock.advance(minutes=1)
        created = await admin.data(CREATE_PATIENT, input=new_patient(n))
        assert created["createPatient"]["__typename"] == "PatientCreated"
    await anonymous.post(
        'mutation { login(practice: "north", email: "admin@north.example",'
        f' password: "{WRONG}") {{ __typename }} }}'
    )
    await anonymous.post(
        'mutation { login(practice: "nowhere", email: "a@b.example", password: "x")'
        " { __typename } }"
    )


async def rows(practice: Practice | None) -> list[AuditEvent]:
    found = AuditEvent.filter(practice_id=practice.id if practice else None)
    return await found.order_by("seq")


async def tamper(sql: str) -> None:
    """What someone with the database's keys could do: the triggers off."""
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        await client.execute_script(
            f"SET session_replication_role = replica; {sql}; SET session_replication_role = origin"
        )
        return
    await client.execute_script("DROP TRIGGER audit_event_append_only")
    await client.execute_script("DROP TRIGGER audit_event_prune_only")
    try:
        await client.execute_script(sql)
    finally:
        for statement in GUARD.SQLITE_GUARD:
            await client.execute_script(statement)


def problems(verification: audit_chain.Verification) -> dict[str, str | None]:
    return {report.chain: report.problem for report in verification.chains}


async def test_sealed_rows_form_one_chain_per_practice_that_verifies(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Practice, clock: FrozenClock
) -> None:
    await a_day_of_work(admin, anonymous, clock)

    sealed = await audit_chain.seal()

    ours = await rows(practice)
    assert sealed == len(ours) + len(await rows(None)) and len(ours) >= 5
    assert [row.seq for row in ours] == list(range(1, len(ours) + 1))
    assert all(row.chain_mac and row.row_mac for row in ours)
    head = await AuditChain.get(chain=str(practice.id))
    assert (head.last_seq, head.last_mac) == (len(ours), ours[-1].chain_mac)
    verification = await audit_chain.verify()
    assert verification.intact, problems(verification)
    assert {str(practice.id), audit_chain.NO_PRACTICE} <= set(problems(verification))


async def test_rows_not_sealed_yet_are_checked_by_their_own_mac(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Practice, clock: FrozenClock
) -> None:
    await a_day_of_work(admin, anonymous, clock)
    [first, *_] = await AuditEvent.filter(practice_id=practice.id).order_by("occurred_at")

    await tamper(f"UPDATE audit_event SET client_ip = '10.9.9.9' WHERE id = '{first.id}'")

    verification = await audit_chain.verify()
    assert (
        problems(verification)[str(practice.id)] == f"row {first.id} (not sealed yet) was changed"
    )


async def test_a_changed_row_is_named(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Practice, clock: FrozenClock
) -> None:
    await a_day_of_work(admin, anonymous, clock)
    await audit_chain.seal()
    changed = (await rows(practice))[2]

    await tamper(f"UPDATE audit_event SET action = 'LOGOUT' WHERE id = '{changed.id}'")

    report = problems(await audit_chain.verify())
    assert report[str(practice.id)] == f"row {changed.id} (seq 3) was changed"
    assert report[audit_chain.NO_PRACTICE] is None


async def test_a_removed_row_is_named_by_the_row_after_it(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Practice, clock: FrozenClock
) -> None:
    await a_day_of_work(admin, anonymous, clock)
    await audit_chain.seal()
    chain = await rows(practice)

    await tamper(f"DELETE FROM audit_event WHERE id = '{chain[1].id}'")

    report = problems(await audit_chain.verify())
    assert report[str(practice.id)] == f"row 2 removed before row {chain[2].id}"


async def test_removing_the_newest_rows_is_noticed_by_the_head(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Practice, clock: FrozenClock
) -> None:
    await a_day_of_work(admin, anonymous, clock)
    await audit_chain.seal()
    chain = await rows(practice)

    await tamper(f"DELETE FROM audit_event WHERE id = '{chain[-1].id}'")

    report = problems(await audit_chain.verify())
    n = len(chain)
    assert report[str(practice.id)] == (
        f"rows {n}..{n} were removed after row {chain[-2].id} (the head is at seq {n})"
    )


async def test_rows_swapped_in_the_chain_are_out_of_order(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Practice, clock: FrozenClock
) -> None:
    await a_day_of_work(admin, anonymous, clock)
    await audit_chain.seal()
    chain = await rows(practice)
    second, third = chain[1], chain[2]

    await tamper(
        f"UPDATE audit_event SET seq = -1 WHERE id = '{second.id}';"
        f" UPDATE audit_event SET seq = 2 WHERE id = '{third.id}';"
        f" UPDATE audit_event SET seq = 3 WHERE id = '{second.id}'"
    )

    report = problems(await audit_chain.verify())
    assert report[str(practice.id)] == (
        f"row {third.id} (seq 2) was inserted out of order or its predecessor was changed"
    )


async def test_a_forged_row_is_named(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Practice, clock: FrozenClock
) -> None:
    await a_day_of_work(admin, anonymous, clock)
    forged = uuid.uuid4()
    # Written as the service writes rows, but with a made-up MAC.
    await tamper(
        "INSERT INTO audit_event (id, practice_id, action, occurred_at, row_mac) VALUES"
        f" ('{forged}', '{practice.id}', 'LOGOUT', '2020-01-01T00:00:00+00:00', '{'0' * 64}')"
    )
    await audit_chain.seal()

    report = problems(await audit_chain.verify())
    assert report[str(practice.id)] == f"row {forged} (seq 1) was changed"


async def test_the_database_refuses_to_change_or_delete_audit_rows(
    admin: GraphQLClient, practice: Practice
) -> None:
    await audit_chain.seal()
    [event, *_] = await rows(practice)
    client = connections.get("default")
    refused = (OperationalError, TransactionManagementError, Exception)

    for statement in (
        f"UPDATE audit_event SET client_ip = '10.0.0.1' WHERE id = '{event.id}'",
        f"UPDATE audit_event SET chain_mac = '{'0' * 64}' WHERE id = '{event.id}'",
        f"UPDATE audit_event SET seq = NULL, chain_mac = NULL WHERE id = '{event.id}'",
        f"DELETE FROM audit_event WHERE id = '{event.id}'",
    ):
        with pytest.raises(refused) as problem:
            await client.execute_script(statement)
        assert "audit_event rows" in str(problem.value)
    if client.capabilities.dialect == "postgres":
        with pytest.raises(refused):
            await client.execute_script("TRUNCATE audit_event")

    assert await AuditEvent.get(id=event.id) == event
    assert (await AuditEvent.get(id=event.id)).client_ip == event.client_ip
    assert (await audit_chain.verify()).intact


async def test_pruning_the_trail_keeps_a_chain_that_verifies(
    admin_account: Account, practice: Practice, clock: FrozenClock, settings: object
) -> None:
    start = clock.current
    for _ in range(5):
        await audit.record_for_account(AuditAction.PASSWORD_CHANGED, admin_account)
        clock.advance(days=1)
    await audit_chain.seal()
    # More rows come later, after the first seal.
    for _ in range(3):
        await audit.record_for_account(AuditAction.LOGOUT, admin_account)

    removed = await audit_chain.prune(before=start + timedelta(days=2, hours=12), batch=2)

    assert removed == 3
    kept = await rows(practice)
    assert [row.seq for row in kept] == [4, 5, 6, 7, 8]
    head = await AuditChain.get(chain=str(practice.id))
    assert (head.origin_seq, head.last_seq) == (4, 8)
    verification = await audit_chain.verify()
    assert verification.intact, problems(verification)
    # Removing the new first row now is noticed: the head says where the chain starts.
    await tamper(f"DELETE FROM audit_event WHERE id = '{kept[0].id}'")
    report = problems(await audit_chain.verify())
    assert report[str(practice.id)] == f"row 4 removed before row {kept[1].id}"


async def test_a_head_rolled_back_or_edited_is_noticed(
    admin: GraphQLClient, practice: Practice
) -> None:
    await audit_chain.seal()

    await AuditChain.filter(chain=str(practice.id)).update(origin_seq=2)

    report = problems(await audit_chain.verify())
    assert report[str(practice.id)] == "its head (audit_chain) was changed"


async def test_a_removed_head_or_a_row_slipped_in_before_the_start_is_noticed(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Practice, clock: FrozenClock
) -> None:
    await a_day_of_work(admin, anonymous, clock)
    await audit_chain.seal()
    [first, *_] = await rows(practice)
    await tamper(f"UPDATE audit_event SET seq = 0 WHERE id = '{first.id}'")

    report = problems(await audit_chain.verify())
    assert report[str(practice.id)] == (
        f"row {first.id} (seq 0) was inserted before where the chain starts (seq 1)"
    )

    await AuditChain.filter(chain=str(practice.id)).delete()

    report = problems(await audit_chain.verify())
    assert report[str(practice.id)] == "its head (audit_chain) was removed"


async def test_concurrent_writers_and_sealers_make_one_valid_chain(
    practice: Practice, other_practice: Practice
) -> None:
    accounts = [
        await factories.make_staff(practice, Role.ADMIN, email="a@north.example"),
        await factories.make_staff(other_practice, Role.ADMIN, email="a@south.example"),
    ]

    async def write(n: int) -> None:
        for _ in range(n):
            for account in accounts:
                await audit.record_for_account(AuditAction.PASSWORD_CHANGED, account)
            await asyncio.sleep(0)

    async def keep_sealing() -> None:
        for _ in range(20):
            await audit_chain.seal(batch=3)
            await asyncio.sleep(0)

    await asyncio.gather(write(10), write(10), keep_sealing(), keep_sealing(), keep_sealing())
    await audit_chain.seal()

    for place in (practice, other_practice):
        chain = await rows(place)
        assert [row.seq for row in chain] == list(range(1, 21))
    verification = await audit_chain.verify()
    assert verification.intact, problems(verification)


WRITE_AND_SEAL = """
import asyncio, sys, uuid
from models import AuditAction
from portal import db
from portal.services import audit, audit_chain
from portal.settings import Settings
from portal.settings import Settings

async def main():
    settings = Settings.from_env()
    audit_chain.configure(settings)
    practices = [uuid.UUID(p) for p in sys.argv[1:]]
    async with db.connected(settings):
        for _ in range(15):
            for practice in practices:
                await audit.record(AuditAction.PASSWORD_CHANGED, practice_id=practice)
            await audit_chain.seal(batch=4)
        await audit_chain.seal()

asyncio.run(main())
"""


async def test_writers_and_sealers_in_several_processes_make_one_valid_chain(
    settings: Settings, practice: Practice, other_practice: Practice
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
        "DATABASE_URL": settings.database_url,
        "PORTAL_SECRET_KEY": settings.secret_key,
    }
    started = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITE_AND_SEAL,
            str(practice.id),
            str(other_practice.id),
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for process in started:
        _, errors = await process.communicate()
        assert process.returncode == 0, errors.decode()[-2000:]

    for place in (practice, other_practice):
        assert [row.seq for row in await rows(place)] == list(range(1, 46))
    verification = await audit_chain.verify()
    assert verification.intact, problems(verification)


@given(
    st.lists(
        st.one_of(st.none(), st.text(), st.integers(), st.booleans(), st.floats(allow_nan=False))
    ),
    st.binary(min_size=32, max_size=32),
)
def test_a_mac_covers_what_it_covered_before(parts: list[object], key: bytes) -> None:
    # Rows sealed by earlier versions must verify: not one byte may differ.
    spelled_before = json.dumps(parts, separators=(",", ":"), ensure_ascii=True).encode()

    assert audit_chain.canonical_json(parts) == spelled_before
    assert audit_chain._mac(key, parts) == hmac.new(key, spelled_before, "sha256").hexdigest()


@given(st.datetimes(timezones=st.one_of(st.none(), st.timezones())))
def test_a_moment_a_mac_covers_is_spelled_as_before(moment: datetime) -> None:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        in_utc = aware.astimezone(UTC)
    except OverflowError:  # beyond year 1 or 9999 in UTC: no row holds one
        return

    assert audit_chain.content(
        {**dict.fromkeys(audit_chain.CONTENT_COLUMNS), "occurred_at": moment}
    )[audit_chain.CONTENT_COLUMNS.index("occurred_at")] == in_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
