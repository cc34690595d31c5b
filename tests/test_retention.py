"""Retention: what has no further use goes PORTAL_RETENTION_DAYS after it
stopped mattering; what is still read stays (an account's newest session is
its lastSignInAt, a patient's newest invitation its portal state); audit rows
go after PORTAL_AUDIT_RETENTION_DAYS, from the start of their chain."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from models import (
    Account,
    AuditAction,
    AuditEvent,
    Invitation,
    MfaChallenge,
    OutboxMessage,
    OutboxStatus,
    Patient,
    Practice,
    ResetSource,
    ResetToken,
    Session,
    VerificationCode,
    WorkerHeartbeat,
)
from portal.services import audit, audit_chain, retention
from portal.settings import Settings
from tests.conftest import FrozenClock, GraphQLClient

STAFF = "query { staff(first: 10) { edges { node { email lastSignInAt } } } }"
PORTAL = "query P($id: ID!) { patient(id: $id) { portal { status invitedAt } } }"


def n(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


async def session(account: Account, created: datetime, *, ended: bool) -> Session:
    return await Session.create(
        account=account,
        token_hash=n("s"),
        created_at=created,
        last_seen_at=created,
        expires_at=created + timedelta(hours=12),
        ended_at=created + timedelta(hours=1) if ended else None,
    )


async def test_ended_and_expired_sessions_go_but_each_accounts_newest_stays(
    admin: GraphQLClient, admin_account: Account, settings: Settings, clock: FrozenClock
) -> None:
    now = clock.current
    long_ago = now - timedelta(days=90)
    old_ended = await session(admin_account, long_ago, ended=True)
    old_expired = await session(admin_account, long_ago + timedelta(days=1), ended=False)
    recent_ended = await session(admin_account, now - timedelta(days=3), ended=True)
    # An account that signed in once, long ago: its only session is its lastSignInAt.
    quiet = await Account.create(
        practice_id=admin_account.practice_id,
        email="quiet@north.example",
        role=admin_account.role,
        password_hash="x",
        password_changed_at=long_ago,
    )
    only = await session(quiet, long_ago, ended=True)
    before = await admin.data(STAFF)

    pruned = await retention.prune(settings)

    assert pruned.counts["sessions"] == 2
    left = set(await Session.all().values_list("id", flat=True))
    assert old_ended.id not in left and old_expired.id not in left
    assert {recent_ended.id, only.id} <= left
    assert await admin.data(STAFF) == before
    emails = {e["node"]["email"]: e["node"]["lastSignInAt"] for e in before["staff"]["edges"]}
    assert emails["quiet@north.example"] is not None


async def test_spent_replaced_and_expired_links_go_but_a_patients_newest_invitation_stays(
    admin: GraphQLClient,
    admin_account: Account,
    patient_profile: Patient,
    practice: Practice,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    now = clock.current
    old = now - timedelta(days=60)

    def invitation(created: datetime, **fields: object) -> Invitation:
        return Invitation(
            practice=practice,
            token_hash=n("i"),
            sent_to="grace@mail.example",
            created_at=created,
            expires_at=created + timedelta(days=7),
            **fields,
        )

    replaced = invitation(old, patient=patient_profile, revoked_at=old + timedelta(days=1))
    newest = invitation(old + timedelta(days=2), patient=patient_profile)
    staff_spent = invitation(old, used_at=old + timedelta(hours=1))
    staff_pending = invitation(now - timedelta(days=1))
    for row in (replaced, newest, staff_spent, staff_pending):
        await row.save()
    before = await admin.data(PORTAL, id=str(patient_profile.id))
    codes = [
        await VerificationCode.create(
            account=admin_account,
            code_hash="c",
            created_at=at,
            expires_at=at + timedelta(minutes=15),
        )
        for at in (old, now)
    ]
    tokens = [
        await ResetToken.create(
            account=admin_account,
            source=ResetSource.LINK,
            token_hash=n("t"),
            created_at=at,
            expires_at=at + timedelta(days=1),
            used_at=used,
        )
        for at, used in ((old, old), (now - timedelta(days=40), None), (now, None))
    ]
    challenges = [
        await MfaChallenge.create(
            account=admin_account,
            token_hash=n("m"),
            created_at=at,
            expires_at=at + timedelta(minutes=5),
        )
        for at in (old, now)
    ]

    pruned = await retention.prune(settings)

    assert set(await Invitation.all().values_list("id", flat=True)) == {newest.id, staff_pending.id}
    assert await admin.data(PORTAL, id=str(patient_profile.id)) == before
    assert await VerificationCode.all().values_list("id", flat=True) == [codes[1].id]
    assert await ResetToken.all().values_list("id", flat=True) == [tokens[2].id]
    assert await MfaChallenge.all().values_list("id", flat=True) == [challenges[1].id]
    assert pruned.counts["invitations"] == 2
    assert pruned.counts["verification_codes"] == 1
    assert pruned.counts["reset_tokens"] == 2
    assert pruned.counts["mfa_challenges"] == 1


async def test_settled_mail_goes_and_queued_mail_stays(
    settings: Settings, clock: FrozenClock
) -> None:
    now = clock.current
    old = now - timedelta(days=31)

    async def message(status: OutboxStatus, created: datetime, sent: datetime | None) -> uuid.UUID:
        row = await OutboxMessage.create(
            to_address="a@mail.example",
            subject="s",
            text_body="",
            html_body="",
            kind="k",
            status=status,
            created_at=created,
            next_attempt_at=created,
            sent_at=sent,
        )
        return row.id

    await message(OutboxStatus.SENT, old, old)
    await message(OutboxStatus.FAILED, old, None)
    kept = {
        await message(OutboxStatus.SENT, old, now - timedelta(days=1)),
        await message(OutboxStatus.PENDING, old, None),
    }
    await WorkerHeartbeat.create(worker_id="gone", beat_at=now - timedelta(days=2))

    pruned = await retention.prune(settings)

    assert pruned.counts["outbox_messages"] == 2
    assert set(await OutboxMessage.all().values_list("id", flat=True)) == kept
    assert not await WorkerHeartbeat.exists(worker_id="gone")


async def test_the_audit_trail_goes_only_after_its_own_retention_and_still_verifies(
    admin_account: Account, settings: Settings, clock: FrozenClock
) -> None:
    start = clock.current
    await audit.record_for_account(AuditAction.PASSWORD_CHANGED, admin_account)
    clock.advance(days=100)
    await audit.record_for_account(AuditAction.LOGOUT, admin_account)
    clock.advance(days=10)

    await retention.prune(settings)
    assert await AuditEvent.all().count() == 2  # far younger than six years

    pruned = await retention.prune(replace(settings, audit_retention_days=30))

    assert pruned.counts["audit_events"] == 1
    [kept] = await AuditEvent.all()
    assert kept.action == AuditAction.LOGOUT and kept.occurred_at > start
    assert (await audit_chain.verify()).intact


async def test_pruning_with_nothing_to_prune_changes_nothing(
    admin: GraphQLClient, settings: Settings
) -> None:
    sessions = await Session.all().count()

    pruned = await retention.prune(settings)

    assert pruned.counts["sessions"] == 0 and await Session.all().count() == sessions
