"""Delivers the outbox: claim due messages with a lease, send, settle.

Any number of workers, in one process or many, may run at once: a message is
claimed by one conditional UPDATE, so exactly one worker holds it; on
PostgreSQL the candidates are also read `FOR UPDATE SKIP LOCKED` so workers
pass each other by instead of queueing on the same rows.

The promise is at least once: a worker that dies between handing a message to
the SMTP server and recording it as sent leaves its lease to lapse, and the
message is sent again, with the same Message-ID, so mail programs can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from tortoise.connection import connections
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models import OutboxMessage, OutboxStatus
from portal import clock, health, metrics
from portal.mail.transports import Transport, transport_for
from portal.settings import Settings

logger = logging.getLogger("portal.mail")

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=4)
# 1, 2, 4 … minutes, then every 4 hours: about a day from the first try to the last.
MAX_ATTEMPTS = 13
BATCH_SIZE = 20
# What handing back the leases may take when a round is cut short.
HAND_BACK_SECONDS = 1.0
# How often a worker's heartbeat is written to the database (for readiness
# checks of other processes); its rounds run more often than this.
HEARTBEAT_SECONDS = 10.0


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


async def _claim(worker_id: str, limit: int, lease: timedelta) -> list[OutboxMessage]:
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
                .update(leased_by=claim, leased_until=now + lease)
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
            leased_by=claim, leased_until=now + lease
        )
    return await OutboxMessage.filter(leased_by=claim).order_by("created_at")


async def _renew_lease(message: OutboxMessage, lease: timedelta) -> bool:
    """Extends this worker's lease right before sending; False when it lapsed."""
    now = clock.now()
    renewed = await OutboxMessage.filter(
        id=message.id, leased_by=message.leased_by, leased_until__gt=now
    ).update(leased_until=now + lease)
    return renewed > 0


async def _hand_back(claim: str) -> None:
    """Releases what a round claimed and did not settle, so another worker
    can send it now rather than after the lease."""
    with contextlib.suppress(Exception):  # the lease lapses by itself anyway
        async with asyncio.timeout(HAND_BACK_SECONDS):
            await OutboxMessage.filter(leased_by=claim, status=OutboxStatus.PENDING).update(
                leased_by=None, leased_until=None
            )


def _email(message: OutboxMessage, mail_from: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = mail_from
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_at)
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    # The same for every attempt: a copy sent again after a crash is known as one.
    email["Message-ID"] = f"<{message.id.hex}@{domain}>"
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
    transport: Transport,
    settings: Settings,
    worker_id: str,
    limit: int = BATCH_SIZE,
    stopping: asyncio.Event | None = None,
    progress: Callable[[], None] | None = None,
) -> DeliveryRound:
    """Claims up to `limit` due messages, sends them, and records the outcome.
    Once `stopping` is set it sends nothing more and hands back the rest, as
    it does when cancelled in the middle of a send."""
    outcome = DeliveryRound()
    lease = timedelta(seconds=settings.mail_lease_seconds)
    claimed = await _claim(worker_id, limit, lease)
    settled = 0
    try:
        for message in claimed:
            if stopping is not None and stopping.is_set():
                break
            await _deliver(message, transport, settings, lease, outcome)
            settled += 1
            if progress is not None:
                progress()
    finally:
        if settled < len(claimed):
            await _hand_back(claimed[0].leased_by or "")
    return outcome


async def _deliver(
    message: OutboxMessage,
    transport: Transport,
    settings: Settings,
    lease: timedelta,
    outcome: DeliveryRound,
) -> None:
    if not await _renew_lease(message, lease):
        return  # a slow batch outlived the lease: another worker has it now
    if message.discard_after is not None and message.discard_after <= clock.now():
        await _give_up(message, "expired before it could be sent", message.attempts)
        outcome.failed += 1
        metrics.DELIVERIES.labels("failed").inc()
        return
    try:
        # The whole exchange is bounded, not only each command, so the lease
        # (longer than this) always covers it.
        async with asyncio.timeout(settings.smtp_timeout_seconds):
            await transport.send(_email(message, settings.mail_from))
    except Exception as problem:  # every failure of a send is retried, whatever it is
        if await _settle_failed(message, problem):
            outcome.failed += 1
            metrics.DELIVERIES.labels("failed").inc()
        else:
            outcome.retried += 1
            metrics.DELIVERIES.labels("retried").inc()
    else:
        await _settle_sent(message)
        outcome.sent += 1
        metrics.DELIVERIES.labels("sent").inc()


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


