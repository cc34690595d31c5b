"""Bearer-token sessions with an idle timeout (sliding) and an absolute lifetime."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from models import Account, AuditAction, Role, Session
from portal import clock
from portal.db import AS_DATETIME, AS_UUID, Reader, Row, Sql, Write, reading, shifted
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
            token_key(token, settings),
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
    token_hash = token_key(token, settings)
    rows = await reader.fetch(VIEWER_BY_TOKEN, token_hash, now, now - _idle(settings))
    if not rows:
        _remember(token_hash, None)
        return None
    row = rows[0]
    await _touch_if_due(reader, row["session_id"], row["last_seen_at"])
    viewer = _viewer_of(row)
    _remember(token_hash, viewer)
    return viewer


# --- the viewer checked within a request's first statement ------------------

# The viewer each recent token was found to be, by the token's keyed hash: a
# guess to plan a request with, never an answer. Bounded; forgotten whole
# when full (it refills at one statement per token).
_recent_viewers: dict[str, Viewer] = {}
RECENT_VIEWERS_KEPT = 10_000
_VIEWER_COLUMNS = (
    "session_id",
    "last_seen_at",
    "account_id",
    "practice_id",
    "role",
    "patient_id",
    "second_factor_missing",
)


def _viewer_of(row: Any, prefix: str = "") -> Viewer:
    return Viewer(
        account_id=row[f"{prefix}account_id"],
        practice_id=row[f"{prefix}practice_id"],
        role=Role(row[f"{prefix}role"]),
        patient_id=row[f"{prefix}patient_id"],
        session_id=row[f"{prefix}session_id"],
        second_factor_missing=bool(row[f"{prefix}second_factor_missing"]),
    )


async def _touch_if_due(reader: Reader, session_id: uuid.UUID, last_seen_at: datetime) -> None:
    """Moves the session's idle deadline on, at most once a minute."""
    now = clock.now()
    if now - last_seen_at >= TOUCH_INTERVAL:
        await reader.execute(TOUCH, now, session_id)


def _remember(token_hash: str, viewer: Viewer | None) -> None:
    if viewer is None:
        _recent_viewers.pop(token_hash, None)
        return
    if len(_recent_viewers) >= RECENT_VIEWERS_KEPT:
        _recent_viewers.clear()
    _recent_viewers[token_hash] = viewer


def token_key(token: str, settings: Settings) -> str:
    """How a session's token is known to the database (and nowhere else)."""
    return keyed_hash(settings.secret_key, SESSION_PURPOSE, token)


def recent_viewer(token_hash: str) -> Viewer | None:
    """Who the session of this `token_key` was found to be lately, in this
    process: a guess for a `Vouching` reader to check, not a sign-in."""
    return _recent_viewers.get(token_hash)


class ViewerChanged(Exception):  # noqa: N818 - an outcome, not a bug
    """The session is not what the request was planned for (ended, expired,
    or its account changed): nothing read may be answered. `viewer` is who
    it is now (None: nobody)."""

    def __init__(self, viewer: Viewer | None) -> None:
        super().__init__("the viewer changed")
        self.viewer = viewer


class Vouching:
    """A Reader for a request planned for a guessed viewer (`recent_viewer`).
    The session is looked up again within the request's first statement when
    that statement answers with one row (PostgreSQL: a join, one snapshot, one
    round trip), else by a statement of its own before it; ViewerChanged when
    it is not the guess, before anything read reaches the caller."""

    def __init__(self, reader: Reader, token_hash: str, guess: Viewer, settings: Settings) -> None:
        self.reader = reader
        self.dialect = reader.dialect
        self.guess = guess
        self.settings = settings
        self.token_hash = token_hash
        self.checked = False
        # Who the session is, once checked.
        self.found: Viewer | None = None

    def _lookup_args(self) -> tuple[Any, ...]:
        now = clock.now()
        return (self.token_hash, now, now - _idle(self.settings))

    async def _confirm(self, found: Viewer | None, last_seen_at: datetime | None) -> None:
        self.checked, self.found = True, found
        _remember(self.token_hash, found)
        if found != self.guess:
            raise ViewerChanged(found)
        assert found is not None and last_seen_at is not None
        await _touch_if_due(self.reader, found.session_id, last_seen_at)

    async def confirm(self) -> None:
        """Checks the session now unless a statement of this request did."""
        if self.checked:
            return
        rows = await self.reader.fetch(VIEWER_BY_TOKEN, *self._lookup_args())
        row = rows[0] if rows else None
        await self._confirm(_viewer_of(row) if row else None, row["last_seen_at"] if row else None)

    async def fetch(self, sql: Sql, *args: Any) -> Sequence[Row]:
        if self.checked:
            return await self.reader.fetch(sql, *args)
        if not sql.one_row or self.dialect != "postgres":
            await self.confirm()
            return await self.reader.fetch(sql, *args)
        rows = await self.reader.fetch(_with_viewer(sql, len(args)), *args, *self._lookup_args())
        row = rows[0] if rows else None
        await self._confirm(
            _viewer_of(row, "viewer_") if row else None,
            row["viewer_last_seen_at"] if row else None,
        )
        return rows

    async def execute(self, sql: Sql, *args: Any) -> int:
        await self.confirm()
        return await self.reader.execute(sql, *args)


_joined: dict[tuple[str, int], Sql] = {}


def _with_viewer(sql: Sql, arguments: int) -> Sql:
    """`sql` (one row, `arguments` placeholders) joined to the session
    lookup: no row when the session is not valid, else the viewer's columns
    (prefixed `viewer_`) beside the statement's."""
    key = (sql.text, arguments)
    joined = _joined.get(key)
    if joined is None:
        if len(_joined) >= 512:
            _joined.clear()
        names = ", ".join(f"viewer_{name}" for name in _VIEWER_COLUMNS)
        lookup = shifted(VIEWER_BY_TOKEN.text, arguments)
        joined = Sql(
            f"SELECT * FROM ({lookup}) AS viewer({names})"  # noqa: S608 - our own statements
            f" CROSS JOIN LATERAL ({sql.text}) AS asked"
        )
        _joined[key] = joined
    return joined


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
