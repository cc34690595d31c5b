"""Bearer-token sessions with an idle timeout (sliding) and an absolute lifetime."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models import Account, AuditAction, Session
from portal import clock
from portal.services import audit
from portal.services.access import Viewer
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
    viewer: Viewer


def _idle(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.session_idle_minutes)


async def start_session(account: Account, settings: Settings) -> StartedSession:
    now = clock.now()
    token = new_token()
    session = await Session.create(
        account=account,
        token_hash=keyed_hash(settings.secret_key, SESSION_PURPOSE, token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_max_hours),
    )
    return StartedSession(
        token=token, expires_at=idle_deadline(session, settings), viewer=_viewer(account, session)
    )


def idle_deadline(session: Session, settings: Settings) -> datetime:
    """When the session ends if it is not used again."""
    return min(session.last_seen_at + _idle(settings), session.expires_at)


async def viewer_for_token(token: str, settings: Settings) -> Viewer | None:
    """The signed-in viewer behind a bearer token, or None when the token is
    unknown, ended or expired. Using a session slides its idle deadline."""
    if not token:
        return None
    now = clock.now()
    session = (
        await Session.filter(
            token_hash=keyed_hash(settings.secret_key, SESSION_PURPOSE, token),
            ended_at__isnull=True,
            expires_at__gt=now,
            last_seen_at__gt=now - _idle(settings),
        )
        .select_related("account")
        .first()
    )
    if session is None:
        return None
    if now - session.last_seen_at >= TOUCH_INTERVAL:
        await Session.filter(id=session.id).update(last_seen_at=now)
    return _viewer(session.account, session)


def _viewer(account: Account, session: Session) -> Viewer:
    return Viewer(
        account_id=account.id,
        practice_id=account.practice_id,
        role=account.role,
        patient_id=account.patient_id,
        session_id=session.id,
    )


async def logout(viewer: Viewer) -> bool:
    """Ends the viewer's session; True when it was still going."""
    ended = await Session.filter(id=viewer.session_id, ended_at__isnull=True).update(
        ended_at=clock.now()
    )
    if ended:
        await audit.record_for(viewer, AuditAction.LOGOUT)
    return ended > 0
