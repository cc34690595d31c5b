"""The transactional outbox and its delivery worker: mail is written with the
change that causes it, and delivered later, once, with retries that back off
while the SMTP server is away. Time moves with the frozen clock, never sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import logging
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from tortoise.transactions import in_transaction

from models import OutboxMessage, OutboxStatus, Patient, Practice
from portal.mail import delivery
from portal.mail.delivery import MAX_ATTEMPTS, DeliveryRound, retry_delay
from portal.mail.outbox import enqueue
from portal.settings import Settings
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient, Mailbox, SmtpServer, free_port
from tests.mail import link_in, text_of, token_in
from tests.processes import Cluster

Deliver = Callable[[], Awaitable[DeliveryRound]]

SEND_INVITATION = """
mutation Send($id: ID!) {
  sendInvitation(patientId: $id) {
    __typename
    ... on InvitationSent { sentTo }
    ... on Error { code message }
  }
}
"""


def invitation_context(
    link: str = "https://portal.test/north/sign-up?token=t0k3n",
) -> dict[str, Any]:
    return {
        "first_name": "Ada",
        "practice_name": "North Street Practice",
        "link": link,
        "expires_at": "1 January 2030, 12:00 UTC",
    }


async def test_an_smtp_outage_delays_the_invitation_but_does_not_fail_the_request(
    clock: FrozenClock,
    admin: GraphQLClient,
    patient_profile: Patient,
    smtp_server: SmtpServer,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    smtp_server.down()

    result = await admin.data(SEND_INVITATION, id=str(patient_profile.id))

    assert result["sendInvitation"] == {
        "__typename": "InvitationSent",
        "sentTo": "grace@mail.example",
    }
    outage = await deliver_mail()
    assert (outage.sent, outage.retried, outage.failed) == (0, 1, 0)
    queued = await OutboxMessage.get(kind="invitation")
    assert queued.status == OutboxStatus.PENDING
    assert queued.attempts == 1
    assert queued.next_attempt_at == clock.now() + retry_delay(1) > clock.now()
    assert queued.last_error
    assert "grace" not in queued.last_error.lower()
    assert queued.text_body  # kept until it has left
    assert mailbox.messages == []

    smtp_server.up()
    clock.advance(minutes=2)
    outcome = await deliver_mail()

    assert (outcome.sent, outcome.retried, outcome.failed) == (1, 0, 0)
    [message] = mailbox.messages
    assert message["To"] == "grace@mail.example"
    assert link_in(message).startswith("https://portal.test/north/sign-up?token=")
    assert (await deliver_mail()).claimed == 0
    clock.advance(hours=30)
    assert (await deliver_mail()).claimed == 0
    assert len(mailbox.messages) == 1


def test_retry_delays_double_from_a_minute_up_to_four_hours_over_about_a_day() -> None:
    delays = [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]

    assert delays[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert all(a <= b for a, b in zip(delays, delays[1:], strict=False))
    assert max(delays) == timedelta(hours=4)
    assert retry_delay(100) == retry_delay(10**6) == timedelta(hours=4)
    assert timedelta(hours=20) <= sum(delays, timedelta()) <= timedelta(hours=30)


async def test_failures_back_off_then_give_up_after_about_a_day_erasing_the_content(
    clock: FrozenClock,
    smtp_server: SmtpServer,
    mailbox: Mailbox,
    deliver_mail: Deliver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="portal.mail")
    smtp_server.down()
    queued = await enqueue("invitation", "ada@mail.example", invitation_context())
    first_try = clock.now()
    last_try = first_try
    delays = []

    for attempt in range(1, MAX_ATTEMPTS + 1):
        last_try = clock.now()
        assert (await deliver_mail()).claimed == 1, f"attempt {attempt} was not made"
        row = await OutboxMessage.get(id=queued.id)
        assert row.attempts == attempt
        if attempt == MAX_ATTEMPTS:
            break
        assert row.status == OutboxStatus.PENDING
        delay = row.next_attempt_at - clock.now()
        delays.append(delay)
        # Not a moment early: one second before it is due, nothing is tried.
        clock.advance(seconds=(delay - timedelta(seconds=1)).total_seconds())
        assert (await deliver_mail()).claimed == 0
        clock.advance(seconds=1)

    assert delays == [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert delays[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert max(delays) == timedelta(hours=4)
    assert timedelta(hours=20) <= last_try - first_try <= timedelta(hours=30)
    failed = await OutboxMessage.get(id=queued.id)
    assert failed.status == OutboxStatus.FAILED
    assert (failed.text_body, failed.html_body) == ("", "")
    assert failed.sent_at is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(queued.id) in errors[0].getMessage()
    assert all("ada@mail.example" not in r.getMessage() for r in caplog.records)
    assert "ada@mail.example" not in caplog.text

    smtp_server.up()
    clock.advance(days=7)
    assert (await deliver_mail()).claimed == 0
    assert mailbox.messages == []


async def test_a_sent_message_keeps_no_content_and_so_no_one_time_link(
    clock: FrozenClock,
    admin: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    queued = await OutboxMessage.get(kind="invitation")
    assert "sign-up?token=" in queued.text_body

    clock.advance(seconds=3)
    await deliver_mail()

    token = token_in(mailbox.messages[0])
    sent = await OutboxMessage.get(id=queued.id)
    assert sent.status == OutboxStatus.SENT
    assert sent.sent_at == clock.now()
    assert sent.attempts == 1
    assert (sent.text_body, sent.html_body) == ("", "")
    assert (sent.leased_by, sent.leased_until, sent.last_error) == (None, None, None)
    row = (await OutboxMessage.filter(id=queued.id).values())[0]
    stored = " ".join(str(value) for value in row.values())
    assert token not in stored


async def test_a_message_leased_by_one_worker_waits_for_the_lease_to_expire(
    clock: FrozenClock, mailbox: Mailbox, deliver_mail: Deliver, settings: Settings
) -> None:
    queued = await enqueue("invitation", "ada@mail.example", invitation_context())
    lease = timedelta(seconds=settings.mail_lease_seconds)

    [claimed] = await delivery._claim("worker-a", 10, lease)  # worker-a then stalls

    assert claimed.id == queued.id
    assert (await deliver_mail()).claimed == 0
    clock.advance(seconds=(lease - timedelta(seconds=1)).total_seconds())
    assert (await deliver_mail()).claimed == 0
    assert mailbox.messages == []

    clock.advance(seconds=2)
    outcome = await deliver_mail()

    assert outcome.sent == 1
    assert len(mailbox.to("ada@mail.example")) == 1
    # The stalled worker wakes up and reports a failure: the message it no
    # longer holds stays sent, and is not sent again.
    await delivery._settle_failed(claimed, OSError("late"))
    row = await OutboxMessage.get(id=queued.id)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.SENT, 1, None)
    clock.advance(hours=1)
    assert (await deliver_mail()).claimed == 0
    assert len(mailbox.messages) == 1


async def test_workers_running_at_once_send_each_message_exactly_once(
    settings: Settings, mailbox: Mailbox
) -> None:
    addresses = [f"person{n}@mail.example" for n in range(30)]
    for address in addresses:
        await enqueue("invitation", address, invitation_context())

    rounds = await asyncio.gather(*(delivery.drain(settings) for _ in range(4)))

    assert sum(r.sent for r in rounds) == 30
    assert sum(r.retried + r.failed for r in rounds) == 0
    assert Counter(str(m["To"]) for m in mailbox.messages) == Counter(addresses)
    message_ids = Counter(str(m["Message-ID"]) for m in mailbox.messages)
    assert len(message_ids) == 30 and set(message_ids.values()) == {1}
    assert await OutboxMessage.filter(status=OutboxStatus.SENT).count() == 30


class SlowTransport:
    """An SMTP server that takes `seconds` of frozen-clock time per message;
    `during` runs (once) when the batch has lasted longer than the lease."""

    def __init__(
        self,
        clock: FrozenClock,
        seconds: float,
        lease: timedelta,
        during: Callable[[], Awaitable[object]],
    ) -> None:
        self.clock = clock
        self.lease = lease
        self.seconds = seconds
        self.during = during
        self.started = clock.now()
        self.sent: list[str] = []
        self.interrupted = False

    async def send(self, message: EmailMessage) -> None:
        self.clock.advance(seconds=self.seconds)
        self.sent.append(str(message["To"]))
        if not self.interrupted and self.clock.now() - self.started > self.lease:
            self.interrupted = True
            await self.during()


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(str(message["To"]))


async def test_a_slow_batch_is_not_sent_again_by_a_second_worker(
    clock: FrozenClock, settings: Settings
) -> None:
    addresses = [f"slow{n}@mail.example" for n in range(delivery.BATCH_SIZE)]
    for address in addresses:
        await enqueue("invitation", address, invitation_context())
        clock.advance(seconds=1)
    second = RecordingTransport()

    async def second_worker() -> None:
        await delivery.deliver_due(second, settings, "worker-b")

    # 20 s a message, well within the 30 s SMTP timeout: the batch outlives the lease.
    lease = timedelta(seconds=settings.mail_lease_seconds)
    first = SlowTransport(clock, seconds=20, lease=lease, during=second_worker)
    await delivery.deliver_due(first, settings, "worker-a")
    clock.advance(seconds=1)
    await second_worker()

    assert len(first.sent) < len(addresses)  # it let go of what its lease no longer covered
    assert Counter(first.sent + second.sent) == Counter(addresses)


async def test_without_smtp_url_mail_is_written_as_eml_files(
    settings: Settings,
    admin: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="portal.mail")
    offline = dataclasses.replace(settings, smtp_url=None, mail_dir=tmp_path / "mail")
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))

    outcome = await delivery.drain(offline)

    assert outcome.sent == 1
    [path] = (tmp_path / "mail").glob("*.eml")
    written = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(written, email.message.EmailMessage)
    assert written["To"] == "grace@mail.example"
    assert link_in(written).startswith("https://portal.test/north/sign-up?token=")
    assert "Grace" in text_of(written)
    assert any(str(path) in r.getMessage() for r in caplog.records)
    assert mailbox.messages == []
    assert (await OutboxMessage.get(kind="invitation")).status == OutboxStatus.SENT


async def test_no_mail_is_queued_for_a_request_that_failed(
    admin: GraphQLClient, practice: Practice, mailbox: Mailbox, deliver_mail: Deliver
) -> None:
    no_email = await factories.make_patient(practice, email=None)

    result = await admin.data(SEND_INVITATION, id=str(no_email.id))

    assert result["sendInvitation"]["code"] == "MISSING_EMAIL"
    assert await OutboxMessage.all().count() == 0
    assert (await deliver_mail()).claimed == 0
    assert mailbox.messages == []


async def test_mail_queued_in_a_transaction_that_rolls_back_is_never_sent(
    mailbox: Mailbox, deliver_mail: Deliver
) -> None:
    with pytest.raises(RuntimeError):
        async with in_transaction():
            await enqueue("invitation", "ada@mail.example", invitation_context())
            raise RuntimeError("the change failed after the mail was queued")

    assert await OutboxMessage.all().count() == 0
    assert (await deliver_mail()).claimed == 0
    assert mailbox.messages == []


def _sqlite_timestamp(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="microseconds")


def _queue_directly(database: Path, address: str) -> str:
    """A due message written straight into a service's SQLite outbox; its id."""
    message_id = str(uuid.uuid4())
    due = _sqlite_timestamp(datetime.now(UTC) - timedelta(minutes=1))
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "INSERT INTO outbox_message (id, to_address, subject, text_body, html_body, kind,"
            " status, attempts, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'PENDING', 0, ?, ?)",
            (
                message_id,
                address,
                "Your invitation to create an account",
                "Open https://portal.test/north/sign-up?token=cli-token",
                "<p>Open the link</p>",
                "invitation",
                due,
                due,
            ),
        )
    return message_id


