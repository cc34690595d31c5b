"""Bearer-token sessions with an idle timeout (sliding) and an absolute lifetime."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from models import Account, AuditAction, Role, Session
from portal import clock
from portal.db import AS_DATETIME, AS_UUID, Reader, Sql, Write, reading
from portal.request_context import user_agent
from portal.services import audit
from portal.services.access import Viewer
from portal.services.devices import device_of
from portal.services.tokens import keyed_hash, new_token
from portal.settings import Settings

SESSION_PURPOSE = "session"
# Sliding the idle deadline on every request would write on every request;
# once a minute is as precise as anyone needs.
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class StartedSession:
    token: str
    # When the session idles out if unused (its absolute end may come later).
    expires_at: datetime
    started_at: datetime
    viewer: Viewer


def _idle(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.session_idle_minutes)


def new_session(account: Account, settings: Settings) -> tuple[StartedSession, Write]:
    """A session for `account`, and the write that starts it (for the caller
    to run, perhaps together with others)."""
    now = clock.now()
    token = new_token()
    session_id = uuid.uuid4()
    expires_at = now + timedelta(hours=settings.session_max_hours)
    write = (
        START_SESSION,
        (
            session_id,
            account.id,
            keyed_hash(settings.secret_key, SESSION_PURPOSE, token),
            now,
            now,
            expires_at,
            device_of(user_agent() or ""),
        ),
    )
    viewer = Viewer(
        account_id=account.id,
        practice_id=account.practice_id,
        role=account.role,
        patient_id=account.patient_id,
        session_id=session_id,
    )
    started = StartedSession(
        token=token,
        expires_at=min(now + _idle(settings), expires_at),
        started_at=now,
        viewer=viewer,
    )
    return started, write


# Only for an account that is not disabled: a sign-in that checked the
# password while an ADMIN disabled the account leaves no session behind. On
# PostgreSQL the account row is locked: a disabling transaction that holds it
# makes this wait, then find it disabled; one that comes after ends the
# session it finds.
START_SESSION = Sql(
    "INSERT INTO session"
    " (id, account_id, token_hash, created_at, last_seen_at, expires_at, device)"
    " SELECT $1::uuid, $2::uuid, $3, $4::timestamptz, $5::timestamptz, $6::timestamptz, $7"
    " WHERE EXISTS (SELECT 1 FROM account WHERE id = $2::uuid AND disabled_at IS NULL"
    " FOR NO KEY UPDATE)",
    sqlite="INSERT INTO session"
    " (id, account_id, token_hash, created_at, last_seen_at, expires_at, device)"
    " SELECT $1, $2, $3, $4, $5, $6, $7"
    " WHERE EXISTS (SELECT 1 FROM account WHERE id = $2 AND disabled_at IS NULL)",
)


VIEWER_BY_TOKEN = Sql(
    "SELECT s.id AS session_id, s.last_seen_at, a.id AS account_id, a.practice_id, a.role,"
    " a.patient_id, (p.staff_mfa_required AND a.role <> 'PATIENT'"
    " AND a.mfa_enabled_at IS NULL) AS second_factor_missing"
    " FROM session s JOIN account a ON a.id = s.account_id"
    " JOIN practice p ON p.id = a.practice_id"
    " WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2"
    " AND s.last_seen_at > $3 AND a.disabled_at IS NULL",
    types={
        "session_id": AS_UUID,
        "last_seen_at": AS_DATETIME,
        "account_id": AS_UUID,
        "practice_id": AS_UUID,
        "patient_id": AS_UUID,
    },
)
TOUCH = Sql("UPDATE session SET last_seen_at = $1 WHERE id = $2")


async def viewer_for_token(
    token: str, settings: Settings, reader: Reader | None = None
) -> Viewer | None:
    """The signed-in viewer behind a bearer token, or None when the token is
    unknown, ended or expired. Using a session slides its idle deadline."""
    if not token:
        return None
    if reader is None:
        async with reading() as reader:
            return await viewer_for_token(token, settings, reader)
    now = clock.now()
    rows = await reader.fetch(
        VIEWER_BY_TOKEN,
        keyed_hash(settings.secret_key, SESSION_PURPOSE, token),
        now,
        now - _idle(settings),
    )
    if not rows:
        return None
    row = rows[0]
    if now - row["last_seen_at"] >= TOUCH_INTERVAL:
        await reader.execute(TOUCH, now, row["session_id"])
    return Viewer(
        account_id=row["account_id"],
        practice_id=row["practice_id"],
        role=Role(row["role"]),
        patient_id=row["patient_id"],
        session_id=row["session_id"],
        second_factor_missing=bool(row["second_factor_missing"]),
    )


async def logout(viewer: Viewer) -> bool:
    """Ends the viewer's session; True when it was still going."""
    ended = await Session.filter(id=viewer.session_id, ended_at__isnull=True).update(
        ended_at=clock.now()
    )
    if ended:
        await audit.record_for(viewer, AuditAction.LOGOUT)
    return ended > 0


# --- the caller's own sessions -----------------------------------------------


@dataclass(frozen=True)
class OpenSession:
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    # When it ends if unused (its absolute end may come sooner).
    expires_at: datetime
    device: str | None
    current: bool


OPEN_SESSIONS = Sql(
    "SELECT id, created_at, last_seen_at, expires_at, device FROM session"
    " WHERE account_id = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at > $3"
    " ORDER BY last_seen_at DESC, created_at DESC",
    types={
        "id": AS_UUID,
        "created_at": AS_DATETIME,
        "last_seen_at": AS_DATETIME,
        "expires_at": AS_DATETIME,
    },
)


async def open_sessions(
    viewer: Viewer, settings: Settings, reader: Reader | None = None
) -> list[OpenSession]:
    """The viewer's sessions still open, the most recently used first. Never
    a token or its hash: a session is known by its id alone."""
    if reader is None:
        async with reading() as reader:
            return await open_sessions(viewer, settings, reader)
    now = clock.now()
    idle = _idle(settings)
    found = await reader.fetch(OPEN_SESSIONS, viewer.account_id, now, now - idle)
    return [
        OpenSession(
            id=row["id"],
            created_at=row["created_at"],
            last_seen_at=row["last_seen_at"],
            expires_at=min(row["last_seen_at"] + idle, row["expires_at"]),
            device=row["device"],
            current=row["id"] == viewer.session_id,
        )
        for row in found
    ]


async def end_session(viewer: Viewer, session_id: uuid.UUID | None) -> bool:
    """Ends one of the viewer's own sessions; False for anything else (an
    unknown id, someone else's, one ended already), alike."""
    if session_id is None:
        return False
    async with in_transaction():
        ended = await Session.filter(
            id=session_id, account_id=viewer.account_id, ended_at__isnull=True
        ).update(ended_at=clock.now())
        if ended:
            await audit.record_for(viewer, AuditAction.SESSION_ENDED)
    return ended > 0


async def end_other_sessions(viewer: Viewer) -> int:
    """Ends every session of the viewer but the current one; how many ended."""
    async with in_transaction():
        ended = (
            await Session.filter(account_id=viewer.account_id, ended_at__isnull=True)
            .exclude(id=viewer.session_id)
            .update(ended_at=clock.now())
        )
        if ended:
            await audit.record_for(viewer, AuditAction.OTHER_SESSIONS_ENDED)
    return int(ended)
