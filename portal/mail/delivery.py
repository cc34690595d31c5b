"""Delivers the outbox: claim due messages with a lease, send, settle.

Any number of workers, in one process or many, may run at once: a message is
claimed by one conditional UPDATE, so exactly one worker holds it; on
PostgreSQL the candidates are also read `FOR UPDATE SKIP LOCKED` so workers
pass each other by instead of queueing on the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from tortoise.connection import connections
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models import OutboxMessage, OutboxStatus
from portal import clock
from portal.mail.transports import Transport, transport_for
from portal.settings import Settings

logger = logging.getLogger("portal.mail")

LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=4)
# 1, 2, 4 … minutes, then every 4 hours: about a day from the first try to the last.
MAX_ATTEMPTS = 13
BATCH_SIZE = 20


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the given number of failed attempts."""
    doublings = min(max(attempts - 1, 0), 16)  # past 16 the cap applies anyway
    return min(FIRST_RETRY * 2**doublings, LONGEST_RETRY)


@dataclass
class DeliveryRound:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def claimed(self) -> int:
        return self.sent + self.retried + self.failed


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _unleased(now: object) -> Q:
    return Q(leased_until__isnull=True) | Q(leased_until__lt=now)


async def _claim(worker_id: str, limit: int) -> list[OutboxMessage]:
    now = clock.now()
    due = Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now) & _unleased(now)
    claim = f"{worker_id}:{uuid.uuid4().hex[:8]}"
    if connections.get("default").capabilities.dialect == "postgres":
        async with in_transaction() as connection:
            ids = (
                await OutboxMessage.filter(due)
                .order_by("created_at")
                .limit(limit)
                .select_for_update(skip_locked=True)
                .using_db(connection)
                .values_list("id", flat=True)
            )
            await (
                OutboxMessage.filter(due, id__in=list(ids))
                .using_db(connection)
                .update(leased_by=claim, leased_until=now + LEASE)
            )
    else:
        ids = (
            await OutboxMessage.filter(due)
            .order_by("created_at")
            .limit(limit)
            .values_list("id", flat=True)
        )
        # One UPDATE is atomic on SQLite: a row another worker leased in the
        # meantime no longer matches `due` and stays theirs.
        await OutboxMessage.filter(due, id__in=list(ids)).update(
            leased_by=claim, leased_until=now + LEASE
        )
    return await OutboxMessage.filter(leased_by=claim).order_by("created_at")


async def _renew_lease(message: OutboxMessage) -> bool:
    """Extends this worker's lease right before sending; False when it lapsed."""
    now = clock.now()
    renewed = await OutboxMessage.filter(
        id=message.id, leased_by=message.leased_by, leased_until__gt=now
    ).update(leased_until=now + LEASE)
    return renewed > 0


def _email(message: OutboxMessage, mail_from: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = mail_from
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_at)
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    email["Message-ID"] = make_msgid(idstring=message.id.hex, domain=domain)
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    return email


async def _settle_sent(message: OutboxMessage) -> None:
    # The content can hold a one-time link: erased as soon as it has left.
    await OutboxMessage.filter(id=message.id, leased_by=message.leased_by).update(
        status=OutboxStatus.SENT,
        sent_at=clock.now(),
        attempts=message.attempts + 1,
        text_body="",
        html_body="",
        leased_by=None,
        leased_until=None,
        last_error=None,
    )


async def _settle_failed(message: OutboxMessage, problem: Exception) -> bool:
    """Schedules a retry, or gives up; True when it gave up."""
    attempts = message.attempts + 1
    # The type and SMTP code say what went wrong; the text may quote an address.
    error = type(problem).__name__
    code = getattr(problem, "code", None)
    if isinstance(code, int):
        error = f"{error} {code}"
    if attempts >= MAX_ATTEMPTS:
        await _give_up(message, error, attempts)
        return True
    await OutboxMessage.filter(id=message.id, leased_by=message.leased_by).update(
        attempts=attempts,
        leased_by=None,
        leased_until=None,
        last_error=error,
        next_attempt_at=clock.now() + retry_delay(attempts),
    )
    logger.warning(
        "mail %s (%s) attempt %d failed (%s); retrying", message.id, message.kind, attempts, error
    )
    return False


async def _give_up(message: OutboxMessage, error: str, attempts: int) -> None:
    await OutboxMessage.filter(id=message.id, leased_by=message.leased_by).update(
        status=OutboxStatus.FAILED,
        text_body="",
        html_body="",
        attempts=attempts,
        leased_by=None,
        leased_until=None,
        last_error=error,
    )
    logger.error(
        "mail %s (%s) failed for good after %d attempts: %s",
        message.id,
        message.kind,
        attempts,
        error,
    )


async def deliver_due(
    transport: Transport, settings: Settings, worker_id: str, limit: int = BATCH_SIZE
) -> DeliveryRound:
    """Claims up to `limit` due messages, sends them, and records the outcome."""
    outcome = DeliveryRound()
    for message in await _claim(worker_id, limit):
        if not await _renew_lease(message):
            continue  # a slow batch outlived the lease: another worker has it now
        if message.discard_after is not None and message.discard_after <= clock.now():
            await _give_up(message, "expired before it could be sent", message.attempts)
            outcome.failed += 1
            continue
        try:
            await transport.send(_email(message, settings.mail_from))
        except Exception as problem:  # every failure of a send is retried, whatever it is
            if await _settle_failed(message, problem):
                outcome.failed += 1
            else:
                outcome.retried += 1
        else:
            await _settle_sent(message)
            outcome.sent += 1
    return outcome


async def drain(settings: Settings, transport: Transport | None = None) -> DeliveryRound:
    """Delivers everything due now, then returns (`portal deliver-mail --once`)."""
    transport = transport or transport_for(settings)
    worker_id = new_worker_id()
    total = DeliveryRound()
    while True:
        outcome = await deliver_due(transport, settings, worker_id)
        total.sent += outcome.sent
        total.retried += outcome.retried
        total.failed += outcome.failed
        if outcome.claimed == 0:
            return total


async def run_delivery_loop(settings: Settings, stop: asyncio.Event) -> None:
    """Delivers mail until `stop` is set, polling every few seconds."""
    transport = transport_for(settings)
    worker_id = new_worker_id()
    while not stop.is_set():
        outcome = DeliveryRound()
        try:
            outcome = await deliver_due(transport, settings, worker_id)
        except Exception as problem:  # a broken round must not end the loop
            logger.error("mail delivery round failed: %s", type(problem).__name__)
        if outcome.claimed == BATCH_SIZE:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.mail_poll_seconds)