class DeliveryWorker:
    """The delivery loop of a process, polling every few seconds, with a
    heartbeat that `/health` reads: a loop that is stuck, keeps failing or has
    died shows there, and in the log once, not on every round."""

    def __init__(self, settings: Settings, transport: Transport | None = None) -> None:
        self.settings = settings
        self.transport = transport or transport_for(settings)
        self.worker_id = new_worker_id()
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_beat = time.monotonic()
        self.failed_rounds = 0
        self._reported: str | None = None
        self.last_written_beat: float | None = None
        # The longest a healthy loop goes without progress: a send, a few
        # statements and a few polls.
        self.stale_after = (
            settings.smtp_timeout_seconds
            + 3 * settings.mail_poll_seconds
            + 3 * settings.db_statement_timeout_ms / 1000
        )

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name="mail-delivery")
        self.task.add_done_callback(self._ended)

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    async def run(self) -> None:
        """Delivers until `stopping` is set."""
        while not self.stopping.is_set():
            outcome = DeliveryRound()
            try:
                # Each round is a task of its own, so nothing a failed round
                # leaves in its context (a connection, a transaction) reaches the next.
                outcome = await asyncio.create_task(
                    deliver_due(
                        self.transport,
                        self.settings,
                        self.worker_id,
                        stopping=self.stopping,
                        progress=self.beat,
                    )
                )
                await self._write_beat()
            except Exception as problem:  # a broken round must not end the loop
                self._round_failed(problem)
            else:
                self._round_succeeded()
            if outcome.claimed == BATCH_SIZE:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stopping.wait(), timeout=self.settings.mail_poll_seconds
                )

    async def _write_beat(self) -> None:
        now = time.monotonic()
        if self.last_written_beat is None or now - self.last_written_beat >= HEARTBEAT_SECONDS:
            await health.beat(self.worker_id)
            self.last_written_beat = now

    async def stop(self, deadline: float) -> None:
        """Lets the message being sent finish, by `deadline` (monotonic) at the
        latest, then cuts the send short; what is left is handed back."""
        self.stopping.set()
        if self.task is None:
            return
        # Cut short early enough that handing back the leases fits in too.
        patience = deadline - HAND_BACK_SECONDS - time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.task), max(patience, 0))
        if not self.task.done():
            logger.warning("mail delivery cut short by shutdown; unsent mail stays queued")
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def status(self) -> str:
        """ok, stale (no progress for too long), or stopped (the loop ended)."""
        if self.task is not None and self.task.done():
            state = "stopped"
        elif time.monotonic() - self.last_beat > self.stale_after:
            state = "stale"
        else:
            state = "ok"
        if state == "stale" and self._reported != "stale":
            logger.error(
                "The mail worker has made no progress for %.0f s; queued mail is waiting.",
                time.monotonic() - self.last_beat,
            )
        self._reported = state
        return state

    def _round_failed(self, problem: Exception) -> None:
        self.failed_rounds += 1
        if self.failed_rounds == 1:
            logger.error(
                "mail delivery failed (%s); retrying every %d s, queued mail waits",
                type(problem).__name__,
                self.settings.mail_poll_seconds,
            )

    def _round_succeeded(self) -> None:
        if self.failed_rounds:
            logger.warning("mail delivery works again after %d failed rounds", self.failed_rounds)
        self.failed_rounds = 0
        self.beat()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.stopping.is_set():
            return
        problem = task.exception()
        logger.error(
            "The mail worker stopped unexpectedly (%s); mail stays queued until a restart.",
            type(problem).__name__ if problem else "no error",
        )