def _outbox_row(database: Path, message_id: str) -> tuple[str, int, str]:
    with closing(sqlite3.connect(database)) as connection:
        row = connection.execute(
            "SELECT status, attempts, text_body FROM outbox_message WHERE id = ?", (message_id,)
        ).fetchone()
    return (str(row[0]), int(row[1]), str(row[2]))


def test_the_deliver_mail_once_command_sends_what_is_queued(
    tmp_path: Path, smtp_server: SmtpServer, mailbox: Mailbox
) -> None:
    database = tmp_path / "x.sqlite3"
    cluster = Cluster(tmp_path, f"sqlite://{database}", smtp_server.port)
    cluster.run("migrate")
    message_id = _queue_directly(database, "cli@mail.example")

    delivered = cluster.run("deliver-mail", "--once")

    assert "Sent 1" in delivered
    [message] = mailbox.to("cli@mail.example")
    assert message["Subject"] == "Your invitation to create an account"
    assert "token=cli-token" in text_of(message)
    assert _outbox_row(database, message_id) == ("SENT", 1, "")


class StallingMailbox(Mailbox):
    """Takes a whole message, then holds back its "250 OK" until released:
    the moment in which a crash leaves a message sent but not marked so."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.to_thread(self.released.wait, 30)
        return reply


def test_a_worker_killed_mid_send_causes_one_duplicate_with_the_same_message_id(
    tmp_path: Path, smtp_server: SmtpServer, mailbox: Mailbox
) -> None:
    stalling = StallingMailbox()
    stalled_server = Controller(stalling, hostname="127.0.0.1", port=free_port())
    stalled_server.start()
    database = tmp_path / "crash.sqlite3"
    cluster = Cluster(
        tmp_path,
        f"sqlite://{database}",
        stalled_server.port,
        PORTAL_MAIL_LEASE_SECONDS="3",
        PORTAL_SMTP_TIMEOUT_SECONDS="2",
    )
    cluster.run("migrate")
    message_id = _queue_directly(database, "twice@mail.example")
    worker = cluster.start("deliver-mail")
    deadline = time.monotonic() + 20
    while not stalling.messages:
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.02)

    worker.kill()  # kill -9 while the server holds back its reply
    worker.wait(timeout=10)
    stalling.released.set()
    stalled_server.stop()
    # Once the lease has lapsed, another worker sends it again.
    deadline = time.monotonic() + 20
    while not mailbox.to("twice@mail.example"):
        assert time.monotonic() < deadline, cluster.logs()
        cluster.run("deliver-mail", "--once", SMTP_URL=f"smtp://127.0.0.1:{smtp_server.port}")
        time.sleep(0.3)

    [first] = stalling.messages
    [again] = mailbox.to("twice@mail.example")
    assert first["Message-ID"] == again["Message-ID"]
    assert _outbox_row(database, message_id) == ("SENT", 1, "")


async def test_a_code_that_expired_before_it_could_be_sent_is_given_up_not_sent_late(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    smtp_server: SmtpServer,
    mailbox: Mailbox,
    deliver_mail: Deliver,
) -> None:
    await factories.make_patient_account(patient_profile)
    smtp_server.down()
    await anonymous.data(
        'mutation { requestVerificationCode(practice: "north", email: "grace@mail.example") '
        "{ __typename } }"
    )
    await deliver_mail()  # fails: the server is down

    clock.advance(minutes=16)  # the code has expired by the next try
    smtp_server.up()
    outcome = await deliver_mail()

    assert outcome.failed == 1
    assert mailbox.messages == []
    message = await OutboxMessage.get(kind="verification_code")
    assert message.status is OutboxStatus.FAILED
    assert message.text_body == message.html_body == ""
